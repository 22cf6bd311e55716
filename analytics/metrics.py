"""The figures on the analytics pages, read from the daily rollups (definitions: docs/metrics.md).

Every function takes ``Filters`` and runs a fixed number of queries whatever the data size: the
rollups are summed with SQL over the range, medians come from ``percentile_cont`` over the stored
duration arrays (exact), and the live tiles count active tickets on the indexed status column.
"""

# ruff: noqa: S608 — the SQL is built only from constants here (Filters.where's clauses); values are bound.

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Q

from analytics import rollup
from tickets.models import Department, Ticket

FIRST_RESPONSE_BUCKETS = [
    ("< 1 min", 60),
    ("1–5 min", 300),
    ("5–15 min", 900),
    ("15–60 min", 3600),
    ("1–4 h", 4 * 3600),
    ("4–24 h", 24 * 3600),
    ("> 24 h", None),
]
RESOLUTION_BUCKETS = [
    ("< 1 h", 3600),
    ("1–4 h", 4 * 3600),
    ("4–24 h", 24 * 3600),
    ("1–3 days", 3 * 86400),
    ("3–7 days", 7 * 86400),
    ("> 7 days", None),
]
NO_DEPARTMENT = "No department"


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date
    department_id: int | None = None  # 0 = unrouted tickets only
    channel: str = ""

    def where(self, alias: str = "") -> tuple[str, list]:
        """SQL conditions on a rollup table (``day``, ``department_id``, ``channel``) and parameters."""
        p = f"{alias}." if alias else ""
        clauses, params = [f"{p}day >= %s", f"{p}day <= %s"], [self.start, self.end]
        if self.department_id == 0:
            clauses.append(f"{p}department_id IS NULL")
        elif self.department_id:
            clauses.append(f"{p}department_id = %s")
            params.append(self.department_id)
        if self.channel:
            clauses.append(f"{p}channel = %s")
            params.append(self.channel)
        return " AND ".join(clauses), params

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _ratio(part, whole) -> float | None:
    return round(float(part) / float(whole), 4) if whole else None


def _minutes(seconds) -> float | None:
    return None if seconds is None else round(float(seconds) / 60, 1)


@contextmanager
def reading():
    """One transaction for a page's queries, with room to sort in memory: a year of durations is
    ~100k values per median, which spills to disk at PostgreSQL's default 4 MB ``work_mem``."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = %s", [settings.ANALYTICS_WORK_MEM])
        yield


def department_names() -> dict[int | None, str]:
    names: dict[int | None, str] = dict(Department.objects.values_list("pk", "name"))
    names[None] = NO_DEPARTMENT
    return names


# --- overview ------------------------------------------------------------------------------------


def totals(f: Filters) -> dict:
    """The range's tiles: volume, medians, rates, CSAT, AI cost (one query)."""
    where, params = f.where()
    row = _rows(
        f"""
        WITH sel AS (SELECT * FROM analytics_dailyticketstats WHERE {where})
        SELECT coalesce(sum(created), 0), coalesce(sum(escalated), 0), coalesce(sum(resolved), 0),
               coalesce(sum(resolved_by_ai), 0), coalesce(sum(csat_count), 0), coalesce(sum(csat_sum), 0),
               coalesce(sum(csat_satisfied), 0), coalesce(sum(ai_cost), 0), coalesce(sum(ai_decisions), 0),
               coalesce(sum(ai_sent), 0), coalesce(sum(first_responses), 0),
               (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s)
                  FROM sel, unnest(sel.first_response_seconds) s),
               (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s)
                  FROM sel, unnest(sel.resolution_seconds) s)
        FROM sel
        """,
        params,
    )[0]
    created, escalated, resolved, by_ai, csat_n, csat_sum, csat_ok, cost, decisions, sent, first, frt, res = row
    return {
        "created": created,
        "escalated": escalated,
        "resolved": resolved,
        "resolved_by_ai": by_ai,
        "first_responses": first,
        "median_first_response_min": _minutes(frt),
        "median_resolution_min": _minutes(res),
        "automation_rate": _ratio(by_ai, resolved),
        "escalation_rate": _ratio(escalated, created),
        "csat_count": csat_n,
        "csat_satisfied": _ratio(csat_ok, csat_n),
        "csat_mean": _ratio(csat_sum, csat_n),
        "ai_cost": Decimal(cost).quantize(Decimal("0.0001")),
        "ai_cost_per_ticket": (Decimal(cost) / created).quantize(Decimal("0.000001")) if created else None,
        "ai_decisions": decisions,
        "ai_sent": sent,
    }


