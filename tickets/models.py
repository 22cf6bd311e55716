"""Customers, departments (queues) with SLA policies, tickets, their messages, audit events and AI runs.

Every change to these rows goes through ``tickets.services``; the models hold only single-row,
side-effect-free logic.
"""

from __future__ import annotations

import datetime as dt
import secrets
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


class Customer(models.Model):
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    is_vip = models.BooleanField("VIP", default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), condition=~models.Q(email=""), name="customer_email_unique_ci"),
        ]

    def __str__(self) -> str:
        if self.name and self.email:
            return f"{self.name} <{self.email}>"
        return self.name or self.email or f"Customer {self.pk}"


def _default_business_days() -> list[int]:
    return [0, 1, 2, 3, 4]


class SLAPolicy(models.Model):
    """Response and resolution targets by priority, counted in calendar or business time."""

    name = models.CharField(max_length=100, unique=True)
    business_hours_only = models.BooleanField(
        default=False, help_text="Count only business hours (below) towards the targets."
    )
    timezone = models.CharField(max_length=64, default="UTC")
    business_day_start = models.TimeField(default=dt.time(9, 0))
    business_day_end = models.TimeField(default=dt.time(17, 0))
    business_days = ArrayField(
        models.PositiveSmallIntegerField(validators=[MaxValueValidator(6)]),
        default=_default_business_days,
        help_text="Weekdays counted as business days, 0 = Monday … 6 = Sunday.",
    )

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError({"timezone": f"Unknown time zone {self.timezone!r}."}) from exc
        if self.business_hours_only:
            if not self.business_days:
                raise ValidationError({"business_days": "Pick at least one business day."})
            if self.business_day_end <= self.business_day_start:
                raise ValidationError({"business_day_end": "The business day must end after it starts."})


class SLATarget(models.Model):
    policy = models.ForeignKey(SLAPolicy, on_delete=models.CASCADE, related_name="targets")
    priority = models.CharField(max_length=10, choices=Priority.choices)
    first_response_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    resolution_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "priority"], name="sla_target_one_per_priority"),
        ]
        verbose_name = "SLA target"

    def __str__(self) -> str:
        return f"{self.policy} / {self.priority}"


