"""Business metrics for /metrics, correct across every web and worker process.

Events happen in many processes (uvicorn workers, Celery's prefork children), and Prometheus scrapes
one web process. So counters and the AI latency histogram are kept in Redis hashes
(``sf:metrics:<name>``, one field per label set), incremented in one pipelined round trip by whichever
process commits the event, and read back at scrape time by ``BusinessCollector`` — with the gauges
computed then (Celery queue lengths, the LLM breaker, open tickets by status) — in a bounded number of
round trips: one pipeline for the hashes and queue lengths, one breaker read, one ``GROUP BY``.

Events arrive through ``tickets.events`` (``record_event`` is a subscriber): a rolled-back change is
never counted. Metrics must never hurt the work they count: if Redis cannot be reached, the event is
not counted, a warning is logged (at most once per ``RETRY_AFTER_S``) and writes pause for that long.
Counters only go up; they restart from zero if their Redis keys are lost, which ``rate()`` handles.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal

import redis
from django.conf import settings
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import REGISTRY, Collector

from supportflow import redis_roles
from tickets import events

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 30.0
SOCKET_TIMEOUT_S = 1.0
LABEL_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
SEP = "|"
OTHER = "other"

# AI run latency buckets, in seconds: local triage takes milliseconds, an LLM answer seconds.
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)

# name (without _total): (help, label names, Redis hash)
COUNTERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "supportflow_tickets_created": ("Tickets created, by channel.", ("channel",), "tickets_created"),
    "supportflow_messages": (
        "Messages stored, by author kind (customer, agent, ai, system); a ticket's first message included.",
        ("author_kind",),
        "messages",
    ),
    "supportflow_ai_runs": (
        "AI runs finished, by kind (triage, reply…), provider (openai, local) and outcome (succeeded, failed).",
        ("kind", "provider", "outcome"),
        "ai_runs",
    ),
    "supportflow_escalations": (
        "Tickets handed to a human, by reason (agent, sla_breach, low_confidence, human_requested, "
        "output_guard, ai_failed, an escalation rule's condition, or other).",
        ("reason",),
        "escalations",
    ),
    "supportflow_csat_ratings": (
        "Customer ratings given, by score (1-5); a changed rating counts again.",
        ("score",),
        "csat",
    ),
    "supportflow_sla_breaches": (
        "SLA breaches flagged, by target (first_response, resolution).",
        ("target",),
        "sla_breaches",
    ),
    "supportflow_ticket_status_changes": ("Ticket status changes, by the new status.", ("status",), "status_changes"),
    "supportflow_ai_answer_votes": (
        'Customers\' votes on AI answers ("Did this answer your question?"), by vote (yes, no); a changed vote '
        "counts again.",
        ("vote",),
        "ai_votes",
    ),
    "supportflow_ai_cache_lookups": (
        "AI cache lookups, by cache (retrieval, answer, embedding: one per text) and result (hit, miss).",
        ("cache", "result"),
        "ai_cache",
    ),
    "supportflow_ai_embed_ahead": (
        "Texts of messages waiting in the AI queue: encoded ahead in another message's model call (computed), "
        "and found by the waiting message when it ran (used).",
        ("result",),
        "embed_ahead",
    ),
}
COST_NAME, COST_HASH = "supportflow_ai_cost_usd", "ai_cost_microusd"
COST_LABELS = ("kind", "provider")
LATENCY_NAME, LATENCY_BUCKET_HASH, LATENCY_SUM_HASH = (
    "supportflow_ai_run_duration_seconds",
    "ai_latency",
    "ai_latency_ms",
)
LATENCY_LABELS = ("kind", "provider")
# The confidence of the AI's knowledge-base answers, sent or left as a draft: a summary (count and sum).
CONFIDENCE_NAME, CONFIDENCE_COUNT_HASH, CONFIDENCE_SUM_HASH = (
    "supportflow_ai_answer_confidence",
    "ai_confidence_n",
    "ai_confidence_micro",
)
CONFIDENCE_LABELS = ("outcome",)
CACHE_SAVED_NAME, CACHE_SAVED_HASH = "supportflow_ai_cache_saved_usd", "ai_cache_saved_microusd"
# Per day and cache, for the AI analytics page's period: ``<YYYY-MM-DD>|<cache>|<hits|misses|saved_microusd>``.
CACHE_DAILY_HASH = "ai_cache_daily"

# Escalation reasons are free text; these fixed ones come from our own code, the rest are either an
# escalation rule's reason (labelled by its condition) or written by an agent.
FIXED_REASONS = {
    "The AI could not process this message": "ai_failed",
    "AI not confident enough to answer": "low_confidence",
    "Customer asked for a human": "human_requested",
}


def _label(value: object) -> str:
    text = str(value) if value is not None and value != "" else ""
    return text if LABEL_RE.fullmatch(text) else OTHER


def _field(*values: object) -> str:
    return SEP.join(_label(v) for v in values)


# --- Redis --------------------------------------------------------------------------------------------

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()
_paused_until = 0.0


def _store_url() -> str:
    return settings.METRICS_REDIS_URL or settings.REDIS_BROKER_URL


def _key(name: str) -> str:
    return f"{settings.METRICS_KEY_PREFIX}{name}"


def _client(url: str) -> redis.Redis:
    client = _clients.get(url)
    if client is None:
        with _clients_lock:
            client = _clients.get(url)
            if client is None:
                client = redis_roles.client(
                    url, socket_connect_timeout=SOCKET_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S
                )
                _clients[url] = client
    return client


def _increment(ops: Iterable[tuple[str, str, int]]) -> None:
    """``HINCRBY`` each ``(hash, field, amount)`` in one round trip; on failure count nothing."""
    if ops := _to_send(ops):
        try:
            _increments(_client(_store_url()).pipeline(transaction=False), ops).execute()
        except (redis.RedisError, OSError) as exc:
            _pause(exc)


async def _aincrement(ops: Iterable[tuple[str, str, int]]) -> None:
    """``_increment`` on the event loop (``supportflow.aio``'s client): the same keys, one round trip."""
    if ops := _to_send(ops):
        from supportflow import aio

        client = aio.redis(_store_url(), socket_connect_timeout=SOCKET_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S)
        try:
            await _increments(client.pipeline(transaction=False), ops).execute()
        except (redis.RedisError, OSError) as exc:
            _pause(exc)


def _to_send(ops: Iterable[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """The non-zero increments, or none while writes are paused after a Redis failure."""
    return [op for op in ops if op[2]] if time.monotonic() >= _paused_until else []


def _increments(pipe, ops: list[tuple[str, str, int]]):
    for name, field, amount in ops:
        pipe.hincrby(_key(name), field, amount)
    return pipe


def _pause(exc: Exception) -> None:
    global _paused_until
    _paused_until = time.monotonic() + RETRY_AFTER_S
    logger.warning("metrics not recorded (Redis: %s); pausing metric writes for %.0f s", exc, RETRY_AFTER_S)


def reset_pause() -> None:
    """Forget a past Redis failure (tests, or after fixing the connection)."""
    global _paused_until
    _paused_until = 0.0


# --- Events -------------------------------------------------------------------------------------------


def _bucket(latency_ms: int) -> str:
    seconds = latency_ms / 1000
    for le in LATENCY_BUCKETS_S:
        if seconds <= le:
            return repr(le)
    return "+Inf"


def escalation_reason(*, ticket_id: int, reason: str) -> str:
    """A bounded label for a free-text escalation reason (see the ``supportflow_escalations`` help)."""
    from tickets.models import EscalationRule, TicketEvent

    actor_kind = (
        TicketEvent.objects.filter(ticket_id=ticket_id, kind=TicketEvent.Kind.ESCALATED)
        .order_by("-pk")
        .values_list("actor_kind", flat=True)
        .first()
    )
    if actor_kind == "agent":
        return "agent"
    if reason.startswith("SLA breached"):
        return "sla_breach"
    if reason.startswith("AI reply blocked"):
        return "output_guard"
    if reason in FIXED_REASONS:
        return FIXED_REASONS[reason]
    condition = EscalationRule.objects.filter(reason=reason).values_list("condition", flat=True).first()
    return _label(condition) if condition else OTHER


def _confidence(outcome: str, confidence: float) -> Iterator[tuple[str, str, int]]:
    yield CONFIDENCE_COUNT_HASH, _field(outcome), 1
    yield CONFIDENCE_SUM_HASH, _field(outcome), round(confidence * 1_000_000)


def _drafted_answer_confidence(draft_id: object) -> float | None:
    """The confidence of a knowledge-base answer left as a draft (greetings and clarifying questions have none)."""
    from tickets.models import AIDraft

    row = AIDraft.objects.filter(pk=draft_id).values_list("confidence", "gate").first()
    if row is None or (row[1] or {}).get("reply", "answer") != "answer":
        return None
    return row[0]


def _operations(kind: str, payload: dict) -> Iterator[tuple[str, str, int]]:
    if kind == events.TICKET_CREATED:
        from tickets.models import Ticket

        channel = Ticket.objects.filter(pk=payload["ticket_id"]).values_list("channel", flat=True).first()
        yield "tickets_created", _field(channel), 1
        yield "messages", _field("customer"), 1  # the first message comes with the ticket
    elif kind == events.MESSAGE_CREATED:
        message = payload.get("message")
        if message is not None:
            yield "messages", _field(message.author_kind), 1
            if message.author_kind == "ai" and message.ai_confidence is not None:
                yield from _confidence("sent", message.ai_confidence)
    elif kind == events.AI_DRAFTED:
        confidence = _drafted_answer_confidence(payload.get("draft_id"))
        if confidence is not None:
            yield from _confidence("drafted", confidence)
    elif kind == events.AI_ANSWER_RATED:
        yield "ai_votes", _field(payload.get("vote")), 1
    elif kind == events.TICKET_ESCALATED:
        reason = escalation_reason(ticket_id=payload["ticket_id"], reason=payload.get("reason", ""))
        yield "escalations", _field(reason), 1
    elif kind == events.TICKET_RATED:
        yield "csat", _field(payload.get("score")), 1
    elif kind == events.TICKET_SLA_BREACHED:
        yield "sla_breaches", _field(str(payload.get("field", "")).removesuffix("_breached")), 1
    elif kind == events.TICKET_STATUS_CHANGED:
        yield "status_changes", _field(payload.get("status")), 1
    elif kind == events.AI_RUN_FINISHED:
        run_kind, provider = payload.get("run_kind"), payload.get("provider")
        yield "ai_runs", _field(run_kind, provider, payload.get("status")), 1
        micro_usd = int((Decimal(str(payload.get("cost") or 0)) * 1_000_000).to_integral_value())
        yield COST_HASH, _field(run_kind, provider), micro_usd
        latency_ms = payload.get("latency_ms")
        if latency_ms is not None:
            yield LATENCY_BUCKET_HASH, _field(run_kind, provider) + SEP + _bucket(latency_ms), 1
            yield LATENCY_SUM_HASH, _field(run_kind, provider), int(latency_ms)


def ai_cache_record(
    *, cache: str, hit: bool, saved_cost: Decimal = Decimal(0), count: int = 1, day: dt.date | None = None
) -> None:
    """Count ``count`` AI cache lookups (``cache``: retrieval, answer or embedding) and, for a hit, the money
    it saved. Never raises (``_increment``)."""
    day = day or dt.datetime.now(dt.UTC).date()
    micro_usd = int((Decimal(str(saved_cost or 0)) * 1_000_000).to_integral_value()) if hit else 0
    result = "hit" if hit else "miss"
    _increment(
        [
            ("ai_cache", _field(cache, result), count),
            (CACHE_SAVED_HASH, _field(cache), micro_usd),
            (CACHE_DAILY_HASH, f"{day.isoformat()}{SEP}{_label(cache)}{SEP}{'hits' if hit else 'misses'}", count),
            (CACHE_DAILY_HASH, f"{day.isoformat()}{SEP}{_label(cache)}{SEP}saved_microusd", micro_usd),
        ]
    )


def embed_ahead_record(*, result: str, count: int) -> None:
    """``result``: computed or used (``knowledge.embeddings.embed_cached``'s ``ahead``). Never raises."""
    _increment([("embed_ahead", _field(result), count)])


def ai_cache_daily(*, start: dt.date, end: dt.date) -> dict[str, dict[str, int]]:
    """``{cache: {"hits", "misses", "saved_microusd"}}`` summed over the days ``start``…``end`` (UTC).
    Raises ``redis.RedisError`` when the store cannot be read."""
    raw = _client(_store_url()).hgetall(_key(CACHE_DAILY_HASH))
    totals: dict[str, dict[str, int]] = {}
    for field, value in raw.items():
        parts = _split(field.decode(), 3)
        if parts is None:
            continue
        try:
            day = dt.date.fromisoformat(parts[0])
        except ValueError:
            continue
        if start <= day <= end:
            figures = totals.setdefault(parts[1], {"hits": 0, "misses": 0, "saved_microusd": 0})
            figures[parts[2]] = figures.get(parts[2], 0) + int(value)
    return totals


def ai_cache_totals() -> dict[str, dict[str, int]]:
    """``{cache: {"hit": n, "miss": n}}`` since the counters started (what /metrics exports), for the
    pipeline bench's per-phase report. Raises ``redis.RedisError`` when the store cannot be read."""
    totals: dict[str, dict[str, int]] = {}
    for field, value in _client(_store_url()).hgetall(_key("ai_cache")).items():
        parts = _split(field.decode(), 2)
        if parts is not None:
            totals.setdefault(parts[0], {"hit": 0, "miss": 0})[parts[1]] = int(value)
    return totals


def record_event(kind: str, **payload) -> None:
    """``tickets.events`` subscriber: count a committed business event.
    Never raises: a metric is not worth a failed request or task."""
    try:
        _increment(list(_operations(kind, payload)))
    except Exception:
        logger.warning("metrics for %s not recorded", kind, exc_info=True)


async def arecord_event(kind: str, **payload) -> bool:
    """``record_event``'s twin on the event loop (``events.subscribe(on_loop=…)``): a chat message is counted
    there; other kinds may read the database, so they are left to ``record_event`` (False)."""
    if kind != events.MESSAGE_CREATED:
        return False
    try:
        await _aincrement(list(_operations(kind, payload)))
    except Exception:
        logger.warning("metrics for %s not recorded", kind, exc_info=True)
    return True


# --- Scrape -------------------------------------------------------------------------------------------


def _queues() -> list[str]:
    names = [getattr(queue, "name", str(queue)) for queue in getattr(settings, "CELERY_TASK_QUEUES", ()) or ()]
    default = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
    return sorted({*names, default})


def _hashes() -> list[str]:
    return [spec[2] for spec in COUNTERS.values()] + [
        COST_HASH,
        LATENCY_BUCKET_HASH,
        LATENCY_SUM_HASH,
        CONFIDENCE_COUNT_HASH,
        CONFIDENCE_SUM_HASH,
        CACHE_SAVED_HASH,
    ]


def _read_redis() -> tuple[dict[str, dict[str, int]], dict[str, int], int]:
    """The counter hashes, queue lengths and unacked task count, in one round trip per Redis server."""
    hashes, queues = _hashes(), _queues()
    broker_url, store_url = settings.REDIS_BROKER_URL, _store_url()
    unacked_key = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get("unacked_key", "unacked")

    store = _client(store_url).pipeline(transaction=False)
    for name in hashes:
        store.hgetall(_key(name))
    broker = store if broker_url == store_url else _client(broker_url).pipeline(transaction=False)
    for queue in queues:
        broker.llen(queue)
    broker.hlen(unacked_key)
    results = store.execute() if broker is store else store.execute() + broker.execute()

    counters = {
        name: {k.decode(): int(float(v)) for k, v in raw.items()}
        for name, raw in zip(hashes, results[: len(hashes)], strict=True)
    }
    lengths = dict(zip(queues, (int(n) for n in results[len(hashes) : -1]), strict=True))
    return counters, lengths, int(results[-1])


def _split(field: str, size: int) -> list[str] | None:
    parts = field.split(SEP)
    return parts if len(parts) == size else None


def _open_tickets() -> dict[str, int]:
    from django.db.models import Count

    from tickets.models import Ticket

    rows = Ticket.objects.filter(status__in=Ticket.ACTIVE_STATUSES).values_list("status").annotate(n=Count("pk"))
    counts = dict.fromkeys(Ticket.ACTIVE_STATUSES, 0)
    counts.update({str(status): n for status, n in rows})
    return counts


class BusinessCollector(Collector):
    """Reads the shared counters and computes the gauges when Prometheus scrapes."""

    def describe(self) -> list[Metric]:
        return list(self._families(None))

    def collect(self) -> Iterator[Metric]:
        try:
            counters, queues, unacked = _read_redis()
        except (redis.RedisError, OSError) as exc:
            logger.warning("business metrics unavailable (Redis: %s)", exc)
            counters = queues = unacked = None
        try:
            from supportflow.llm import breaker

            breaker_status = breaker.status()
        except Exception as exc:  # never fail a scrape over one gauge
            logger.warning("breaker state unavailable: %s", exc)
            breaker_status = None
        try:
            open_tickets = _open_tickets()
        except Exception as exc:
            logger.warning("open tickets unavailable: %s", exc)
            open_tickets = None
        yield from self._families(
            {
                "counters": counters,
                "queues": queues,
                "unacked": unacked,
                "breaker": breaker_status,
                "open_tickets": open_tickets,
            }
        )

    def _families(self, scraped: dict | None) -> Iterator[Metric]:
        """The metric families, with samples from ``scraped`` (``None``: names only, for ``describe``)."""
        scraped = scraped or {}
        counters, queues, unacked = scraped.get("counters"), scraped.get("queues"), scraped.get("unacked")
        breaker_status, open_tickets = scraped.get("breaker"), scraped.get("open_tickets")
        for name, (doc, labels, hash_name) in COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=list(labels))
            for field, value in sorted((counters or {}).get(hash_name, {}).items()):
                if (values := _split(field, len(labels))) is not None:
                    family.add_metric(values, value)
            yield family

        cost = CounterMetricFamily(COST_NAME, "AI spend in US dollars, by kind and provider.", labels=list(COST_LABELS))
        for field, micro_usd in sorted((counters or {}).get(COST_HASH, {}).items()):
            if (values := _split(field, len(COST_LABELS))) is not None:
                cost.add_metric(values, micro_usd / 1_000_000)
        yield cost

        saved = CounterMetricFamily(
            CACHE_SAVED_NAME,
            "LLM spend the AI cache avoided, in US dollars (the cached answer's tokens at today's price), by cache.",
            labels=["cache"],
        )
        for field, micro_usd in sorted((counters or {}).get(CACHE_SAVED_HASH, {}).items()):
            if (values := _split(field, 1)) is not None:
                saved.add_metric(values, micro_usd / 1_000_000)
        yield saved

        latency = HistogramMetricFamily(
            LATENCY_NAME,
            "Duration of finished AI runs (all attempts), by kind and provider.",
            labels=list(LATENCY_LABELS),
        )
        per_series: dict[tuple[str, ...], dict[str, int]] = {}
        for field, count in (counters or {}).get(LATENCY_BUCKET_HASH, {}).items():
            if (values := _split(field, len(LATENCY_LABELS) + 1)) is not None:
                per_series.setdefault(tuple(values[:-1]), {})[values[-1]] = count
        sums = (counters or {}).get(LATENCY_SUM_HASH, {})
        for series, by_bucket in sorted(per_series.items()):
            cumulative, buckets = 0, []
            for le in [*(repr(b) for b in LATENCY_BUCKETS_S), "+Inf"]:
                cumulative += by_bucket.get(le, 0)
                buckets.append((le, cumulative))
            latency.add_metric(list(series), buckets, sums.get(SEP.join(series), 0) / 1000)
        yield latency

        confidence = SummaryMetricFamily(
            CONFIDENCE_NAME,
            "Confidence (0-1) of the AI's knowledge-base answers, by outcome (sent, drafted: left for an agent).",
            labels=list(CONFIDENCE_LABELS),
        )
        sums = (counters or {}).get(CONFIDENCE_SUM_HASH, {})
        for field, count in sorted((counters or {}).get(CONFIDENCE_COUNT_HASH, {}).items()):
            if (values := _split(field, len(CONFIDENCE_LABELS))) is not None:
                confidence.add_metric(values, count, sums.get(field, 0) / 1_000_000)
        yield confidence

        queue_length = GaugeMetricFamily(
            "supportflow_celery_queue_length", "Tasks waiting in each Celery queue (not yet taken).", labels=["queue"]
        )
        for queue, length in sorted((queues or {}).items()):
            queue_length.add_metric([queue], length)
        yield queue_length
        unacked_gauge = GaugeMetricFamily(
            "supportflow_celery_tasks_unacked",
            "Tasks delivered to a worker and not yet acknowledged (running or reserved).",
        )
        if unacked is not None:
            unacked_gauge.add_metric([], unacked)
        yield unacked_gauge

        store_up = GaugeMetricFamily(
            "supportflow_metrics_store_up", "1 if the shared metrics store (Redis) answered this scrape, else 0."
        )
        if scraped:
            store_up.add_metric([], 1 if counters is not None else 0)
        yield store_up

        state = GaugeMetricFamily(
            "supportflow_llm_breaker_state",
            "The LLM endpoint's circuit breaker: 1 for its current state (closed, open, half_open), 0 otherwise.",
            labels=["state"],
        )
        failures = GaugeMetricFamily(
            "supportflow_llm_breaker_failures", "LLM call failures counted by the breaker in its current window."
        )
        if breaker_status is not None:
            for name in ("closed", "open", "half_open"):
                state.add_metric([name], 1 if breaker_status["state"] == name else 0)
            failures.add_metric([], breaker_status.get("failures", 0))
        yield state
        yield failures

        tickets = GaugeMetricFamily("supportflow_tickets_open", "Active tickets now, by status.", labels=["status"])
        for status, count in sorted((open_tickets or {}).items()):
            tickets.add_metric([status], count)
        yield tickets


_installed = False


def install() -> None:
    """Register the collector once per process (from ``SupportflowConfig.ready``, which also subscribes
    ``record_event`` to ``tickets.events``)."""
    global _installed
    if _installed:
        return
    REGISTRY.register(BusinessCollector())
    _installed = True
