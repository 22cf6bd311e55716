"""Recompute the analytics rollups for a day range (idempotent), e.g. after importing history:

python manage.py analytics_rollup --since 2025-11-01 --until 2026-11-21
python manage.py analytics_rollup --days 30        # the last 30 days and today (the default)
python manage.py analytics_rollup --all            # from the first ticket to today
"""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Min

from analytics import rollup
from tickets.models import Ticket

CHUNK_DAYS = 31  # one transaction per month: a year's rebuild never holds one huge transaction


class Command(BaseCommand):
    help = "Rebuild the analytics daily rollups for a range of days."

    def add_arguments(self, parser):
        parser.add_argument("--since", type=dt.date.fromisoformat, help="First day (YYYY-MM-DD).")
        parser.add_argument("--until", type=dt.date.fromisoformat, help="Last day (YYYY-MM-DD); default today.")
        parser.add_argument("--days", type=int, default=30, help="Without --since: this many days back.")
        parser.add_argument("--all", action="store_true", help="From the first ticket's day.")

    def handle(self, *args, **options):
        today = rollup.today()
        until = options["until"] or today
        if options["all"]:
            first = Ticket.objects.aggregate(first=Min("created_at"))["first"]
            since = rollup.tz_date(first) if first else today
        else:
            since = options["since"] or until - dt.timedelta(days=max(0, options["days"]))
        if since > until:
            raise CommandError(f"--since {since} is after --until {until}.")
        started, rows, day = time.perf_counter(), 0, since
        while day <= until:
            end = min(until, day + dt.timedelta(days=CHUNK_DAYS - 1))
            rows += rollup.rebuild(day, end)
            day = end + dt.timedelta(days=1)
        days = (until - since).days + 1
        self.stdout.write(
            f"Rebuilt {days} days ({since} – {until}): {rows} rows in {time.perf_counter() - started:.1f}s."
        )
