"""How well the customers' "a person will reply by …" promises held (``tickets.reply_estimates``).

Over the tickets handed over in the range (by ``escalated_at``, the site's day) that were given a time:

- **kept**: the share of decided promises where the first public agent reply after the handover came at or
  before the promised time. Decided = replied, or the promised time has passed without a reply (a miss);
  promises still ahead with no reply yet are counted as pending, not in the share.
- **median error**: the median of (first human reply − promised time) in minutes over the replied ones —
  negative means people replied earlier than promised — and the median of its absolute value.

One query whatever the data size: the medians are Postgres ``percentile_cont`` over the tickets of the range.
"""

# ruff: noqa: S608 — the SQL wraps a queryset's own compiled SQL; values are bound.

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from analytics import rollup
from analytics.metrics import Filters, _scoped
from tickets.models import Ticket
from tickets.reply_estimates import first_human_reply_at


def reply_estimate_accuracy(f: Filters) -> dict:
    tickets = _scoped(
        Ticket.objects.filter(
            Q(reply_promised_at__isnull=False),
            escalated_at__gte=rollup.day_start(f.start),
            escalated_at__lt=rollup.day_start(f.end + dt.timedelta(days=1)),
        ),
        f,
    )
    inner, params = (
        tickets.annotate(replied_at=first_human_reply_at()).values("reply_promised_at", "replied_at").query
    ).sql_with_params()
    late = "extract(epoch FROM replied_at - reply_promised_at) / 60"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*),
                   count(*) FILTER (WHERE replied_at IS NOT NULL OR reply_promised_at <= %s),
                   count(*) FILTER (WHERE replied_at <= reply_promised_at),
                   count(replied_at),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY {late}) FILTER (WHERE replied_at IS NOT NULL),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY abs({late})) FILTER (WHERE replied_at IS NOT NULL)
            FROM ({inner}) AS promises
            """,
            [timezone.now(), *params],
        )
        promised, decided, kept, replied, median_error, median_abs_error = cursor.fetchone()
    return {
        "promised": promised,
        "decided": decided,
        "pending": promised - decided,
        "kept": kept,
        "replied": replied,
        "kept_share": kept / decided if decided else None,
        "median_error_minutes": None if median_error is None else round(float(median_error), 1),
        "median_abs_error_minutes": None if median_abs_error is None else round(float(median_abs_error), 1),
    }
