"""The savings page's figures: what the AI costs per ticket it resolves alone against what a person costs,
the money and agent hours that saves, and the monthly AI spend at the current rate (docs/metrics.md, Savings).

One query over the daily ticket rollup whatever the data size. The human side comes from settings
(``HUMAN_COST_PER_TICKET``, ``MINUTES_PER_HUMAN_TICKET``): the tickets record no agent handling time
(presence is kept in Redis only while a page is open), so hours saved are counted, not measured.
"""

# ruff: noqa: S608 — the SQL is built only from Filters.where's constant clauses; values are bound.

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings

from analytics import rollup
from analytics.metrics import Filters, _rows

CENT = Decimal("0.01")
MONTH_DAYS = 30


def projection_window(f: Filters, *, today: dt.date) -> tuple[dt.date, dt.date]:
    """The last ``SAVINGS_PROJECTION_DAYS`` whole days of the range: today is left out while it is still
    running, unless the range is today alone."""
    end = min(f.end, today - dt.timedelta(days=1)) if f.start < today else f.end
    start = max(f.start, end - dt.timedelta(days=settings.SAVINGS_PROJECTION_DAYS - 1))
    return start, end


def savings(f: Filters) -> dict:
    window_start, window_end = projection_window(f, today=rollup.today())
    where, params = f.where()
    resolved, by_ai, by_ai_cost, cost, window_cost = _rows(
        "SELECT coalesce(sum(resolved), 0), coalesce(sum(resolved_by_ai), 0), "
        "coalesce(sum(resolved_by_ai_cost), 0), coalesce(sum(ai_cost), 0), "
        "coalesce(sum(ai_cost) FILTER (WHERE day >= %s AND day <= %s), 0) "
        f"FROM analytics_dailyticketstats WHERE {where}",
        [window_start, window_end, *params],
    )[0]
    human_cost = settings.HUMAN_COST_PER_TICKET
    by_ai_cost = Decimal(by_ai_cost)
    per_ai_ticket = by_ai_cost / by_ai if by_ai else None
    window_days = (window_end - window_start).days + 1
    return {
        "currency": "USD",
        "resolved": int(resolved),
        "resolved_by_ai": int(by_ai),
        "resolved_by_people": int(resolved - by_ai),
        "ai_cost_of_ai_resolved": by_ai_cost.quantize(Decimal("0.0001")),
        "ai_cost_per_ai_resolved_ticket": None if per_ai_ticket is None else per_ai_ticket.quantize(Decimal("0.0001")),
        "human_cost_per_ticket": human_cost,
        "saving_per_ticket": None
        if per_ai_ticket is None
        else (human_cost - per_ai_ticket).quantize(Decimal("0.0001")),
        "money_saved": (by_ai * human_cost - by_ai_cost).quantize(CENT),
        "minutes_per_human_ticket": settings.MINUTES_PER_HUMAN_TICKET,
        "hours_saved": round(by_ai * settings.MINUTES_PER_HUMAN_TICKET / 60, 1),
        "hours_from": "setting MINUTES_PER_HUMAN_TICKET",
        "ai_cost": Decimal(cost).quantize(Decimal("0.0001")),
        "projection_start": window_start,
        "projection_end": window_end,
        "projection_days": window_days,
        "projection_ai_cost": Decimal(window_cost).quantize(Decimal("0.0001")),
        "projected_monthly_ai_cost": (Decimal(window_cost) / window_days * MONTH_DAYS).quantize(CENT),
    }