def _scoped(tickets, f: Filters):
    """``tickets`` limited to the filters' department (0 = unrouted) and channel."""
    if f.department_id == 0:
        tickets = tickets.filter(department__isnull=True)
    elif f.department_id:
        tickets = tickets.filter(department_id=f.department_id)
    return tickets.filter(channel=f.channel) if f.channel else tickets


def live(f: Filters) -> dict:
    """Tiles about now (ignore the date range; respect department and channel)."""
    counts = _scoped(Ticket.objects.filter(status__in=Ticket.ACTIVE_STATUSES), f).aggregate(
        open=Count("pk"),
        waiting=Count("pk", filter=Q(status=Ticket.Status.PENDING)),
        escalated=Count("pk", filter=Q(escalated=True)),
        breached=Count("pk", filter=Q(first_response_breached=True) | Q(resolution_breached=True)),
    )
    today = rollup.today()
    start, end = rollup.day_start(today), rollup.day_start(today + dt.timedelta(days=1))
    new_today = _scoped(Ticket.objects.filter(created_at__gte=start, created_at__lt=end), f).count()
    where, params = Filters(today, today, f.department_id, f.channel).where()
    cost_today = _rows(f"SELECT coalesce(sum(ai_cost), 0) FROM analytics_dailyticketstats WHERE {where}", params)[0][0]
    return {**counts, "new_today": new_today, "ai_cost_today": Decimal(cost_today).quantize(Decimal("0.0001"))}


def daily(f: Filters) -> dict:
    """Per-day series: volume by channel and by department, automation vs escalation, CSAT, cost per ticket."""
    where, params = f.where()
    rows = _rows(
        f"""
        SELECT day, department_id, channel, sum(created), sum(escalated), sum(resolved_by_ai),
               sum(csat_count), sum(csat_satisfied), sum(ai_cost)
        FROM analytics_dailyticketstats WHERE {where}
        GROUP BY day, department_id, channel
        """,
        params,
    )
    names = department_names()
    by_channel: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    by_department: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    per_day: dict[dt.date, dict] = defaultdict(lambda: defaultdict(lambda: Decimal(0)))
    for day, department_id, channel, created, escalated, by_ai, csat_n, csat_ok, cost in rows:
        by_channel[channel][day] += created
        by_department[names.get(department_id, f"#{department_id}")][day] += created
        d = per_day[day]
        d["created"] += created
        d["escalated"] += escalated
        d["by_ai"] += by_ai
        d["csat_n"] += csat_n
        d["csat_ok"] += csat_ok
        d["cost"] += Decimal(cost)
    days = f.days

    def series(table: dict) -> dict[str, list]:
        return {name: [int(values.get(day, 0)) for day in days] for name, values in sorted(table.items())}

    return {
        "days": days,
        "volume_by_channel": series(by_channel),
        "volume_by_department": series(by_department),
        "automation": [int(per_day[d]["by_ai"]) if d in per_day else 0 for d in days],
        "escalation": [int(per_day[d]["escalated"]) if d in per_day else 0 for d in days],
        "csat_share": [_ratio(per_day[d]["csat_ok"], per_day[d]["csat_n"]) if d in per_day else None for d in days],
        "csat_count": [int(per_day[d]["csat_n"]) if d in per_day else 0 for d in days],
        "cost_per_ticket": [
            float(per_day[d]["cost"] / per_day[d]["created"]) if d in per_day and per_day[d]["created"] else None
            for d in days
        ],
    }


def counts_by_day(f: Filters, dimension: str) -> dict[str, list[int]]:
    where, params = f.where()
    rows = _rows(
        f"SELECT day, value, sum(count) FROM analytics_dailycount WHERE dimension = %s AND {where} GROUP BY day, value",
        [dimension, *params],
    )
    table: dict[str, dict] = defaultdict(dict)
    for day, value, count in rows:
        table[value][day] = int(count)
    return {value: [values.get(day, 0) for day in f.days] for value, values in sorted(table.items())}


