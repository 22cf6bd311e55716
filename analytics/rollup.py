"""Rebuild the daily rollups for a day range from the ticket tables (definitions: docs/metrics.md).

``rebuild(since, until)`` deletes the range's rows and recomputes them with one INSERT … SELECT per
table, in one transaction: idempotent, and the pages never see a half-built day. Days are calendar
days in ``TIME_ZONE``. ``ensure_fresh()`` keeps today (and yesterday, across midnight) at most
``FRESH_SECONDS`` old for the pages; the beat task rebuilds yesterday and today every 10 minutes and
the last 30 days nightly (a reopen can move a resolution out of an earlier day).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from analytics.models import DailyAgentStats, DailyAIRuns, DailyCount, DailyTicketStats, RollupState

FRESH_SECONDS = 60
NIGHTLY_DAYS = 30

# One row per event that counts on a day, with the ticket's dimensions; the INSERT below aggregates.
# f1/f2/f3 are per-kind flags, secs a duration (or the CSAT score), amount a cost (for a resolution: all
# AI runs of a ticket the AI resolved alone).
_TICKET_EVENTS = """
WITH ev AS (
    SELECT (t.created_at AT TIME ZONE %(tz)s)::date AS day, t.department_id, t.channel, t.priority,
           'created' AS kind, NULL::int AS secs,
           (t.triage <> '{}'::jsonb)::int AS f1, 0 AS f2, 0 AS f3, 0::numeric AS amount
    FROM tickets_ticket t WHERE t.created_at >= %(start)s AND t.created_at < %(end)s
  UNION ALL
    SELECT (t.escalated_at AT TIME ZONE %(tz)s)::date, t.department_id, t.channel, t.priority,
           'escalated', NULL, 0, 0, 0, 0
    FROM tickets_ticket t WHERE t.escalated_at >= %(start)s AND t.escalated_at < %(end)s
  UNION ALL
    SELECT (t.first_response_at AT TIME ZONE %(tz)s)::date, t.department_id, t.channel, t.priority,
           'first_response', GREATEST(0, EXTRACT(EPOCH FROM t.first_response_at - t.created_at))::int,
           t.first_response_breached::int, 0, 0, 0
    FROM tickets_ticket t WHERE t.first_response_at >= %(start)s AND t.first_response_at < %(end)s
  UNION ALL
    SELECT (t.resolved_at AT TIME ZONE %(tz)s)::date, t.department_id, t.channel, t.priority,
           'resolved', GREATEST(0, EXTRACT(EPOCH FROM t.resolved_at - t.created_at))::int,
           ai.alone::int, (t.reopen_count > 0)::int, t.resolution_breached::int,
           CASE WHEN ai.alone THEN (SELECT coalesce(sum(r.cost), 0) FROM tickets_airun r WHERE r.ticket_id = t.id)
                ELSE 0 END
    FROM tickets_ticket t
    CROSS JOIN LATERAL (
        SELECT NOT t.escalated
               AND EXISTS (SELECT 1 FROM tickets_message m
                           WHERE m.ticket_id = t.id AND m.author_kind = 'ai' AND NOT m.is_internal
                             AND m.ai_confidence IS NOT NULL)
               AND NOT EXISTS (SELECT 1 FROM tickets_message m
                               WHERE m.ticket_id = t.id AND m.author_kind = 'agent') AS alone
    ) ai
    WHERE t.resolved_at >= %(start)s AND t.resolved_at < %(end)s
  UNION ALL
    SELECT (t.csat_at AT TIME ZONE %(tz)s)::date, t.department_id, t.channel, t.priority,
           'csat', t.csat_score, (t.csat_score >= 4)::int, 0, 0, 0
    FROM tickets_ticket t
    WHERE t.csat_at >= %(start)s AND t.csat_at < %(end)s AND t.csat_score IS NOT NULL
  UNION ALL
    SELECT (d.created_at AT TIME ZONE %(tz)s)::date, t.department_id, t.channel, t.priority,
           'ai_decision', NULL, (d.status = 'sent')::int, 0, 0, 0
    FROM tickets_aidraft d JOIN tickets_ticket t ON t.id = d.ticket_id
    WHERE d.created_at >= %(start)s AND d.created_at < %(end)s
      AND coalesce(d.gate->>'reply', 'answer') <> 'act'  -- a greeting or a thanks is not a question decided
  UNION ALL
    SELECT (r.created_at AT TIME ZONE %(tz)s)::date, t.department_id, COALESCE(t.channel, ''),
           COALESCE(t.priority, ''), 'ai_cost', NULL, 0, 0, 0, r.cost
    FROM tickets_airun r LEFT JOIN tickets_ticket t ON t.id = r.ticket_id
    WHERE r.created_at >= %(start)s AND r.created_at < %(end)s
)
INSERT INTO analytics_dailyticketstats (
    day, department_id, channel, priority, created, ai_triaged, escalated,
    first_responses, first_response_breached, first_response_seconds,
    resolved, resolved_by_ai, resolved_reopened, resolution_breached, resolution_seconds,
    csat_count, csat_sum, csat_satisfied, ai_decisions, ai_sent, ai_cost, resolved_by_ai_cost)
