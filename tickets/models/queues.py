"""Who and where: customers, queues (departments) with their SLA policies, agents' profiles, priorities."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


class Customer(models.Model):
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    is_vip = models.BooleanField("VIP", default=False)
    email_unsubscribed_at = models.DateTimeField(
        "unsubscribed from email",
        null=True,
        blank=True,
        editable=False,
        help_text="When they unsubscribed (the link in our emails): no more reply copies of chats or rating "
        "requests. Replies to their own emails still go out — they are the conversation.",
    )
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

    class ThresholdMode(models.TextChoices):
        AUTO = "auto", "Automatic (calibrated on the knowledge base and customers' votes)"
        MANUAL = "manual", "Manual (the threshold below)"

    ai_threshold_mode = models.CharField(
        "AI threshold mode",
        max_length=10,
        choices=ThresholdMode.choices,
        default=ThresholdMode.MANUAL,
        help_text="Manual (the default): the threshold below, as you set it. Automatic: the threshold computed "
        "from the knowledge base (expected wrong answers ≤ 2 %), raised by customers' “No” votes — recommended "
        "for bases of near-duplicate FAQs; on a base of distinct articles its estimate is very strict.",
    )
    ai_confidence_threshold = models.FloatField(
        "AI confidence threshold",
        default=0.6,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Manual mode (and automatic before the first calibration): an AI answer is sent only at or "
        "above this confidence (0–1); below it, the customer is asked to clarify or an agent gets a draft.",
    )
    ai_feedback_threshold = models.FloatField(
        "threshold from customers' votes",
        null=True,
        blank=True,
        editable=False,
        help_text="The lowest confidence at which this queue's “No”-voted AI answers stay ≤ 2 % of its answers "
        "(null: too few answers yet). Automatic mode uses the higher of this and the knowledge base's.",
    )
    ai_feedback_figures = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def threshold_overridden(self) -> bool:
        return self.ai_threshold_mode == self.ThresholdMode.MANUAL

    def threshold_in_use(self, calibrated: float | None) -> tuple[float, str]:
        """The gate's threshold for this queue given its knowledge base's calibrated one, and its source:
        ``manual`` (the manager's value, exactly), ``calibrated``, ``votes`` (the customers' "No" votes
        asked for more) or ``default`` (automatic, but no calibration yet: the value above)."""
        if self.threshold_overridden:
            return self.ai_confidence_threshold, "manual"
        base, source = (self.ai_confidence_threshold, "default") if calibrated is None else (calibrated, "calibrated")
        if self.ai_feedback_threshold is not None and self.ai_feedback_threshold > base:
            return self.ai_feedback_threshold, "votes"
        return base, source


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