def counts(f: Filters, dimension: str) -> list[tuple[str, int]]:
    """Totals over the range of one DailyCount dimension, largest first."""
    where, params = f.where()
    rows = _rows(
        f"SELECT value, sum(count) FROM analytics_dailycount WHERE dimension = %s AND {where} "
        "GROUP BY value ORDER BY sum(count) DESC, value",
        [dimension, *params],
    )
    return [(value, int(count)) for value, count in rows]


def _histogram(f: Filters, column: str, buckets: list[tuple[str, int | None]]) -> list[tuple[str, int]]:
    where, params = f.where()
    bounds = [b for _, b in buckets if b is not None]
    rows = _rows(
        f"""
        SELECT width_bucket(s, %s::int[]) AS b, count(*)
        FROM analytics_dailyticketstats sel, unnest(sel.{column}) s WHERE {where} GROUP BY b
        """,
        [bounds, *params],
    )
    found = dict(rows)
    return [(label, int(found.get(i, 0))) for i, (label, _) in enumerate(buckets)]


def first_response_distribution(f: Filters) -> list[tuple[str, int]]:
    return _histogram(f, "first_response_seconds", FIRST_RESPONSE_BUCKETS)


def resolution_distribution(f: Filters) -> list[tuple[str, int]]:
    return _histogram(f, "resolution_seconds", RESOLUTION_BUCKETS)


def sla_compliance(f: Filters) -> list[dict]:
    """Per department and priority: share of first responses and of resolutions within the SLA."""
    where, params = f.where()
    rows = _rows(
        f"""
        SELECT department_id, priority, sum(first_responses), sum(first_response_breached),
               sum(resolved), sum(resolution_breached)
        FROM analytics_dailyticketstats WHERE {where} AND priority <> ''
        GROUP BY department_id, priority
        """,
        params,
    )
    names = department_names()
    order = {p: i for i, p in enumerate(("urgent", "high", "normal", "low"))}
    out = [
        {
            "department": names.get(department_id, f"#{department_id}"),
            "priority": priority,
            "first_responses": int(first),
            "first_response_met": _ratio(first - first_breached, first),
            "resolved": int(resolved),
            "resolution_met": _ratio(resolved - resolved_breached, resolved),
        }
        for department_id, priority, first, first_breached, resolved, resolved_breached in rows
        if first or resolved
    ]
    return sorted(out, key=lambda r: (r["department"], order.get(r["priority"], 9)))


# --- agents ---------------------------------------------------------------------------------------


def agents(f: Filters) -> list[dict]:
    where, params = f.where()
    rows = _rows(
        f"""
        WITH sel AS (SELECT * FROM analytics_dailyagentstats WHERE {where}),
        fr AS (SELECT agent_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS m
               FROM sel, unnest(sel.first_response_seconds) s GROUP BY agent_id),
        rs AS (SELECT agent_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS m
               FROM sel, unnest(sel.resolution_seconds) s GROUP BY agent_id)
        SELECT a.agent_id, a.resolved, a.reopened, a.csat_n, a.csat_ok, a.replies, a.notes, fr.m, rs.m
        FROM (SELECT agent_id, sum(resolved) AS resolved, sum(resolved_reopened) AS reopened,
                     sum(csat_count) AS csat_n, sum(csat_satisfied) AS csat_ok,
                     sum(public_replies) AS replies, sum(internal_notes) AS notes
              FROM sel GROUP BY agent_id) a
        LEFT JOIN fr ON fr.agent_id = a.agent_id LEFT JOIN rs ON rs.agent_id = a.agent_id
        """,
        params,
    )
    users = {
        u.pk: (u.get_full_name() or u.get_username())
        for u in get_user_model().objects.filter(pk__in=[r[0] for r in rows])
    }
    out = [
        {
            "agent": users.get(agent_id, f"user #{agent_id}"),
            "tickets_handled": int(resolved),
            "median_first_response_min": _minutes(frt),
            "median_resolution_min": _minutes(res),
            "reopen_rate": _ratio(reopened, resolved),
            "csat_satisfied": _ratio(csat_ok, csat_n),
            "csat_count": int(csat_n),
            "public_replies": int(replies),
            "internal_notes": int(notes),
            "internal_note_ratio": _ratio(notes, notes + replies),
        }
        for agent_id, resolved, reopened, csat_n, csat_ok, replies, notes, frt, res in rows
    ]
    return sorted(out, key=lambda r: (-r["tickets_handled"], r["agent"]))


