"""SLA clock arithmetic: adding and measuring time in calendar or business hours.

Pure functions on aware datetimes; they return UTC. Business time is counted in the policy's own
time zone, so "09:00–17:00, Monday–Friday in Europe/Berlin" means what a manager there expects.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

UTC = dt.UTC
_MAX_DAYS = 3660  # a guard: ten years of calendar days is far beyond any SLA target


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str = "UTC"
    day_start: dt.time = dt.time(9, 0)
    day_end: dt.time = dt.time(17, 0)
    days: tuple[int, ...] = (0, 1, 2, 3, 4)

    @classmethod
    def from_policy(cls, policy) -> BusinessCalendar | None:
        """None means calendar time (24×7)."""
        if policy is None or not policy.business_hours_only:
            return None
        return cls(
            timezone=policy.timezone,
            day_start=policy.business_day_start,
            day_end=policy.business_day_end,
            days=tuple(sorted(set(policy.business_days))),
        )

    def _window(self, day: dt.date, tz: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime] | None:
        if day.weekday() not in self.days:
            return None
        return dt.datetime.combine(day, self.day_start, tz), dt.datetime.combine(day, self.day_end, tz)


def add_minutes(start: dt.datetime, minutes: int, calendar: BusinessCalendar | None) -> dt.datetime:
    """The moment ``minutes`` of (business) time after ``start``."""
    if calendar is None:
        return (start + dt.timedelta(minutes=minutes)).astimezone(UTC)
    if not calendar.days or calendar.day_end <= calendar.day_start:
        raise ValueError("a business calendar needs at least one day and a day that ends after it starts")
    tz = zoneinfo.ZoneInfo(calendar.timezone)
    current = start.astimezone(tz)
    remaining = dt.timedelta(minutes=minutes)
    day = current.date()
    for _ in range(_MAX_DAYS):
        window = calendar._window(day, tz)
        if window is not None:
            opens, closes = window
            begin = max(current, opens)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(UTC)
                remaining -= available
        day += dt.timedelta(days=1)
    raise ValueError("SLA target too far in the future")


def minutes_between(start: dt.datetime, end: dt.datetime, calendar: BusinessCalendar | None) -> float:
    """(Business) minutes from ``start`` to ``end``; 0 when ``end`` is not after ``start``."""
    if end <= start:
        return 0.0
    if calendar is None:
        return (end - start).total_seconds() / 60
    tz = zoneinfo.ZoneInfo(calendar.timezone)
    start_local, end_local = start.astimezone(tz), end.astimezone(tz)
    total = dt.timedelta()
    day = start_local.date()
    while day <= end_local.date():
        window = calendar._window(day, tz)
        if window is not None:
            begin, finish = max(window[0], start_local), min(window[1], end_local)
            if finish > begin:
                total += finish - begin
        day += dt.timedelta(days=1)
    return total.total_seconds() / 60
