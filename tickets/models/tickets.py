"""Tickets, their messages and the audit trail of every change (``TicketEvent``)."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tickets.models.queues import Customer, Department, Priority


def new_access_key() -> str:
    return secrets.token_urlsafe(32)


class Ticket(models.Model):
    class Status(models.TextChoices):
        NEW = "new", _("New")
        OPEN = "open", _("Open")
        PENDING = "pending", _("Pending (waiting on customer)")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")

    class Channel(models.TextChoices):
        CHAT = "chat", _("Chat")
        EMAIL = "email", _("Email")
        API = "api", _("API")
        SLACK = "slack", _("Slack")
        DISCORD = "discord", _("Discord")
        # Opened by an agent in the console: the customer's words came through a person.
        PHONE = "phone", _("Phone")
        IN_PERSON = "in_person", _("In person")

    class Sentiment(models.TextChoices):
        NEGATIVE = "negative", _("Negative")
        NEUTRAL = "neutral", _("Neutral")
        POSITIVE = "positive", _("Positive")

    ACTIVE_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)

    reference = models.CharField(_("reference"), max_length=20, unique=True, editable=False)
    access_key = models.CharField(
        max_length=64,
        unique=True,
        default=new_access_key,
        editable=False,
        help_text="Secret behind the customer's signed conversation link; rotate it to revoke the link.",
    )
    subject = models.CharField(_("subject"), max_length=255)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("customer"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, default=Channel.CHAT)
    category = models.CharField(_("category"), max_length=100, blank=True)
    sentiment = models.CharField(_("sentiment"), max_length=10, choices=Sentiment.choices, blank=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    ui_language = models.CharField(
        "page language",
        max_length=8,
        blank=True,
        help_text="The language of the customer's pages when the conversation started: their browser's, "
        "or the one they chose (tickets.languages says which wins).",
    )
    ui_language_chosen = models.BooleanField(
        "page language chosen",
        default=False,
        help_text="The customer picked the page language themselves: it wins over the detected language.",
    )
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("department"),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
    )
    escalated = models.BooleanField(default=False)
    escalation_reason = models.CharField(_("escalation reason"), max_length=255, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    needs_human = models.BooleanField(default=False)
    ai_summary = models.TextField("AI summary", blank=True)
    triage = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="The last AI triage: per-field confidence, model version, reasons, signals, suggested articles.",
    )
    conversation = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="What the assistant remembers of the conversation: topics asked, articles cited, the open "
        "question, entities named (product area, device, plan), unanswered turns in a row.",
    )

    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    reply_promised_at = models.DateTimeField(
        "person's reply promised by",
        null=True,
        blank=True,
        editable=False,
        help_text="At the handover the customer was told a person would reply by then "
        "(tickets.reply_estimates: the SLA bound, or sooner from recent replies).",
    )
    sla_paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    sla_paused_minutes = models.PositiveIntegerField(
        default=0, editable=False, help_text="Time spent waiting on the customer, not counted for resolution."
    )
    first_response_breached = models.BooleanField(default=False, editable=False)
    resolution_breached = models.BooleanField(default=False, editable=False)

    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    last_customer_message_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reopen_count = models.PositiveIntegerField(default=0)

    csat_score = models.PositiveSmallIntegerField(
        "CSAT score", null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    csat_comment = models.TextField("CSAT comment", blank=True)
    csat_at = models.DateTimeField(null=True, blank=True)

    ai_cost = models.DecimalField("AI cost (USD)", max_digits=12, decimal_places=6, default=Decimal(0))
    last_message_seq = models.PositiveIntegerField(default=0, editable=False)

    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        help_text=_("The agent who opened it in the console for the customer (a call, a visit, a forwarded email)."),
    )
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="merged_tickets",
        help_text=_("The ticket its conversation was merged into; its reference opens that one."),
    )

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "priority"], name="ticket_status_priority"),
            models.Index(fields=["department", "status"], name="ticket_department_status"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_status"),
            models.Index(fields=["updated_at"], name="ticket_updated_at"),
            # The analytics rollup selects a day's events by these timestamps.
            models.Index(
                fields=["first_response_at"],
                name="ticket_first_response_at",
                condition=models.Q(first_response_at__isnull=False),
            ),
            models.Index(
                fields=["resolved_at"], name="ticket_resolved_at", condition=models.Q(resolved_at__isnull=False)
            ),
            models.Index(
                fields=["escalated_at"], name="ticket_escalated_at", condition=models.Q(escalated_at__isnull=False)
            ),
            models.Index(fields=["csat_at"], name="ticket_csat_at", condition=models.Q(csat_at__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(csat_score__isnull=True) | models.Q(csat_score__range=(1, 5)),
                name="ticket_csat_score_1_to_5",
            ),
        ]
        permissions = [
            ("assign_others_ticket", "Can assign tickets to other agents"),
            ("view_all_departments_ticket", "Can see tickets of every department"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class Message(models.Model):
    class AuthorKind(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        AGENT = "agent", _("Agent")
        AI = "ai", _("AI")
        SYSTEM = "system", _("System")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField(help_text="Position in the ticket's thread: 1, 2, 3… without gaps.")
    author_kind = models.CharField(max_length=10, choices=AuthorKind.choices)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ticket_messages",
    )
    body = models.TextField()
    is_internal = models.BooleanField(
        "internal note", default=False, help_text="Seen by agents only, never sent to the customer."
    )
    ai_confidence = models.FloatField(
        "AI confidence",
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
    )
    citations = models.JSONField(default=list, blank=True)
    feedback = models.CharField(
        max_length=3,
        choices=[("yes", "Helpful"), ("no", "Not helpful")],
        blank=True,
        help_text="The customer's answer to “Did this answer your question?” on an AI answer.",
    )
    feedback_at = models.DateTimeField(null=True, blank=True, editable=False)
    client_msg_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="Sender's id for this message; a resend with the same id is not stored twice.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["ticket", "seq"]
        indexes = [models.Index(fields=["created_at"], name="message_created_at")]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "seq"], name="message_seq_unique_per_ticket"),
            models.UniqueConstraint(
                fields=["ticket", "client_msg_id"],
                condition=~models.Q(client_msg_id=""),
                name="message_client_id_unique_per_ticket",
            ),
            models.CheckConstraint(
                condition=~models.Q(is_internal=True, author_kind="customer"),
                name="message_customer_never_internal",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id}#{self.seq} ({self.author_kind})"


class ActorKind(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    AGENT = "agent", _("Agent")
    AI = "ai", _("AI")
    SYSTEM = "system", _("System")


class TicketEvent(models.Model):
    """Audit log: one row per change of a ticket's state, assignment, priority, routing or rating."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        STATUS_CHANGED = "status_changed", _("Status changed")
        ASSIGNED = "assigned", _("Assigned")
        PRIORITY_CHANGED = "priority_changed", _("Priority changed")
        DEPARTMENT_CHANGED = "department_changed", _("Department changed")
        TRIAGE_CHANGED = "triage_changed", _("Triage field changed")
        ESCALATED = "escalated", _("Escalated")
        FIRST_RESPONSE = "first_response", _("First response")
        CSAT_RECORDED = "csat_recorded", _("CSAT recorded")
        SLA_BREACHED = "sla_breached", _("SLA breached")
        AI_TRIAGED = "ai_triaged", _("AI triaged")
        AI_ANSWERED = "ai_answered", _("AI answered")
        AI_DRAFTED = "ai_drafted", _("AI drafted a reply")
        GUARDRAIL = "guardrail", _("Guardrail triggered")
        AUTO_CLOSED = "auto_closed", _("Closed automatically")
        AI_FEEDBACK = "ai_feedback", _("Customer rated an AI answer")
        TAG_ADDED = "tag_added", _("Tag added")
        TAG_REMOVED = "tag_removed", _("Tag removed")
        MERGED = "merged", _("Merged")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    field = models.CharField(max_length=50, blank=True)
    from_value = models.CharField(max_length=255, blank=True)
    to_value = models.CharField(max_length=255, blank=True)
    note = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ticket_events",
    )
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices, default=ActorKind.SYSTEM)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ticket", "created_at", "pk"]
        indexes = [
            models.Index(fields=["kind", "created_at"], name="event_kind_created"),
            models.Index(fields=["created_at"], name="event_created_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.from_value} → {self.to_value}"
