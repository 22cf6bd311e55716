"""Realistic load data for the analytics pages: months of tickets with their conversations, AI runs and
drafts, escalations, SLA clocks, triage corrections, reopenings, CSAT and knowledge gaps.

A ticket comes with ~27 rows (messages, events, AI runs and drafts); 10,000 tickets take ~8 s on two
shared cores (bench/analytics_bench.py). Rows are built in Python and loaded with PostgreSQL ``COPY`` in
chunks of ``CHUNK`` tickets (one transaction each, ``rows``), with ids taken from the tables' own sequences
and references from ``tickets_ticket_reference_seq``, so tickets the app creates later never collide. No
service is called per row and no model runs: every AI figure (confidence, tokens, latency, cost at
``supportflow.llm``'s prices) is drawn, the way the pipeline would have recorded it.

What it needs: the queues, SLA policies and agents already in the database (``seed_demo`` loads them);
demo knowledge-base articles are cited when present. Each ticket is simulated through the same rules
the services apply (the state machine, first response, SLA due times and the sweep's breach flags,
escalation, reopen, auto-close after ``AUTO_CLOSE_RESOLVED_DAYS``, CSAT only once resolved), cut at
``end``: tickets created near the end are still new, open or pending.

Deterministic for a seed, ``end`` and starting database: the same draws give the same tickets, threads
and figures. Ids, references, access keys (secrets, drawn with ``secrets``) and the number in customer
e-mail addresses (offset by the customers already there) depend on the database. Running it again
adds another batch with new customers (the same seed repeats the same stories: pass another seed for
new ones); it never reuses or changes existing rows.

All texts are written for SupportFlow's fictional product, Nimbus Notes, and live in ``data/``. The
modules: ``context`` (what the database has), ``customers``, ``ticket`` (one ticket's state and rows),
``assistant`` (the AI pipeline and the people), ``conversation`` (the scripts of a ticket's life), ``rows``
(COPY), and this one (arrivals and the run).
"""

# ruff: noqa: S311 — ``random`` draws synthetic data reproducibly; access keys come from ``secrets``

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable

from django.db import connection
from django.utils import timezone

from supportflow.demo.context import load_context
from supportflow.demo.conversation import simulate
from supportflow.demo.customers import customer_pool, fresh_emails
from supportflow.demo.rows import TABLES, Batch, check_columns, write_batch, write_customers
from supportflow.demo.texts import GAP_TOPICS, QUESTIONS_I18N
from supportflow.demo.ticket import Spec
from tickets.models import Customer

__all__ = ["check_columns", "generate"]

CHUNK = 2000
CATEGORY_WEIGHTS = {
    "refund": 6, "payment_failed": 5, "invoice": 5, "plan_change": 6, "sync": 10, "app_crash": 6,
    "import_export": 5, "search": 3, "how_to": 10, "sign_in": 8, "two_factor": 4, "account_security": 3,
    "data_request": 4, "pricing": 5, "team_plan": 4, "discount": 3, "quote": 2,
}  # fmt: skip
CHANNEL_WEIGHTS = {"chat": 55, "email": 25, "api": 8, "slack": 7, "discord": 5}

# --- when tickets arrive -----------------------------------------------------------------------------

HOUR_WEIGHTS = (
    0.25, 0.2, 0.18, 0.18, 0.2, 0.3, 0.5, 0.8, 1.2, 1.5, 1.6, 1.6,
    1.5, 1.5, 1.6, 1.6, 1.5, 1.3, 1.0, 0.8, 0.65, 0.5, 0.4, 0.3,
)  # fmt: skip
DAY_WEIGHTS = (1.15, 1.1, 1.05, 1.0, 0.9, 0.45, 0.4)  # Monday … Sunday


def _arrivals(
    rng: random.Random, count: int, start: dt.datetime, days: int
) -> tuple[list[dt.datetime], tuple[dt.datetime, dt.datetime]]:
    """``count`` creation times over ``days`` days from ``start``: busier on weekdays and in business
    hours (UTC), growing about 2.2× over the period, with one week of an incident (a bad release) at
    about 40 % of the way. Sorted, so ticket ids and references follow time like real ones."""
    hours = days * 24
    weights = []
    incident = (int(hours * 0.4), int(hours * 0.4) + 5 * 24)
    for h in range(hours):
        moment = start + dt.timedelta(hours=h)
        growth = 0.6 + 0.7 * (h / max(1, hours - 1)) ** 1.3
        w = growth * DAY_WEIGHTS[moment.weekday()] * HOUR_WEIGHTS[moment.hour]
        if incident[0] <= h < incident[1]:
            w *= 1.6
        weights.append(w)
    cumulative, total = [], 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    chosen = rng.choices(range(hours), cum_weights=cumulative, k=count)
    times = [start + dt.timedelta(hours=h, seconds=rng.random() * 3600) for h in chosen]
    times.sort()
    return times, (start + dt.timedelta(hours=incident[0]), start + dt.timedelta(hours=incident[1]))