# --- AI -------------------------------------------------------------------------------------------


def ai_cache_summary(f: Filters) -> dict | None:
    """The AI cache over the period (all departments and channels: a cached answer serves any of them):
    per cache (retrieval, answer) its lookups, hits, hit rate and the LLM spend its hits avoided; ``None``
    when the metrics store (Redis) cannot be read. Days are UTC days, as the counters record them."""
    import redis

    from supportflow import metrics as live

    try:
        daily = live.ai_cache_daily(start=f.start, end=f.end)
    except (redis.RedisError, OSError):
        return None
    rows = []
    for name in ("answer", "retrieval"):
        figures = daily.get(name, {})
        hits, misses = figures.get("hits", 0), figures.get("misses", 0)
        rows.append(
            {
                "cache": name,
                "lookups": hits + misses,
                "hits": hits,
                "hit_rate": hits / (hits + misses) if hits + misses else None,
                "saved": (Decimal(figures.get("saved_microusd", 0)) / 1_000_000).quantize(Decimal("0.000001")),
            }
        )
    answer = rows[0]
    return {"rows": rows, "calls_saved": answer["hits"], "money_saved": answer["saved"]}


def ai_summary(f: Filters) -> dict:
    where, params = f.where()
    decisions, sent, triaged = _rows(
        "SELECT coalesce(sum(ai_decisions), 0), coalesce(sum(ai_sent), 0), coalesce(sum(ai_triaged), 0) "
        f"FROM analytics_dailyticketstats WHERE {where}",
        params,
    )[0]
    corrections = dict(counts(f, "correction"))
    sent_by_bucket = dict(counts(f, "confidence"))
    bad = dict(counts(f, "confidence_bad"))
    said_yes, said_no = dict(counts(f, "confidence_yes")), dict(counts(f, "confidence_no"))
    buckets = [f"{i / 10:.1f}" for i in range(10)]
    return {
        "decisions": decisions,
        "auto_answered": sent,
        "auto_answered_share": _ratio(sent, decisions),
        "escalations_by_reason": counts(f, "escalation_reason"),
        "calibration": [
            {
                "confidence": f"{b}–{float(b) + 0.1:.1f}",
                "sent": sent_by_bucket.get(b, 0),
                "bad_outcome": bad.get(b, 0),
                "bad_share": _ratio(bad.get(b, 0), sent_by_bucket.get(b, 0)),
                "customer_yes": said_yes.get(b, 0),
                "customer_no": said_no.get(b, 0),
                "no_share": _ratio(said_no.get(b, 0), said_yes.get(b, 0) + said_no.get(b, 0)),
            }
            for b in buckets
            if sent_by_bucket.get(b)
        ],
        "triaged": int(triaged),
        "corrections": [
            {
                "field": field,
                "corrections": corrections.get(field, 0),
                "rate": _ratio(corrections.get(field, 0), triaged),
            }
            for field in ("category", "department", "priority")
        ],
    }


def ai_runs(f: Filters) -> list[dict]:
    where, params = f.where()
    rows = _rows(
        f"""
        WITH sel AS (SELECT * FROM analytics_dailyairuns WHERE {where}),
        lat AS (SELECT provider, model, kind,
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY l) AS p
                FROM sel, unnest(sel.latency_ms) l GROUP BY provider, model, kind)
        SELECT s.provider, s.model, s.kind, s.runs, s.failed, s.fallback, s.cost, lat.p[1], lat.p[2]
        FROM (SELECT provider, model, kind, sum(runs) AS runs, sum(failed) AS failed,
                     sum(fallback) AS fallback, sum(cost) AS cost
              FROM sel GROUP BY provider, model, kind) s
        LEFT JOIN lat ON lat.provider = s.provider AND lat.model = s.model AND lat.kind = s.kind
        ORDER BY s.cost DESC, s.runs DESC
        """,
        params,
    )
    return [
        {
            "provider": provider,
            "model": model or "—",
            "kind": kind,
            "runs": int(runs),
            "failed_share": _ratio(failed, runs),
            "fallback_share": _ratio(fallback, runs),
            "cost": Decimal(cost).quantize(Decimal("0.0001")),
            "latency_p50_ms": None if p50 is None else round(p50),
            "latency_p95_ms": None if p95 is None else round(p95),
        }
        for provider, model, kind, runs, failed, fallback, cost, p50, p95 in rows
    ]