class Department(models.Model):
    """A queue of tickets, worked by its agents, measured against its SLA policy."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    email = models.EmailField(blank=True, help_text="Where escalation notices for this queue go.")
    sla_policy = models.ForeignKey(
        SLAPolicy, on_delete=models.PROTECT, null=True, blank=True, related_name="departments"
    )
    is_active = models.BooleanField(default=True)
    ai_auto_reply = models.BooleanField(
        "AI may answer",
        default=True,
        help_text="Let the AI send answers it is confident about. Off: it only drafts for agents.",
    )
    ai_confidence_threshold = models.FloatField(
        "AI confidence threshold",
        default=0.6,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="An AI answer is sent only at or above this confidence (0–1); below it, an agent gets a draft.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AgentProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_profile")
    departments = models.ManyToManyField(Department, related_name="agents", blank=True)
    max_open_tickets = models.PositiveSmallIntegerField(default=20, help_text="Capacity used by automatic assignment.")
    is_available = models.BooleanField(default=True)
    last_assigned_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Breaks ties in automatic assignment (round robin)."
    )

    def __str__(self) -> str:
        return self.user.get_username()


def new_access_key() -> str:
    return secrets.token_urlsafe(32)


class Ticket(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        OPEN = "open", "Open"
        PENDING = "pending", "Pending (waiting on customer)"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    class Channel(models.TextChoices):
        CHAT = "chat", "Chat"
        EMAIL = "email", "Email"
        API = "api", "API"
        SLACK = "slack", "Slack"
        DISCORD = "discord", "Discord"

    class Sentiment(models.TextChoices):
        NEGATIVE = "negative", "Negative"
        NEUTRAL = "neutral", "Neutral"
        POSITIVE = "positive", "Positive"

    ACTIVE_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)

    reference = models.CharField(max_length=20, unique=True, editable=False)
    access_key = models.CharField(
        max_length=64,
        unique=True,
        default=new_access_key,
        editable=False,
        help_text="Secret behind the customer's signed conversation link; rotate it to revoke the link.",
    )
    subject = models.CharField(max_length=255)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tickets")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.CHAT)
    category = models.CharField(max_length=100, blank=True)
    sentiment = models.CharField(max_length=10, choices=Sentiment.choices, blank=True)
    language = models.CharField(max_length=16, blank=True)
    department = models.ForeignKey(Department, on_delete=models.PROTECT, null=True, blank=True, related_name="tickets")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
    )
    escalated = models.BooleanField(default=False)
    escalation_reason = models.CharField(max_length=255, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    needs_human = models.BooleanField(default=False)
    ai_summary = models.TextField("AI summary", blank=True)
    triage = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="The last AI triage: per-field confidence, model version, reasons, signals, suggested articles.",
    )

    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    sla_paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    sla_paused_minutes = models.PositiveIntegerField(
        default=0, editable=False, help_text="Time spent waiting on the customer, not counted for resolution."
    )
    first_response_breached = models.BooleanField(default=False, editable=False)
    resolution_breached = models.BooleanField(default=False, editable=False)

    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
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

    class Meta:
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
        CUSTOMER = "customer", "Customer"
        AGENT = "agent", "Agent"
        AI = "ai", "AI"
        SYSTEM = "system", "System"

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
    CUSTOMER = "customer", "Customer"
    AGENT = "agent", "Agent"
    AI = "ai", "AI"
    SYSTEM = "system", "System"


class TicketEvent(models.Model):
    """Audit log: one row per change of a ticket's state, assignment, priority, routing or rating."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        STATUS_CHANGED = "status_changed", "Status changed"
        ASSIGNED = "assigned", "Assigned"
        PRIORITY_CHANGED = "priority_changed", "Priority changed"
        DEPARTMENT_CHANGED = "department_changed", "Department changed"
        TRIAGE_CHANGED = "triage_changed", "Triage field changed"
        ESCALATED = "escalated", "Escalated"
        FIRST_RESPONSE = "first_response", "First response"
        CSAT_RECORDED = "csat_recorded", "CSAT recorded"
        SLA_BREACHED = "sla_breached", "SLA breached"
        AI_TRIAGED = "ai_triaged", "AI triaged"
        AI_ANSWERED = "ai_answered", "AI answered"
        AI_DRAFTED = "ai_drafted", "AI drafted a reply"
        GUARDRAIL = "guardrail", "Guardrail triggered"
        AUTO_CLOSED = "auto_closed", "Closed automatically"

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