def generate(
    tickets: int,
    *,
    days: int = 365,
    seed: int = 1,
    end: dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Add ``tickets`` simulated tickets created over the ``days`` days before ``end`` (default: now),
    with everything that happened to them until ``end``. Returns the rows written per table, the seconds
    it took and tickets/s. Needs the queues and agents of ``seed_demo``; see the module docstring."""
    if tickets < 1 or days < 1:
        raise ValueError("tickets and days must be at least 1")
    check_columns()
    started = time.perf_counter()
    say = progress or (lambda _text: None)
    end = end or timezone.now()
    start = end - dt.timedelta(days=days)
    ctx = load_context()
    rng = random.Random(seed)

    times, incident = _arrivals(rng, tickets, start, days)
    base = (Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    pool = customer_pool(rng, max(1, round(tickets * 0.55)), base)
    picks = rng.choices(range(len(pool)), weights=[c["weight"] for c in pool], k=tickets)
    categories, category_weights = zip(*CATEGORY_WEIGHTS.items(), strict=True)
    channels, channel_weights = zip(*CHANNEL_WEIGHTS.items(), strict=True)
    gap_topics = sorted(GAP_TOPICS)
    gap_weights = [1.0 / (i + 1) ** 0.5 for i in range(len(gap_topics))]  # some gaps are asked far more often

    # Customers in the order they first write; each ticket refers to its customer's index.
    order: dict[int, int] = {}
    customer_rows: list[tuple] = []
    specs: list[Spec] = []
    for index, (created, pick) in enumerate(zip(times, picks, strict=True)):
        customer = pool[pick]
        if pick not in order:
            order[pick] = len(customer_rows)
            customer_rows.append(
                (
                    customer["name"],
                    customer["email"],
                    customer["vip"],
                    created - dt.timedelta(seconds=rng.uniform(1, 30)),
                )
            )
        language = customer["language"]
        gap = rng.choices(gap_topics, gap_weights)[0] if language == "en" and rng.random() < 0.08 else ""
        if gap:
            category = GAP_TOPICS[gap][0]
        elif language != "en":
            category = rng.choice(QUESTIONS_I18N[language])[0]
        elif incident[0] <= created < incident[1] and rng.random() < 0.5:
            category = rng.choice(("sync", "sync", "app_crash"))
        else:
            category = rng.choices(categories, category_weights)[0]
        specs.append(
            Spec(
                index=index,
                created=created,
                customer=order[pick],
                customer_first=customer["first"],
                vip=customer["vip"],
                channel=rng.choices(channels, channel_weights)[0],
                language=language,
                category=category,
                gap=gap,
                unrouted=not gap and rng.random() < 0.04,
            )
        )
    used = [pool[p] for p in sorted(order, key=order.get)]
    fresh_emails(used)
    customer_rows = [(r[0], c["email"], r[2], r[3]) for r, c in zip(customer_rows, used, strict=True)]
    customer_ids = write_customers(customer_rows)
    say(f"{len(customer_ids):,} customers; simulating {tickets:,} tickets from {start:%Y-%m-%d} to {end:%Y-%m-%d}")

    counts = {"customers": len(customer_ids), "tickets": 0, "messages": 0, "events": 0, "ai_runs": 0, "ai_drafts": 0}
    for first in range(0, tickets, CHUNK):
        batch = Batch()
        for spec in specs[first : first + CHUNK]:
            simulate(ctx, spec, end, batch, seed)
        write_batch(batch, customer_ids)
        counts["tickets"] += len(batch.tickets)
        counts["messages"] += len(batch.messages)
        counts["events"] += len(batch.events)
        counts["ai_runs"] += len(batch.runs)
        counts["ai_drafts"] += len(batch.drafts)
        elapsed = time.perf_counter() - started
        say(
            f"  {counts['tickets']:,}/{tickets:,} tickets, {counts['messages']:,} messages "
            f"({counts['tickets'] / elapsed:,.0f} tickets/s)"
        )
    with connection.cursor() as cursor:  # fresh planner statistics for the pages that read it next
        cursor.execute("ANALYZE " + ", ".join(model._meta.db_table for model, _ in TABLES))
    seconds = time.perf_counter() - started
    return {**counts, "seconds": round(seconds, 2), "tickets_per_s": round(tickets / seconds, 1)}