SELECT day, department_id, channel, priority,
    count(*) FILTER (WHERE kind = 'created'),
    coalesce(sum(f1) FILTER (WHERE kind = 'created'), 0),
    count(*) FILTER (WHERE kind = 'escalated'),
    count(*) FILTER (WHERE kind = 'first_response'),
    coalesce(sum(f1) FILTER (WHERE kind = 'first_response'), 0),
    coalesce(array_agg(secs ORDER BY secs) FILTER (WHERE kind = 'first_response'), '{}'),
    count(*) FILTER (WHERE kind = 'resolved'),
    coalesce(sum(f1) FILTER (WHERE kind = 'resolved'), 0),
    coalesce(sum(f2) FILTER (WHERE kind = 'resolved'), 0),
    coalesce(sum(f3) FILTER (WHERE kind = 'resolved'), 0),
    coalesce(array_agg(secs ORDER BY secs) FILTER (WHERE kind = 'resolved'), '{}'),
    count(*) FILTER (WHERE kind = 'csat'),
    coalesce(sum(secs) FILTER (WHERE kind = 'csat'), 0),
    coalesce(sum(f1) FILTER (WHERE kind = 'csat'), 0),
    count(*) FILTER (WHERE kind = 'ai_decision'),
    coalesce(sum(f1) FILTER (WHERE kind = 'ai_decision'), 0),
    coalesce(sum(amount) FILTER (WHERE kind = 'ai_cost'), 0),
    coalesce(sum(amount) FILTER (WHERE kind = 'resolved'), 0)
