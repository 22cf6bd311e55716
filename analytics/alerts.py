"""Alerts on the AI from one set of thresholds (the ``ALERT_*`` settings, docs/operations.md "Alerts").

Two readers share them: the Prometheus rules (``rules_yaml``, which ``manage.py alert_rules`` writes to
``deploy/prometheus/alerts.yml``, so the committed file cannot drift from the settings: a test compares
them) and the console's banner (``alerts_current``), which evaluates the same conditions over the same
window from the database and Redis — the tables the counters are made from — at most once per
``ALERT_BANNER_CACHE_S`` for every process: the banner (fetched after the console page by alerts.js)
costs one cache read.

Prometheus counts events (an escalation, a vote, a change of vote), the banner counts rows (tickets
escalated, current votes), so near a threshold the two can disagree for a while; both say the same thing
when it matters.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import redis
from django.conf import settings
from django.core.cache import cache
from django.db.models import Avg, Count, Q
from django.utils import timezone

from supportflow import redis_roles
from tickets.models import AIDraft, Message, Ticket
from tickets.roles import user_is_agent, user_is_manager

logger = logging.getLogger(__name__)

RULES_PATH = Path(settings.BASE_DIR) / "deploy" / "prometheus" / "alerts.yml"
CACHE_KEY = "analytics:alerts:v1"
SESSION_KEY = "sf_alerts_dismissed"
AI_QUEUE = "ai"
SOCKET_TIMEOUT_S = 1.0

# The conditions, in the banner's order; the backlog is the one agents see too (their customers wait).
CONFIDENCE, ESCALATION, NO_VOTES, BREAKER, BACKLOG = "confidence", "escalation", "no_votes", "breaker", "backlog"
AGENT_ALERTS = frozenset({BACKLOG})


@dataclass(frozen=True)
class Thresholds:
    window_minutes: int
    min_samples: int
    confidence_below: float
    escalation_rate_above: float
    no_vote_share_above: float
    ai_backlog_above: int

    @classmethod
    def from_settings(cls) -> Thresholds:
        return cls(
            window_minutes=settings.ALERT_WINDOW_MINUTES,
            min_samples=settings.ALERT_MIN_SAMPLES,
            confidence_below=settings.ALERT_CONFIDENCE_BELOW,
            escalation_rate_above=settings.ALERT_ESCALATION_RATE_ABOVE,
            no_vote_share_above=settings.ALERT_NO_VOTE_SHARE_ABOVE,
            ai_backlog_above=settings.ALERT_AI_BACKLOG_ABOVE,
        )


# --- Prometheus rules -----------------------------------------------------------------------------------


def _ratio_rule(*, part: str, whole: str, op: str, threshold: float, t: Thresholds) -> str:
    """``part / whole`` over the window compared with ``threshold``, only once ``whole`` has enough samples."""
    window = f"[{t.window_minutes}m]"
    return (
        f"sum(increase({part}{window}))\n"
        f"  / sum(increase({whole}{window})) {op} {threshold:g}\n"
        f"and sum(increase({whole}{window})) >= {t.min_samples}"
    )


def _ai_rules(t: Thresholds) -> list[dict]:
    window = f"{t.window_minutes} minutes"
    return [
        {
            "alert": "SupportFlowAIConfidenceLow",
            "expr": _ratio_rule(
                part="supportflow_ai_answer_confidence_sum",
                whole="supportflow_ai_answer_confidence_count",
                op="<",
                threshold=t.confidence_below,
                t=t,
            ),
            "for": "10m",
            "severity": "warning",
            "summary": f"Average AI answer confidence is below {t.confidence_below:.0%}",
            "description": (
                f"The AI's knowledge-base answers averaged {{{{ $value | humanizePercentage }}}} confidence over "
                f"{window} (at least {t.min_samples} answers). Fewer answers go out on their own: check the "
                "knowledge base (new questions? articles unpublished?) and the AI page's knowledge gaps."
            ),
        },
        {
            "alert": "SupportFlowEscalationRateHigh",
            "expr": _ratio_rule(
                part="supportflow_escalations_total",
                whole="supportflow_tickets_created_total",
                op=">",
                threshold=t.escalation_rate_above,
                t=t,
            ),
            "for": "10m",
            "severity": "warning",
            "summary": f"More than {t.escalation_rate_above:.0%} of new tickets are escalated to a person",
            "description": (
                f"{{{{ $value | humanizePercentage }}}} escalations per ticket created over {window}. "
                "supportflow_escalations_total by reason says why (low confidence, a rule, SLA breaches, agents)."
            ),
        },
        {
            "alert": "SupportFlowAINoVotesHigh",
            "expr": _ratio_rule(
                part='supportflow_ai_answer_votes_total{vote="no"}',
                whole="supportflow_ai_answer_votes_total",
                op=">",
                threshold=t.no_vote_share_above,
                t=t,
            ),
            "for": "10m",
            "severity": "warning",
            "summary": f'More than {t.no_vote_share_above:.0%} of customers\' votes on AI answers are "No"',
            "description": (
                f"{{{{ $value | humanizePercentage }}}} of the votes over {window} said an AI answer did not help. "
                "Read the answers voted No (AI page, confidence vs outcome) and fix their articles."
            ),
        },
        {
            "alert": "SupportFlowLLMBreakerOpen",
            "expr": 'max(supportflow_llm_breaker_state{state="open"}) == 1',
            "for": "1m",
            "severity": "warning",
            "summary": "The LLM circuit breaker is open",
            "description": (
                "Calls to the OpenAI-compatible endpoint failed repeatedly; the local provider answers meanwhile "
                "(lower quality). Check the endpoint, its key and quota."
            ),
        },
        {
            "alert": "SupportFlowAIQueueBacklog",
            "expr": f'max(supportflow_celery_queue_length{{queue="{AI_QUEUE}"}}) > {t.ai_backlog_above}',
            "for": "2m",
            "severity": "critical",
            "summary": "Customer messages are waiting for the AI (ai queue: {{ $value }})",
            "description": (
                f"More than {t.ai_backlog_above} tasks have waited in the ai queue for 2 minutes: add workers for "
                "the ai queue or check that workers run."
            ),
        },
    ]


def _rule_yaml(rule: dict) -> list[str]:
    lines = [f"      - alert: {rule['alert']}", "        expr: |"]
    lines += [f"          {line}" for line in rule["expr"].splitlines()]
    if rule.get("for"):
        lines.append(f"        for: {rule['for']}")
    lines += ["        labels:", f"          severity: {rule['severity']}", "        annotations:"]
    for key in ("summary", "description"):
        lines.append(f"          {key}: {json.dumps(rule[key], ensure_ascii=False)}")
    return lines


def rules(t: Thresholds) -> list[dict]:
    """Every alert rule: the platform's (fixed, in ``alerts_platform.json``) and the AI's (from ``t``)."""
    platform = json.loads((Path(__file__).parent / "data" / "alerts_platform.json").read_text())
    return platform + _ai_rules(t)


def rules_yaml(t: Thresholds) -> str:
    """``deploy/prometheus/alerts.yml`` for these thresholds (block scalars for PromQL, JSON-quoted text)."""
    lines = [
        "# Generated by `python manage.py alert_rules` from the ALERT_* settings: edit those (or",
        '# analytics/alerts.py), not this file. What each alert means and what to do: docs/operations.md, "Alerts".',
        "groups:",
        "  - name: supportflow",
        "    rules:",
    ]
    for index, rule in enumerate(rules(t)):
        if index:
            lines.append("")
        lines += _rule_yaml(rule)
    return "\n".join(lines) + "\n"


# --- the console banner ---------------------------------------------------------------------------------


def _share(part: int, whole: int, *, t: Thresholds) -> float | None:
    return part / whole if whole >= t.min_samples else None


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _ai_backlog() -> int | None:
    url = settings.REDIS_BROKER_URL
    try:
        with _clients_lock:
            client = _clients.get(url) or _clients.setdefault(
                url,
                redis_roles.client(url, socket_connect_timeout=SOCKET_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S),
            )
        return int(client.llen(AI_QUEUE))
    except (redis.RedisError, OSError) as exc:
        logger.warning("ai queue length unavailable (Redis: %s)", exc)
        return None


def figures(*, t: Thresholds, now: dt.datetime | None = None) -> dict:
    """The figures behind each condition over the last ``t.window_minutes``; a ratio is None below
    ``t.min_samples`` (too few to judge). Three aggregate queries, one breaker read, one ``LLEN``."""
    from supportflow.llm import breaker

    since = (now or timezone.now()) - dt.timedelta(minutes=t.window_minutes)
    answers = (
        AIDraft.objects.filter(created_at__gte=since)
        .exclude(gate__contains={"reply": "act"})  # containment: a gate without "reply" stays in
        .exclude(gate__contains={"reply": "clarify"})
        .aggregate(n=Count("pk"), avg=Avg("confidence"))
    )
    tickets = Ticket.objects.aggregate(
        created=Count("pk", filter=Q(created_at__gte=since)), escalated=Count("pk", filter=Q(escalated_at__gte=since))
    )
    votes = Message.objects.filter(feedback_at__gte=since, feedback__in=["yes", "no"]).aggregate(
        n=Count("pk"), no=Count("pk", filter=Q(feedback="no"))
    )
    return {
        "confidence": answers["avg"] if answers["n"] >= t.min_samples else None,
        "answers": answers["n"],
        "escalation_rate": _share(tickets["escalated"], tickets["created"], t=t),
        "tickets": tickets["created"],
        "no_vote_share": _share(votes["no"], votes["n"], t=t),
        "votes": votes["n"],
        "breaker_open": breaker.status()["state"] == "open",
        "ai_backlog": _ai_backlog(),
    }


def conditions(*, values: dict, t: Thresholds) -> list[dict]:
    """The alerts that hold for ``values`` (``figures``' dict), each ``{"key", "value", "threshold"}``."""
    found = []
    if values["confidence"] is not None and values["confidence"] < t.confidence_below:
        found.append({"key": CONFIDENCE, "value": values["confidence"], "threshold": t.confidence_below})
    if values["escalation_rate"] is not None and values["escalation_rate"] > t.escalation_rate_above:
        found.append({"key": ESCALATION, "value": values["escalation_rate"], "threshold": t.escalation_rate_above})
    if values["no_vote_share"] is not None and values["no_vote_share"] > t.no_vote_share_above:
        found.append({"key": NO_VOTES, "value": values["no_vote_share"], "threshold": t.no_vote_share_above})
    if values["breaker_open"]:
        found.append({"key": BREAKER, "value": 1, "threshold": 1})
    if values["ai_backlog"] is not None and values["ai_backlog"] > t.ai_backlog_above:
        found.append({"key": BACKLOG, "value": values["ai_backlog"], "threshold": t.ai_backlog_above})
    return found


def alerts_current() -> dict:
    """``{"alerts": [...], "window_minutes": N}``, computed at most once per ``ALERT_BANNER_CACHE_S``
    (in the shared cache, so for every process). A failure to compute shows no banner, never an error page."""
    current = cache.get(CACHE_KEY)
    if current is None:
        t = Thresholds.from_settings()
        try:
            current = {"alerts": conditions(values=figures(t=t), t=t), "window_minutes": t.window_minutes}
        except Exception:
            logger.warning("alert conditions not computed", exc_info=True)
            current = {"alerts": [], "window_minutes": t.window_minutes}
        cache.set(CACHE_KEY, current, settings.ALERT_BANNER_CACHE_S)
    return current


def _signature(alerts: list[dict]) -> str:
    return ",".join(sorted(alert["key"] for alert in alerts))


def alerts_for_user(*, user, session) -> dict | None:
    """What the banner shows this user: every alert for managers, the backlog for agents, nothing for
    anyone else, and nothing once they dismissed this same set of alerts in this session."""
    if user_is_manager(user):
        shown = None
    elif user_is_agent(user):
        shown = AGENT_ALERTS
    else:
        return None
    current = alerts_current()
    alerts = [alert for alert in current["alerts"] if shown is None or alert["key"] in shown]
    if not alerts or session.get(SESSION_KEY) == _signature(alerts):
        return None
    return {**current, "alerts": alerts, "signature": _signature(alerts), "full": shown is None}


def alerts_dismiss(*, user, session) -> None:
    """Hide the banner for this session until the set of alerts this user sees changes."""
    shown = alerts_for_user(user=user, session={})
    if shown is not None:
        session[SESSION_KEY] = shown["signature"]
