"""Integration records shared by the channels: API keys, outbound webhooks and the Slack thread map.

- ``APIKey``: an integration acts as a staff user (its role and queues decide what it may see) and
  only within its scopes. The secret is shown once; only its SHA-256 is stored (keys are 32 random
  bytes, so a fast hash is enough), looked up by the public prefix.
- ``WebhookSubscription`` / ``WebhookDelivery``: events posted to a URL with an HMAC-SHA256 signature,
  delivered by Celery with retries; every attempt is logged.
- ``SlackThread`` / ``InboundEvent``: which Slack thread belongs to which ticket, and the ids of
  events already handled (Slack retries; a duplicate must not add a second message).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class APIKey(models.Model):
    class Scope(models.TextChoices):
        TICKETS_READ = "tickets:read", "Read tickets, messages and customers"
        TICKETS_WRITE = "tickets:write", "Create and update tickets, add messages"
        KB_READ = "kb:read", "Search and read knowledge-base articles"
        ANALYTICS_READ = "analytics:read", "Read the analytics summary"
        WEBHOOKS_MANAGE = "webhooks:manage", "Manage webhook subscriptions"

    name = models.CharField(max_length=100, help_text="What uses it, e.g. 'CRM sync'.")
    prefix = models.CharField(max_length=16, unique=True, editable=False, help_text="Public part, shown in lists.")
    hashed_secret = models.CharField(max_length=64, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="The key acts as this staff user: their role and queues limit what it can see and do.",
    )
    scopes = models.JSONField(default=list, help_text="Allowed scopes, e.g. ['tickets:read', 'kb:read'].")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class WebhookSubscription(models.Model):
    class Event(models.TextChoices):
        TICKET_CREATED = "ticket.created", "Ticket created"
        TICKET_ESCALATED = "ticket.escalated", "Ticket escalated"
        TICKET_RESOLVED = "ticket.resolved", "Ticket resolved"
        TICKET_UPDATED = "ticket.updated", "Ticket updated (status, priority, assignee, queue)"
        MESSAGE_CREATED = "message.created", "Public message added"
        TICKET_RATED = "ticket.rated", "Customer rated the help"

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500, help_text="HTTPS endpoint that receives the POSTs.")
    events = models.JSONField(default=list, help_text="Event names this endpoint receives.")
    secret = models.CharField(
        max_length=100, editable=False, help_text="Signs every delivery (HMAC-SHA256); shown once at creation."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    disabled_reason = models.CharField(max_length=255, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Delivered"
        RETRYING = "retrying", "Failed, will retry"
        FAILED = "failed", "Gave up"
        REFUSED = "refused", "Refused (address not allowed)"

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=50)
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempt_log = models.JSONField(
        default=list, blank=True, editable=False, help_text="Every attempt: when, status code, error, duration."
    )

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event_id"], name="webhook_delivery_once_per_event")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription} ({self.status})"


class SlackThread(models.Model):
    """The Slack message an escalation was posted as; replies in its thread go to the ticket."""

    ticket = models.OneToOneField("tickets.Ticket", on_delete=models.CASCADE, related_name="slack_thread")
    channel = models.CharField(max_length=50)
    thread_ts = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "thread_ts"], name="slack_thread_unique")]

    def __str__(self) -> str:
        return f"{self.channel}/{self.thread_ts}"


class InboundEvent(models.Model):
    """An inbound event id already handled (Slack ``event_id``, Discord interaction id…): a retry or
    replay with the same id is acknowledged and ignored."""

    source = models.CharField(max_length=20)
    event_id = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "event_id"], name="inbound_event_once")]

    def __str__(self) -> str:
        return f"{self.source}:{self.event_id}"