FROM ev GROUP BY day, department_id, channel, priority
"""

_COUNTS = """
WITH ev AS (
    SELECT (t.created_at AT TIME ZONE %(tz)s)::date AS day, t.department_id, t.channel,
           'category' AS dimension, COALESCE(NULLIF(t.category, ''), 'uncategorised') AS value
    FROM tickets_ticket t WHERE t.created_at >= %(start)s AND t.created_at < %(end)s
  UNION ALL
    SELECT (t.created_at AT TIME ZONE %(tz)s)::date, t.department_id, t.channel,
           'sentiment', COALESCE(NULLIF(t.sentiment, ''), 'unknown')
    FROM tickets_ticket t WHERE t.created_at >= %(start)s AND t.created_at < %(end)s
  UNION ALL
    SELECT (t.escalated_at AT TIME ZONE %(tz)s)::date, t.department_id, t.channel,
           'escalation_reason', COALESCE(NULLIF(left(t.escalation_reason, 255), ''), '(no reason given)')
    FROM tickets_ticket t WHERE t.escalated_at >= %(start)s AND t.escalated_at < %(end)s
  UNION ALL
    SELECT (e.created_at AT TIME ZONE %(tz)s)::date, t.department_id, t.channel, 'correction', e.field
    FROM tickets_ticketevent e JOIN tickets_ticket t ON t.id = e.ticket_id
    WHERE e.created_at >= %(start)s AND e.created_at < %(end)s AND e.actor_kind = 'agent'
      AND e.kind IN ('triage_changed', 'priority_changed', 'department_changed')
      AND e.field IN ('category', 'department', 'priority')
  UNION ALL
    SELECT (d.created_at AT TIME ZONE %(tz)s)::date, t.department_id, t.channel, dim,
           to_char(LEAST(floor(d.confidence * 10) / 10, 0.9), 'FM0.0')
    FROM tickets_aidraft d JOIN tickets_ticket t ON t.id = d.ticket_id
    CROSS JOIN LATERAL (VALUES ('confidence'), ('confidence_bad')) AS dims(dim)
    WHERE d.created_at >= %(start)s AND d.created_at < %(end)s AND d.status = 'sent'
      AND coalesce(d.gate->>'reply', 'answer') = 'answer'
      AND (dim = 'confidence' OR t.reopen_count > 0 OR t.csat_score <= 2)
  UNION ALL
    SELECT (m.created_at AT TIME ZONE %(tz)s)::date, t.department_id, t.channel, 'confidence_' || m.feedback,
           to_char(LEAST(floor(m.ai_confidence * 10) / 10, 0.9), 'FM0.0')
    FROM tickets_message m JOIN tickets_ticket t ON t.id = m.ticket_id
    WHERE m.created_at >= %(start)s AND m.created_at < %(end)s AND m.author_kind = 'ai'
      AND m.ai_confidence IS NOT NULL AND m.feedback IN ('yes', 'no')
)
INSERT INTO analytics_dailycount (day, department_id, channel, dimension, value, count)
SELECT day, department_id, channel, dimension, value, count(*)
FROM ev GROUP BY day, department_id, channel, dimension, value
"""

_AGENTS = """
WITH ev AS (
    SELECT (t.resolved_at AT TIME ZONE %(tz)s)::date AS day, t.assignee_id AS agent_id, t.department_id,
           t.channel, 'resolved' AS kind, GREATEST(0, EXTRACT(EPOCH FROM t.resolved_at - t.created_at))::int AS secs,
           (t.reopen_count > 0)::int AS f1
    FROM tickets_ticket t
    WHERE t.resolved_at >= %(start)s AND t.resolved_at < %(end)s AND t.assignee_id IS NOT NULL
  UNION ALL
    SELECT (t.csat_at AT TIME ZONE %(tz)s)::date, t.assignee_id, t.department_id, t.channel, 'csat', NULL,
           (t.csat_score >= 4)::int
    FROM tickets_ticket t
    WHERE t.csat_at >= %(start)s AND t.csat_at < %(end)s AND t.assignee_id IS NOT NULL
      AND t.csat_score IS NOT NULL
  UNION ALL
    SELECT (m.created_at AT TIME ZONE %(tz)s)::date, m.author_user_id, t.department_id, t.channel,
           CASE WHEN m.is_internal THEN 'note' ELSE 'reply' END, NULL, 0
    FROM tickets_message m JOIN tickets_ticket t ON t.id = m.ticket_id
    WHERE m.created_at >= %(start)s AND m.created_at < %(end)s AND m.author_kind = 'agent'
      AND m.author_user_id IS NOT NULL
  UNION ALL
    SELECT (t.first_response_at AT TIME ZONE %(tz)s)::date, first.author_user_id, t.department_id, t.channel,
           'first_response', GREATEST(0, EXTRACT(EPOCH FROM t.first_response_at - t.created_at))::int, 0
    FROM tickets_ticket t
    CROSS JOIN LATERAL (
        SELECT m.author_kind, m.author_user_id FROM tickets_message m
        WHERE m.ticket_id = t.id AND m.author_kind IN ('agent', 'ai') AND NOT m.is_internal
        ORDER BY m.seq LIMIT 1
    ) first
    WHERE t.first_response_at >= %(start)s AND t.first_response_at < %(end)s
      AND first.author_kind = 'agent' AND first.author_user_id IS NOT NULL
)
INSERT INTO analytics_dailyagentstats (
    day, agent_id, department_id, channel, resolved, resolved_reopened, resolution_seconds,
    first_response_seconds, csat_count, csat_satisfied, public_replies, internal_notes)
