"""Daily rollups the analytics pages read instead of the ticket tables (definitions: docs/metrics.md).

Every row is one calendar day × department × channel (× a further key), rebuilt wholesale for a day
range by ``analytics.rollup.rebuild`` — never updated in place, so a rebuild is idempotent. Durations
are kept as arrays of seconds so medians over any range are exact. Department is null for unrouted
tickets; agent and department rows are not foreign keys on purpose: deleting a department or a user
must not rewrite history (their names are looked up when shown).
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class DailyTicketStats(models.Model):
    """Ticket flow per day, department, channel and priority."""

    day = models.DateField()
    department_id = models.BigIntegerField(null=True)
    channel = models.CharField(max_length=10)
    priority = models.CharField(max_length=10)
    created = models.PositiveIntegerField(default=0)
    escalated = models.PositiveIntegerField(default=0)
    first_responses = models.PositiveIntegerField(default=0)
    first_response_breached = models.PositiveIntegerField(default=0)
    first_response_seconds = ArrayField(models.IntegerField(), default=list)
    resolved = models.PositiveIntegerField(default=0)
    resolved_by_ai = models.PositiveIntegerField(default=0)
    resolved_reopened = models.PositiveIntegerField(default=0)
    resolution_breached = models.PositiveIntegerField(default=0)
    resolution_seconds = ArrayField(models.IntegerField(), default=list)
    csat_count = models.PositiveIntegerField(default=0)
    csat_sum = models.PositiveIntegerField(default=0)
    csat_satisfied = models.PositiveIntegerField(default=0)
    ai_decisions = models.PositiveIntegerField(default=0)
    ai_sent = models.PositiveIntegerField(default=0)
    ai_triaged = models.PositiveIntegerField(default=0)
    ai_cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    # All AI runs of the tickets counted in ``resolved_by_ai``, whenever they ran (the savings page).
    resolved_by_ai_cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta:
        indexes = [models.Index(fields=["day", "department_id", "channel"], name="an_ticket_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.department_id} {self.channel} {self.priority}"


class DailyCount(models.Model):
    """Counts per day, department, channel and a named dimension: ``category`` and ``sentiment`` of
    created tickets, ``escalation_reason`` of escalations, ``correction`` (triage field an agent
    changed), ``confidence`` (sent AI answers by confidence bucket) and ``confidence_bad`` (those
    later reopened or rated 1–2)."""

    day = models.DateField()
    department_id = models.BigIntegerField(null=True)
    channel = models.CharField(max_length=10)
    dimension = models.CharField(max_length=30)
    value = models.CharField(max_length=255)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["dimension", "day"], name="an_count_dim_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.dimension}={self.value}: {self.count}"


class DailyAgentStats(models.Model):
    day = models.DateField()
    agent_id = models.BigIntegerField()
    department_id = models.BigIntegerField(null=True)
    channel = models.CharField(max_length=10)
    resolved = models.PositiveIntegerField(default=0)
    resolved_reopened = models.PositiveIntegerField(default=0)
    resolution_seconds = ArrayField(models.IntegerField(), default=list)
    first_response_seconds = ArrayField(models.IntegerField(), default=list)
    csat_count = models.PositiveIntegerField(default=0)
    csat_satisfied = models.PositiveIntegerField(default=0)
    public_replies = models.PositiveIntegerField(default=0)
    internal_notes = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day", "agent_id"], name="an_agent_day")]

    def __str__(self) -> str:
        return f"{self.day} agent {self.agent_id}"


class DailyAIRuns(models.Model):
    day = models.DateField()
    department_id = models.BigIntegerField(null=True)
    channel = models.CharField(max_length=10)
    provider = models.CharField(max_length=50)
    model = models.CharField(max_length=100)
    kind = models.CharField(max_length=20)
    runs = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    fallback = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    latency_ms = ArrayField(models.IntegerField(), default=list)

    class Meta:
        indexes = [models.Index(fields=["day"], name="an_airuns_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.provider}/{self.model} {self.kind}"


class RollupState(models.Model):
    """When each day was last rebuilt (the pages say how fresh they are)."""

    day = models.DateField(primary_key=True)
    rebuilt_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.day} @ {self.rebuilt_at:%H:%M:%S}"


class KnowledgeGap(models.Model):
    """A group of customer questions the AI could not answer well (docs/metrics.md, Knowledge gaps)."""

    label = models.CharField(max_length=300, help_text="The group's most central question.")
    size = models.PositiveIntegerField()
    examples = models.JSONField(default=list)
    departments = models.JSONField(default=list)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    window_start = models.DateField()
    window_end = models.DateField()
    article = models.ForeignKey("knowledge.Article", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["-size", "pk"]

    def __str__(self) -> str:
        return f"{self.label} ({self.size})"
