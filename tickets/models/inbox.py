"""What agents organise their inbox with: tags on tickets and saved views of the ticket list."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from tickets.models.queues import Department
from tickets.models.tickets import Ticket

colour_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("A colour is # and six hex digits, e.g. #2563eb."))


class Tag(models.Model):
    """A label agents put on tickets ("refund", "bug", "vip"). Names are unique whatever their case.

    The many-to-many is declared here, so ``ticket.tags`` is its reverse side: the ticket model stays as it
    was and its admin form never shows a tags field (tags change through ``services.tags`` only)."""

    name = models.CharField(_("name"), max_length=40)
    colour = models.CharField(_("colour"), max_length=7, default="#6b7280", validators=[colour_validator])
    tickets = models.ManyToManyField(Ticket, related_name="tags", blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        constraints = [models.UniqueConstraint(Lower("name"), name="tag_name_unique_ci")]

    def __str__(self) -> str:
        return self.name


class SavedView(models.Model):
    """A filtered ticket list under a name: personal (no department) or shared with one team.

    ``query`` is the list's querystring, already checked against the filters the list understands
    (``tickets.inbox.view_query_clean``), never arbitrary lookups."""

    name = models.CharField(_("name"), max_length=60)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views", verbose_name=_("owner")
    )
    department = models.ForeignKey(
        Department,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="saved_views",
        verbose_name=_("shared with"),
        help_text=_("The team whose agents see this view; empty: only its owner does."),
    )
    query = models.CharField(_("filters"), max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("saved view")
        verbose_name_plural = _("saved views")
        constraints = [
            models.UniqueConstraint("owner", Lower("name"), name="savedview_name_unique_per_owner"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_shared(self) -> bool:
        return self.department_id is not None
