"""The website widget: the customer sites allowed to embed our chat, and which conversations came from them.

A site's ``allowed_origins`` are exactly the origins that may frame the widget's pages (CSP
``frame-ancestors``); its ``identity_secret`` signs visitor identities (HMAC-SHA256 of the user id), as
Intercom's identity verification does. Writes go through ``tickets.widget.services``.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _

from tickets.models.queues import Department
from tickets.models.tickets import Ticket

PUBLIC_KEY_PREFIX = "site_"


def new_public_key() -> str:
    return PUBLIC_KEY_PREFIX + secrets.token_urlsafe(12)


def new_identity_secret() -> str:
    return secrets.token_hex(32)


class WidgetSite(models.Model):
    """A website that embeds the chat widget (``<script src=…/widget.js data-site=public_key>``)."""

    name = models.CharField(_("name"), max_length=100)
    public_key = models.CharField(
        _("public site key"),
        max_length=40,
        unique=True,
        default=new_public_key,
        editable=False,
        help_text=_("Goes in the snippet as data-site; public, not a secret."),
    )
    allowed_origins = models.JSONField(
        _("allowed origins"),
        default=list,
        help_text=_("Only pages on these origins may show the widget, e.g. https://www.example.com."),
    )
    identity_secret = models.CharField(_("identity secret"), max_length=64, default=new_identity_secret, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    department = models.ForeignKey(
        Department,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="widget_sites",
        verbose_name=_("queue"),
        help_text=_("Conversations started on this site go to this queue unless triage routes them."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("widget site")
        verbose_name_plural = _("widget sites")

    def __str__(self) -> str:
        return self.name


class WidgetConversation(models.Model):
    """A conversation started in a site's widget, and whether the site vouched for the visitor."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="widget_conversation")
    site = models.ForeignKey(WidgetSite, on_delete=models.CASCADE, related_name="conversations")
    external_user_id = models.CharField(max_length=200, blank=True)
    identity_verified = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["site", "external_user_id"],
                condition=models.Q(identity_verified=True),
                name="widget_conv_verified_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.site} · {self.ticket_id}"
