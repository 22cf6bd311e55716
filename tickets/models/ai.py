"""What the AI did and may do: its runs (cost, latency), drafts, escalation rules and triage model versions."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from tickets.models.queues import Priority
from tickets.models.tickets import Message, Ticket


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
    prompt_version = models.CharField(max_length=50, blank=True, help_text="The configuration version's label.")
    config_version = models.ForeignKey(
        "AIConfigVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="runs",
        help_text="The prompts, thresholds and models this run used (its experiment arm, if one ran).",
    )
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
        UNANSWERED_STREAK = "unanswered_streak", "N customer turns in a row unanswered or unhelpful (value: N)"
        NEGATIVE_FEEDBACK = "negative_feedback", "Customer says an answer did not help"

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
    """A trained local triage classifier, versioned; exactly one is active.

    The registry (``tickets/ai/triage/registry.py``): a retrain is stored as a *candidate*, evaluated against
    the active version on the same held-out examples, then made *active* (the old one *retired*) or
    *rejected*; ``evaluation`` holds both figures and ``reason`` the decision. ``is_active`` stays the
    flag the pipeline reads (one row at most, by constraint); ``status`` says how each row got where it is."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate", _("Candidate")
        ACTIVE = "active", _("Active")
        REJECTED = "rejected", _("Rejected")
        RETIRED = "retired", _("Retired")

    # Bumped (``tickets.services.triage_model_announce``) whenever the active version changes.
    GENERATION_CACHE_KEY = "triage:active-generation"

    version = models.PositiveIntegerField(unique=True)
    algorithm = models.CharField(max_length=100)
    embedding_model = models.CharField(max_length=200)
    labels = models.JSONField(default=dict, help_text="Per field, the label set.")
    weights = models.BinaryField(help_text="numpy .npz (no pickle) of the per-field parameters.")
    trained_on = models.JSONField(default=dict, help_text="Example counts by source (seed, agent corrections).")
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CANDIDATE)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    evaluation = models.JSONField(
        default=dict,
        blank=True,
        help_text="Held-out figures of this version and of the active one it was compared with.",
    )
    reason = models.TextField(blank=True, help_text="Why it was promoted, rejected, retired or rolled back.")
    activated_at = models.DateTimeField(null=True, blank=True, help_text="When it last became active (rollback order).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=models.Q(is_active=True), name="one_active_triage")
        ]

    def __str__(self) -> str:
        return f"triage v{self.version}{' (active)' if self.is_active else ''}"


class KnowledgeCalibration(models.Model):
    """How confusable a knowledge base's articles are, and the confidence threshold that keeps the
    expected share of wrong AI answers within ``wrong_cap`` (``tickets.ai.calibration``). One row per
    namespace, replaced when the published articles change. Departments in automatic mode use it."""

    namespace = models.CharField(max_length=50, unique=True)
    threshold = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.01)])
    wrong_cap = models.FloatField(default=0.02)
    articles = models.PositiveIntegerField(default=0)
    pseudo_questions = models.PositiveIntegerField(default=0)
    confused_share = models.FloatField(
        default=0.0, help_text="Share of pseudo-questions (titles, headings) whose best answer is another article."
    )
    twin_share = models.FloatField(
        default=0.0, help_text="Share of articles with a near-duplicate (title cosine ≥ 0.85) in the same base."
    )
    fingerprint = models.CharField(max_length=64, help_text="What was calibrated: articles, their indexing, the model.")
    figures = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = "knowledge-base calibration"

    def __str__(self) -> str:
        return f"{self.namespace}: {self.threshold:.3f}"


class AIConfigVersion(models.Model):
    """Prompts, the confidence threshold and model names as one versioned record (``tickets.ai.versions``).

    Exactly one is active: the pipeline uses it, except for the tickets a running ``AIExperiment`` puts in
    its other arm. A blank model name means the deployment's ``LLM_MODEL_TRIAGE`` / ``LLM_MODEL_REPLY``;
    a blank threshold means each queue's own (manual or calibrated). Prompts are never edited in place
    once used: a change is a new version, so every ``AIRun`` says exactly what produced it."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        RETIRED = "retired", _("Retired")

    label = models.CharField(_("label"), max_length=50, unique=True)
    triage_prompt = models.TextField(_("triage system prompt"))
    reply_prompt = models.TextField(_("reply system prompt"))
    model_triage = models.CharField(_("triage model"), max_length=100, blank=True)
    model_reply = models.CharField(_("reply model"), max_length=100, blank=True)
    confidence_threshold = models.FloatField(
        _("confidence threshold"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.01)],
    )
    notes = models.TextField(_("notes"), blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("AI configuration version")
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="active"), name="one_active_ai_config_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_status_display()})"


class AIExperiment(models.Model):
    """An A/B test of two configuration versions: while it runs, ``share_b`` % of the conversations
    (by a stable hash of the ticket id, ``tickets.ai.versions.arm_for``) use ``version_b``, the rest
    ``version_a``; a conversation stays in its arm. At most one runs at a time."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        RUNNING = "running", _("Running")
        ENDED = "ended", _("Ended")

    name = models.CharField(_("name"), max_length=100)
    version_a = models.ForeignKey(AIConfigVersion, on_delete=models.PROTECT, related_name="+", verbose_name="A")
    version_b = models.ForeignKey(AIConfigVersion, on_delete=models.PROTECT, related_name="+", verbose_name="B")
    share_b = models.PositiveSmallIntegerField(
        _("share of conversations on B (%)"), default=50, validators=[MinValueValidator(1), MaxValueValidator(99)]
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    winner = models.ForeignKey(AIConfigVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("AI experiment")
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="running"), name="one_running_ai_experiment"
            ),
            models.CheckConstraint(
                condition=~models.Q(version_a=models.F("version_b")), name="ai_experiment_two_versions"
            ),
        ]

    def __str__(self) -> str:
        return self.name
