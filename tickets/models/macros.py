"""Macros: an agent's canned replies — text with a few safe placeholders, plus optional actions applied
when the reply is sent (status, assignment, priority, tags). Personal (an owner) or shared (none),
optionally for one department's tickets only.

The placeholders are a closed list substituted by ``tickets.services.macros.macro_render``; the text is
never given to the Django template engine. What a macro may say and do is checked here, in ``clean()``,
so the admin form, the services and the demo data all refuse the same mistakes.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from tickets.models.queues import Department, Priority
from tickets.models.tickets import Ticket

# ``{{ name }}`` with optional spaces; the name is checked against PLACEHOLDERS (or ``article:<slug>``).
PLACEHOLDER_RE = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)
ARTICLE_PREFIX = "article:"
ARTICLE_SLUG_RE = re.compile(r"[-a-zA-Z0-9_]{1,255}")
PLACEHOLDERS = (
    "customer.first_name",
    "customer.name",
    "ticket.reference",
    "ticket.subject",
    "agent.first_name",
)
# The statuses a macro may leave a ticket in (never back to "new"); the state machine still decides.
MACRO_STATUSES = (Ticket.Status.OPEN, Ticket.Status.PENDING, Ticket.Status.RESOLVED, Ticket.Status.CLOSED)
ACTION_KEYS = ("status", "assign", "priority", "tags")
ASSIGN_TO_SENDER = "me"
TAG_RE = re.compile(r"[\w][\w .-]{0,49}")
MAX_TAGS = 5
BODY_MAX_LENGTH = 5000


def placeholder_names(body: str) -> list[str]:
    """The placeholder names used in ``body``, in order (``article:<slug>`` kept whole)."""
    return [match.group(1) for match in PLACEHOLDER_RE.finditer(body or "")]


def article_slugs(body: str) -> list[str]:
    return [name[len(ARTICLE_PREFIX) :].strip() for name in placeholder_names(body) if name.startswith(ARTICLE_PREFIX)]


def body_errors(body: str) -> list[str]:
    """What is wrong with a macro's text, without the database: unknown or malformed placeholders."""
    errors: list[str] = []
    unknown = []
    for name in placeholder_names(body):
        if name.startswith(ARTICLE_PREFIX):
            if not ARTICLE_SLUG_RE.fullmatch(name[len(ARTICLE_PREFIX) :].strip()):
                errors.append(
                    gettext("“{{ %(name)s }}” does not name an article: write {{ article:the-article-slug }}.")
                    % {"name": name}
                )
        elif name not in PLACEHOLDERS:
            unknown.append(name)
    if unknown:
        errors.append(
            gettext("Unknown placeholder(s): %(names)s. Use one of: %(known)s, or {{ article:<slug> }}.")
            % {
                "names": ", ".join(f"{{{{ {name} }}}}" for name in unknown),
                "known": ", ".join(f"{{{{ {name} }}}}" for name in PLACEHOLDERS),
            }
        )
    leftover = PLACEHOLDER_RE.sub("", body or "")
    if "{{" in leftover or "}}" in leftover:
        errors.append(gettext("A placeholder is not closed: each {{ needs its }}."))
    return errors


def actions_errors(actions: Any) -> list[str]:
    """What is wrong with a macro's actions, without the database (the assignee is checked in ``clean``)."""
    if actions in (None, ""):
        return []
    if not isinstance(actions, dict):
        return [gettext('Actions must be an object such as {"status": "pending"}.')]
    errors: list[str] = []
    unknown = sorted(set(actions) - set(ACTION_KEYS))
    if unknown:
        errors.append(gettext("Unknown action(s): %(names)s.") % {"names": ", ".join(map(str, unknown))})
    status = actions.get("status")
    if status is not None and status not in MACRO_STATUSES:
        errors.append(
            gettext("A macro can set the status to open, pending, resolved or closed, not %(value)r.")
            % {"value": status}
        )
    priority = actions.get("priority")
    if priority is not None and priority not in Priority.values:
        errors.append(gettext("Unknown priority %(value)r.") % {"value": priority})
    assign = actions.get("assign")
    if assign is not None and assign != ASSIGN_TO_SENDER and (isinstance(assign, bool) or not isinstance(assign, int)):
        errors.append(gettext("Assign to “me” (whoever sends) or to an agent's id."))
    tags = actions.get("tags")
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, str) and TAG_RE.fullmatch(t) for t in tags):
            errors.append(gettext("Tags are names of 1–50 letters, digits, spaces, dots or dashes."))
        elif len(tags) > MAX_TAGS:
            errors.append(gettext("At most %(n)d tags per macro.") % {"n": MAX_TAGS})
    return errors


class Macro(models.Model):
    name = models.CharField(_("name"), max_length=80, help_text=_("What you type after “/” in the reply box."))
    body = models.TextField(
        _("text"),
        max_length=BODY_MAX_LENGTH,
        help_text=_(
            "The reply. Placeholders: {{ customer.first_name }}, {{ customer.name }}, {{ ticket.reference }}, "
            "{{ ticket.subject }}, {{ agent.first_name }}, and {{ article:<slug> }} for a link to a help-center "
            "article."
        ),
    )
    actions = models.JSONField(
        _("actions"),
        default=dict,
        blank=True,
        help_text=_("Applied when the reply is sent: status, assign (“me” or an agent's id), priority, tags."),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="macros",
        help_text=_("Empty: shared with every agent (of the department, if one is set)."),
    )
    department = models.ForeignKey(
        Department,
        verbose_name=_("department"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="macros",
        help_text=_("Only offered on this department's tickets. Empty: on every ticket."),
    )
    usage_count = models.PositiveIntegerField(_("times used"), default=0, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("macro")
        verbose_name_plural = _("macros")
        constraints = [
            models.UniqueConstraint(
                Lower("name"), "owner", nulls_distinct=False, name="macro_name_unique_per_owner_ci"
            ),
        ]
        permissions = [("manage_shared_macro", "Can manage shared macros")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_shared(self) -> bool:
        return self.owner_id is None

    def clean(self) -> None:
        from django.contrib.auth import get_user_model

        from knowledge.models import DEFAULT_NAMESPACE, Article

        errors: dict[str, list[str]] = {}
        body_problems = body_errors(self.body)
        slugs = set(article_slugs(self.body)) if not body_problems else set()
        if slugs:
            published = set(
                Article.objects.filter(
                    slug__in=slugs, namespace=DEFAULT_NAMESPACE, status=Article.Status.PUBLISHED
                ).values_list("slug", flat=True)
            )
            missing = sorted(slugs - published)
            if missing:
                body_problems.append(
                    gettext("No published help-center article with the slug(s): %(slugs)s.")
                    % {"slugs": ", ".join(missing)}
                )
        if body_problems:
            errors["body"] = body_problems
        action_problems = actions_errors(self.actions)
        assign = (self.actions or {}).get("assign") if isinstance(self.actions, dict) else None
        if not action_problems and isinstance(assign, int):
            from tickets.roles import user_is_agent

            assignee = get_user_model().objects.filter(pk=assign).first()
            if not user_is_agent(assignee):
                action_problems.append(gettext("The agent to assign to does not exist or is not an active agent."))
            elif (
                self.owner is not None
                and assignee != self.owner
                and not self.owner.has_perm("tickets.assign_others_ticket")
            ):
                action_problems.append(gettext("You can assign tickets to yourself only: use “me”."))
        if action_problems:  # not a form field of its own: the admin composes actions from several
            errors[NON_FIELD_ERRORS] = action_problems
        if errors:
            raise ValidationError(errors)