class AIRun(models.Model):
    """One AI call (triage, reply, embedding…), its cost and outcome. ``key`` makes reruns no-ops."""

    class Kind(models.TextChoices):
        TRIAGE = "triage", "Triage"
        REPLY = "reply", "Reply draft"
        SUMMARY = "summary", "Summary"
        EMBEDDING = "embedding", "Embedding"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    key = models.CharField(max_length=200, unique=True, help_text="What this run serves, e.g. triage:message:42.")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, null=True, blank=True, related_name="ai_runs")
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="ai_runs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=100, blank=True)
    prompt_version = models.CharField(max_length=50, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField("cost (USD)", max_digits=12, decimal_places=6, default=Decimal(0))
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    fallback = models.BooleanField(default=False, help_text="Served by the local provider because the LLM failed.")
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "AI run"
        indexes = [models.Index(fields=["created_at"], name="airun_created_at")]

    def __str__(self) -> str:
        return f"{self.kind} via {self.provider} ({self.status})"


class AIDraft(models.Model):
    """An AI answer to a customer message: sent by the gate, or waiting for an agent ("use draft")."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for an agent"
        SENT = "sent", "Sent by the AI"
        USED = "used", "Used by an agent"
        DISCARDED = "discarded", "Discarded"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="ai_drafts")
    in_reply_to = models.OneToOneField(
        Message, on_delete=models.CASCADE, related_name="ai_draft", help_text="The customer message it answers."
    )
    body = models.TextField()
    citations = models.JSONField(default=list, blank=True)
    confidence = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=100, blank=True)
    gate = models.JSONField(default=dict, blank=True, help_text="Why it was or was not sent: threshold, triggers.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    sent_message = models.OneToOneField(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="from_ai_draft"
    )
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "AI draft"
        indexes = [
            models.Index(fields=["ticket", "status"], name="aidraft_ticket_status"),
            models.Index(fields=["created_at"], name="aidraft_created_at"),
        ]

    def __str__(self) -> str:
        return f"Draft for {self.ticket_id} ({self.status})"


class EscalationRule(models.Model):
    """When the AI must hand a ticket to a human, as data an admin edits (not code).

    Rules are checked in ``order``; every matching rule is a trigger (the first one's reason is the
    ticket's escalation reason). See ``tickets.ai.rules`` for what each condition reads.
    """

    class Condition(models.TextChoices):
        PRIORITY_AT_LEAST = "priority_at_least", "Priority at least (value: low/normal/high/urgent)"
        CATEGORY_IN = "category_in", "Category is one of (value: comma-separated)"
        SENTIMENT_IS = "sentiment_is", "Sentiment is (value: negative/neutral/positive, or angry = strongly negative)"
        KEYWORDS = "keywords", "Message contains any of (value: comma-separated words or phrases)"
        HUMAN_REQUESTED = "human_requested", "Customer asks for a human"
        INJECTION = "injection", "Prompt-injection signals"
        LOW_CONFIDENCE = "low_confidence", "Answer confidence below the department threshold"
        NO_ANSWER = "no_answer", "No knowledge-base passage answers it"
        REPEATED_CONTACT = "repeated_contact", "Customer wrote at least N messages without resolution (value: N)"
        AI_REPLIES_AT_LEAST = "ai_replies_at_least", "The AI already answered at least N times (value: N)"
        VIP = "vip", "Customer is a VIP"
        OUT_OF_SCOPE = "out_of_scope", "Question is outside every department (triage out-of-scope)"

    name = models.CharField(max_length=100, unique=True)
    condition = models.CharField(max_length=30, choices=Condition.choices)
    value = models.CharField(max_length=500, blank=True)
    reason = models.CharField(max_length=200, help_text="Shown to agents as the escalation reason.")
    set_priority = models.CharField(max_length=10, choices=Priority.choices, blank=True)
    is_active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["order", "pk"]

    def __str__(self) -> str:
        return self.name


class TriageModel(models.Model):
    """A trained local triage classifier, versioned; exactly one is active."""

    version = models.PositiveIntegerField(unique=True)
    algorithm = models.CharField(max_length=100)
    embedding_model = models.CharField(max_length=200)
    labels = models.JSONField(default=dict, help_text="Per field, the label set.")
    weights = models.BinaryField(help_text="numpy .npz (no pickle) of the per-field parameters.")
    trained_on = models.JSONField(default=dict, help_text="Example counts by source (seed, agent corrections).")
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True), name="one_active_triage")
        ]

    def __str__(self) -> str:
        return f"triage v{self.version}{' (active)' if self.is_active else ''}"


class EmailRecord(models.Model):
    """One email we received or sent, tied to the ticket message it became (``tickets.email``).

    ``msgid`` (the Message-ID header) is unique: a provider's retry or a second IMAP fetch of the same email is a no-op,
    and a reply's In-Reply-To/References can only thread into tickets whose mail we really handled.
    """

    class Direction(models.TextChoices):
        INBOUND = "in", "Received"
        OUTBOUND = "out", "Sent"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        IGNORED = "ignored", "Ignored (automatic mail, not threaded)"
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Sending failed"
        SKIPPED = "skipped", "Not sent (no deliverable address)"

    msgid = models.CharField("Message-ID", max_length=500, unique=True)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, null=True, blank=True, related_name="emails")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, null=True, blank=True, related_name="email")
    in_reply_to = models.CharField(max_length=500, blank=True)
    references = models.TextField(blank=True, help_text="Message-IDs of the thread, space-separated.")
    from_address = models.CharField(max_length=320, blank=True)
    to_addresses = models.TextField(blank=True)
    subject = models.CharField(max_length=255, blank=True)
    auto_reason = models.CharField(
        max_length=40, blank=True, help_text="Why it counts as automatic mail (bounce, auto-reply…); never answered."
    )
    raw_name = models.CharField(max_length=255, blank=True, help_text="The raw MIME, in private storage.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="emailrecord_ticket_created")]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.msgid}"


class Attachment(models.Model):
    """A file that came with a customer's email. Stored under the private root (``EMAIL_PRIVATE_ROOT``),
    never under static or media; served only by ``tickets.email.views`` after an access check."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["message", "pk"]

    def __str__(self) -> str:
        return self.filename
