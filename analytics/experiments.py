"""Per-arm figures of the AI's A/B experiments (``tickets.models.AIExperiment``) for the AI page.

A conversation belongs to an arm when its AI runs recorded that arm's version while the experiment ran
(one experiment runs at a time, and during it every ticket is served by one of its two arms). For each
arm: automation, three wrong-answer proxies (reopened after an AI answer, "No" votes on AI answers,
CSAT ≤ 2), cost per conversation and latency per AI run — proportions with a 95 % Wilson interval,
means with a normal-approximation interval (docs/ai-pipeline.md, "Versions and experiments").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db.models import Avg, Count, Exists, F, OuterRef, Q, StdDev, Sum
from django.utils import timezone
from django.utils.translation import gettext

from tickets.models import AIExperiment, AIRun, Message, Ticket

Z95 = 1.959964
SHOWN = 5  # the running experiment and the latest ended ones


@dataclass(frozen=True)
class Figure:
    """A value with its 95 % interval; ``value`` is None when there is nothing to measure."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    hits: int | None = None


def shown(figure: Figure, unit: str) -> str:
    """``42.1 % (35.0–49.4)``, ``0.0031 (0.0020–0.0042)``, ``812 (640–984)``; ``—`` when nothing measured."""
    if figure.value is None:
        return "—"

    def fmt(x: float) -> str:
        if unit == "share":
            return f"{100 * x:.1f}"
        return f"{x:.4f}" if unit == "usd" else f"{x:.0f}"

    value = fmt(figure.value) + (" %" if unit == "share" else "")
    if figure.low is None or figure.high is None:
        return value
    return f"{value} ({fmt(figure.low)}–{fmt(figure.high)})"


def wilson(hits: int, n: int, z: float = Z95) -> Figure:
    """A proportion and its Wilson score interval (sound for small n and shares near 0 or 1)."""
    if n <= 0:
        return Figure(value=None, n=0, hits=hits)
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Figure(value=p, low=max(0.0, centre - half), high=min(1.0, centre + half), n=n, hits=hits)


def mean_interval(mean: float | None, sd: float | None, n: int, z: float = Z95) -> Figure:
    """A mean and its normal-approximation interval (one observation: no interval)."""
    if not n or mean is None:
        return Figure(value=None, n=n)
    if n < 2 or sd is None:
        return Figure(value=float(mean), n=n)
    half = z * float(sd) / math.sqrt(n)
    return Figure(value=float(mean), low=float(mean) - half, high=float(mean) + half, n=n)


def _arm_runs(experiment: AIExperiment, version_id: int):
    runs = AIRun.objects.filter(config_version_id=version_id, created_at__gte=experiment.started_at)
    if experiment.ended_at:
        runs = runs.filter(created_at__lte=experiment.ended_at)
    return runs


def _ai_answers():
    return Message.objects.filter(author_kind=Message.AuthorKind.AI, is_internal=False, ai_confidence__isnull=False)


def arm_figures(experiment: AIExperiment, version_id: int) -> dict[str, Figure]:
    """The figures of one arm. Four queries, whatever the traffic."""
    runs = _arm_runs(experiment, version_id)
    tickets = Ticket.objects.filter(pk__in=runs.values("ticket_id"))
    answered = Exists(_ai_answers().filter(ticket=OuterRef("pk")))
    agent_wrote = Exists(Message.objects.filter(ticket=OuterRef("pk"), author_kind=Message.AuthorKind.AGENT))
    t = tickets.annotate(answered=answered, agent_wrote=agent_wrote).aggregate(
        n=Count("pk"),
        automated=Count("pk", filter=Q(resolved_at__isnull=False, escalated=False, answered=True, agent_wrote=False)),
        with_answer=Count("pk", filter=Q(answered=True)),
        reopened=Count("pk", filter=Q(answered=True, reopen_count__gt=0)),
        rated=Count("pk", filter=Q(csat_score__isnull=False)),
        low_csat=Count("pk", filter=Q(csat_score__lte=2)),
    )
    votes = (
        _ai_answers()
        .filter(ticket__in=tickets, feedback__in=["yes", "no"])
        .aggregate(voted=Count("pk"), no=Count("pk", filter=Q(feedback="no")))
    )
    per_ticket = runs.values("ticket_id").annotate(spent=Sum("cost"))
    cost = per_ticket.aggregate(mean=Avg("spent"), sd=StdDev("spent", sample=True), n=Count("ticket_id"))
    latency = runs.filter(latency_ms__isnull=False).aggregate(
        mean=Avg("latency_ms"), sd=StdDev("latency_ms", sample=True), n=Count("pk")
    )
    return {
        "automation": wilson(t["automated"], t["n"]),
        "reopened": wilson(t["reopened"], t["with_answer"]),
        "no_votes": wilson(votes["no"], votes["voted"]),
        "low_csat": wilson(t["low_csat"], t["rated"]),
        "cost": mean_interval(cost["mean"], cost["sd"], cost["n"]),
        "latency": mean_interval(latency["mean"], latency["sd"], latency["n"]),
    }


def metric_rows() -> list[tuple[str, str, str, bool]]:
    """(key, label, unit, higher is better) in the order the page shows them."""
    return [
        ("automation", gettext("Resolved by the AI alone"), "share", True),
        ("reopened", gettext("Reopened after an AI answer"), "share", False),
        ("no_votes", gettext("“No” votes on AI answers"), "share", False),
        ("low_csat", gettext("CSAT 1–2"), "share", False),
        ("cost", gettext("AI cost per conversation (USD)"), "usd", False),
        ("latency", gettext("Latency per AI run (ms)"), "ms", False),
    ]


def experiments_summary(limit: int = SHOWN) -> list[dict]:
    """The experiments that ran (running first, then the latest ended), each with both arms' figures."""
    recent = (
        AIExperiment.objects.exclude(status=AIExperiment.Status.DRAFT)
        .select_related("version_a", "version_b", "winner")
        .order_by(F("ended_at").desc(nulls_first=True), "-pk")[:limit]  # the running one (no end) first
    )
    out = []
    for e in recent:
        a, b = arm_figures(e, e.version_a_id), arm_figures(e, e.version_b_id)
        out.append(
            {
                "experiment": e,
                "arms": [("A", e.version_a, 100 - e.share_b), ("B", e.version_b, e.share_b)],
                "rows": [
                    {
                        "key": key,
                        "label": label,
                        "higher_better": better,
                        "a": a[key],
                        "b": b[key],
                        "a_shown": shown(a[key], unit),
                        "b_shown": shown(b[key], unit),
                    }
                    for key, label, unit, better in metric_rows()
                ],
                "conversations": (a["automation"].n, b["automation"].n),
                "can_promote": e.winner_id is None,
                "until": e.ended_at or timezone.now(),
            }
        )
    return out