SELECT day, agent_id, department_id, channel,
    count(*) FILTER (WHERE kind = 'resolved'),
    coalesce(sum(f1) FILTER (WHERE kind = 'resolved'), 0),
    coalesce(array_agg(secs ORDER BY secs) FILTER (WHERE kind = 'resolved'), '{}'),
    coalesce(array_agg(secs ORDER BY secs) FILTER (WHERE kind = 'first_response'), '{}'),
    count(*) FILTER (WHERE kind = 'csat'),
    coalesce(sum(f1) FILTER (WHERE kind = 'csat'), 0),
    count(*) FILTER (WHERE kind = 'reply'),
    count(*) FILTER (WHERE kind = 'note')
FROM ev GROUP BY day, agent_id, department_id, channel
"""

_AI_RUNS = """
INSERT INTO analytics_dailyairuns (
    day, department_id, channel, provider, model, kind, runs, failed, fallback, cost, latency_ms)
SELECT (r.created_at AT TIME ZONE %(tz)s)::date, t.department_id, COALESCE(t.channel, ''), r.provider, r.model,
    r.kind, count(*), count(*) FILTER (WHERE r.status = 'failed'), count(*) FILTER (WHERE r.fallback),
    coalesce(sum(r.cost), 0),
    coalesce(array_agg(r.latency_ms ORDER BY r.latency_ms) FILTER (WHERE r.latency_ms IS NOT NULL), '{}')
FROM tickets_airun r LEFT JOIN tickets_ticket t ON t.id = r.ticket_id
WHERE r.created_at >= %(start)s AND r.created_at < %(end)s
GROUP BY 1, 2, 3, 4, 5, 6
"""

TABLES = (DailyTicketStats, DailyCount, DailyAgentStats, DailyAIRuns)


def tz() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def today() -> dt.date:
    return timezone.localtime(timezone.now(), tz()).date()


def tz_date(moment: dt.datetime) -> dt.date:
    return timezone.localtime(moment, tz()).date()


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz())


def rebuild(since: dt.date, until: dt.date) -> int:
    """Recompute every rollup row of the days ``since``…``until`` (inclusive). Returns rows written."""
    if until < since:
        raise ValueError(f"The range ends ({until}) before it starts ({since}).")
    params = {"tz": settings.TIME_ZONE, "start": day_start(since), "end": day_start(until + dt.timedelta(days=1))}
    written = 0
    with transaction.atomic():
        for model in TABLES:
            model.objects.filter(day__gte=since, day__lte=until).delete()
        with connection.cursor() as cursor:
            for sql in (_TICKET_EVENTS, _COUNTS, _AGENTS, _AI_RUNS):
                cursor.execute(sql, params)
                written += cursor.rowcount
        now = timezone.now()
        days = [since + dt.timedelta(days=i) for i in range((until - since).days + 1)]
        RollupState.objects.filter(day__in=days).delete()
        RollupState.objects.bulk_create(RollupState(day=d, rebuilt_at=now) for d in days)
    return written


def ensure_fresh() -> None:
    """Today's rows at most ``FRESH_SECONDS`` old (and yesterday's rebuilt after midnight): the pages
    show today live at the cost of one small rebuild a minute, whichever request comes first."""
    if not cache.add("sf:analytics:fresh", "1", timeout=FRESH_SECONDS):
        return
    current = today()
    yesterday = current - dt.timedelta(days=1)
    stale_yesterday = not RollupState.objects.filter(day=yesterday, rebuilt_at__gte=day_start(current)).exists()
    rebuild(yesterday if stale_yesterday else current, current)


def recent() -> int:
    """Beat, every 10 minutes: yesterday and today."""
    current = today()
    return rebuild(current - dt.timedelta(days=1), current)


def nightly() -> int:
    """Beat, nightly: the last ``NIGHTLY_DAYS`` days (reopens and late ratings move figures)."""
    current = today()
    return rebuild(current - dt.timedelta(days=NIGHTLY_DAYS), current)
