"""When a person will reply: the estimate a customer is given at a handover, and how it reads.

The rule (stored on the ticket as ``reply_promised_at`` when the ticket is handed over):

1. **SLA bound** S: the ticket's first-response due time if it is still ahead; else (the assistant's answer
   already counted as the first response, or it is overdue) the policy's first-response target counted from
   the handover. Both in the policy's business hours when it has them (``tickets.sla``).
2. **Recent data** D: the median time from handover to the first public agent reply of the same department
   and priority's tickets handed over in the last ``REPLY_ESTIMATE_WINDOW_DAYS`` (at least
   ``REPLY_ESTIMATE_MIN_SAMPLES`` of them, the latest 200), measured and added in the same business hours, so
   a handover at 16:55 on a Friday lands after the next opening. Rounded up to 5 minutes.
3. The promise is the earlier of the two: D capped by S. Only S without enough data; none without an SLA
   policy (the customer is then told "as soon as possible", as before).

The time is shown in the SLA policy's time zone (the site's ``TIME_ZONE`` without one), with its abbreviation:
the server does not know the customer's own zone, and the policy's zone is the one its opening hours mean.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import zoneinfo

from django.conf import settings
from django.db.models import DateTimeField, Min, OuterRef, Subquery
from django.utils import dateformat, formats, timezone
from django.utils.translation import gettext as _

from tickets import sla
from tickets.models import Message, SLATarget, Ticket

SAMPLE_LIMIT = 200
ROUND_TO_MINUTES = 5


def first_human_reply_at() -> Subquery:
    """For a ``Ticket`` queryset: when the first public agent reply after its handover was written."""
    replies = Message.objects.filter(
        ticket=OuterRef("pk"),
        author_kind=Message.AuthorKind.AGENT,
        is_internal=False,
        created_at__gte=OuterRef("escalated_at"),
    )
    return Subquery(
        replies.values("ticket").annotate(first=Min("created_at")).values("first")[:1], output_field=DateTimeField()
    )


def _target(ticket: Ticket) -> SLATarget | None:
    if ticket.department_id is None:
        return None
    return (
        SLATarget.objects.select_related("policy")
        .filter(policy__departments=ticket.department_id, priority=ticket.priority)
        .first()
    )


def recent_median_minutes(
    *, department_id: int, priority: str, calendar: sla.BusinessCalendar | None, now: dt.datetime
) -> float | None:
    """The median (business) minutes from handover to the first human reply, recently, or None (too few)."""
    since = now - dt.timedelta(days=settings.REPLY_ESTIMATE_WINDOW_DAYS)
    rows = (
        Ticket.objects.filter(
            department_id=department_id, priority=priority, escalated_at__gte=since, escalated_at__lt=now
        )
        .annotate(replied_at=first_human_reply_at())
        .filter(replied_at__isnull=False)
        .order_by("-escalated_at")
        .values_list("escalated_at", "replied_at")[:SAMPLE_LIMIT]
    )
    durations = [sla.minutes_between(start, end, calendar) for start, end in rows]
    if len(durations) < max(1, settings.REPLY_ESTIMATE_MIN_SAMPLES):
        return None
    return statistics.median(durations)


def _round_up(moment: dt.datetime) -> dt.datetime:
    step = ROUND_TO_MINUTES * 60
    seconds = math.ceil(moment.timestamp() / step) * step
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def reply_estimate(*, ticket: Ticket, now: dt.datetime) -> dt.datetime | None:
    """When a person will reply to a ticket handed over ``now`` (the rule in the module docstring)."""
    target = _target(ticket)
    if target is None:
        return None
    calendar = sla.BusinessCalendar.from_policy(target.policy)
    due = ticket.first_response_due_at
    bound = due if due is not None and due > now else sla.add_minutes(now, target.first_response_minutes, calendar)
    median = recent_median_minutes(
        department_id=ticket.department_id, priority=ticket.priority, calendar=calendar, now=now
    )
    if median is None:
        return bound
    return min(_round_up(sla.add_minutes(now, math.ceil(median), calendar)), bound)


def display_zone(ticket: Ticket) -> zoneinfo.ZoneInfo:
    policy = ticket.department.sla_policy if ticket.department_id and ticket.department else None
    try:
        return zoneinfo.ZoneInfo(policy.timezone if policy else settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def reply_estimate_phrase(*, promised: dt.datetime, zone: zoneinfo.ZoneInfo, now: dt.datetime) -> str:
    """ "by about 14:30 CET today" in the active language: today, tomorrow, a weekday within a week, else a date."""
    local, today = promised.astimezone(zone), now.astimezone(zone).date()
    time = f"{local:%H:%M} {local.tzname()}"
    days = (local.date() - today).days
    if days <= 0:
        return _("by about %(time)s today") % {"time": time}
    if days == 1:
        return _("by about %(time)s tomorrow") % {"time": time}
    if days < 7:
        return _("by about %(time)s on %(weekday)s") % {"time": time, "weekday": dateformat.format(local, "l")}
    return _("by about %(time)s on %(date)s") % {"time": time, "date": formats.date_format(local, "MONTH_DAY_FORMAT")}


def ticket_reply_estimate_phrase(ticket: Ticket, *, now: dt.datetime | None = None) -> str:
    """The ticket's promise as the customer reads it, or "" when there is none, it has passed, or a person
    has replied since the handover."""
    promised = ticket.reply_promised_at
    now = now or timezone.now()
    if promised is None or promised <= now or not ticket.escalated:
        return ""
    replied = Ticket.objects.filter(pk=ticket.pk).annotate(replied_at=first_human_reply_at())
    if replied.filter(replied_at__isnull=False).exists():
        return ""
    return reply_estimate_phrase(promised=promised, zone=display_zone(ticket), now=now)
