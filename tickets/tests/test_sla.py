from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone

from tickets import services, sla
from tickets.models import Ticket
from tickets.tests.factories import DepartmentFactory, SLAPolicyFactory, make_agent, make_ticket, set_status

UTC = dt.UTC
NINE_TO_FIVE = sla.BusinessCalendar(timezone="UTC", day_start=dt.time(9), day_end=dt.time(17), days=(0, 1, 2, 3, 4))


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        ("2026-11-16 10:00", 60, "2026-11-16 11:00"),  # Monday, inside hours
        ("2026-11-16 16:30", 60, "2026-11-17 09:30"),  # rolls into Tuesday morning
        ("2026-11-20 16:00", 120, "2026-11-23 10:00"),  # Friday → Monday, weekend skipped
        ("2026-11-21 12:00", 30, "2026-11-23 09:30"),  # Saturday start waits for Monday
        ("2026-11-16 07:00", 30, "2026-11-16 09:30"),  # before opening
        ("2026-11-16 09:00", 8 * 60, "2026-11-16 17:00"),  # exactly one business day
    ],
)
def test_business_minutes_are_added_inside_opening_hours(start, minutes, expected):
    assert sla.add_minutes(at(start), minutes, NINE_TO_FIVE) == at(expected)


def test_calendar_time_is_plain_addition():
    assert sla.add_minutes(at("2026-11-21 23:50"), 20, None) == at("2026-11-22 00:10")


def test_business_hours_respect_the_policy_time_zone():
    berlin = sla.BusinessCalendar(timezone="Europe/Berlin", day_start=dt.time(9), day_end=dt.time(17))
    # 16:30 UTC on a Monday in November is 17:30 in Berlin: closed until Tuesday 09:00 Berlin = 08:00 UTC.
    assert sla.add_minutes(at("2026-11-16 16:30"), 15, berlin) == at("2026-11-17 08:15")


def test_minutes_between_counts_only_business_time():
    assert sla.minutes_between(at("2026-11-20 16:00"), at("2026-11-23 10:00"), NINE_TO_FIVE) == 120
    assert sla.minutes_between(at("2026-11-23 10:00"), at("2026-11-20 16:00"), NINE_TO_FIVE) == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("priority", "first", "resolution"), [("urgent", 15, 240), ("low", 480, 4320)])
def test_ticket_due_times_follow_the_queue_policy(priority, first, resolution):
    ticket = make_ticket(department=DepartmentFactory(), priority=priority)
    assert ticket.first_response_due_at == ticket.created_at + dt.timedelta(minutes=first)
    assert ticket.resolution_due_at == ticket.created_at + dt.timedelta(minutes=resolution)


@pytest.mark.django_db
def test_no_policy_means_no_due_times():
    ticket = make_ticket(department=None)
    assert (ticket.first_response_due_at, ticket.resolution_due_at) == (None, None)


@pytest.mark.django_db
def test_priority_change_recomputes_due_times_from_creation(ticket, agent):
    services.ticket_update_triage(ticket=ticket, actor=agent, priority="urgent")
    ticket.refresh_from_db()
    assert ticket.first_response_due_at == ticket.created_at + dt.timedelta(minutes=15)
    assert ticket.events.filter(kind="priority_changed", from_value="normal", to_value="urgent").count() == 1


@pytest.mark.django_db
def test_business_hours_policy_is_used_for_due_times():
    policy = SLAPolicyFactory(business_hours_only=True)
    ticket = make_ticket(department=DepartmentFactory(sla_policy=policy), priority="high")
    calendar = sla.BusinessCalendar.from_policy(policy)
    assert ticket.first_response_due_at == sla.add_minutes(ticket.created_at, 60, calendar)


@pytest.mark.django_db
def test_time_pending_on_the_customer_extends_the_resolution_target(ticket, agent):
    original_due = ticket.resolution_due_at
    services.ticket_change_status(ticket=ticket, to_status="pending", actor=agent)
    paused_at = timezone.now() - dt.timedelta(minutes=90)
    Ticket.objects.filter(pk=ticket.pk).update(sla_paused_at=paused_at)

    services.message_create(ticket=ticket, author_kind="customer", body="Here is the screenshot")

    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert ticket.sla_paused_at is None
    assert ticket.sla_paused_minutes == 90
    assert ticket.resolution_due_at == original_due + dt.timedelta(minutes=90)


@pytest.mark.django_db
def test_sweep_flags_each_breach_once(department):
    late = make_ticket(department=department, priority="urgent")
    on_time = make_ticket(department=department, priority="low")
    later = timezone.now() + dt.timedelta(minutes=30)

    assert services.ticket_sla_sweep(now=later) == 1
    assert services.ticket_sla_sweep(now=later) == 0

    late.refresh_from_db()
    on_time.refresh_from_db()
    assert (late.first_response_breached, on_time.first_response_breached) == (True, False)
    assert late.events.filter(kind="sla_breached", field="first_response").count() == 1


@pytest.mark.django_db
def test_late_first_reply_is_recorded_as_breached(department):
    ticket = make_ticket(department=department, priority="urgent")
    Ticket.objects.filter(pk=ticket.pk).update(first_response_due_at=timezone.now() - dt.timedelta(minutes=1))
    agent = make_agent(department)
    services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="Sorry for the wait")
    ticket.refresh_from_db()
    assert ticket.first_response_breached is True


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_write_one_event_per_breach():
    department = DepartmentFactory()
    tickets = [make_ticket(department=department, priority="urgent") for _ in range(5)]
    later = timezone.now() + dt.timedelta(minutes=30)
    start = threading.Barrier(2)

    def sweep(_):
        try:
            start.wait()
            return services.ticket_sla_sweep(now=later)
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        flagged = sum(pool.map(sweep, range(2)))

    assert flagged == 5
    for ticket in tickets:
        assert ticket.events.filter(kind="sla_breached").count() == 1


@pytest.mark.django_db
def test_paused_tickets_are_not_flagged_for_resolution(department):
    ticket = set_status(make_ticket(department=department, priority="urgent"), "pending")
    Ticket.objects.filter(pk=ticket.pk).update(sla_paused_at=timezone.now(), first_response_at=timezone.now())
    assert services.ticket_sla_sweep(now=timezone.now() + dt.timedelta(days=1)) == 0


@pytest.mark.django_db
def test_a_breach_escalates_once_and_the_department_is_emailed(department, mailoutbox, settings):
    settings.SITE_URL = "https://support.example.com"
    department.email = "queue@example.com"
    department.save()
    late = make_ticket(department=department, priority="urgent", subject="Sync\r\nBcc: evil@example.com")
    later = timezone.now() + dt.timedelta(minutes=30)

    services.ticket_sla_sweep(now=later)
    late.refresh_from_db()
    assert late.escalated
    assert late.escalation_reason == "SLA breached: first response overdue"
    assert late.events.filter(kind="escalated").count() == 1

    assert services.department_notify_escalation(ticket_id=late.pk, reason=late.escalation_reason) is True
    [mail] = mailoutbox
    assert mail.to == ["queue@example.com"]
    assert mail.subject == f"[{late.reference}] Escalated: Sync Bcc: evil@example.com"
    assert mail.bcc == []
    assert f"https://support.example.com/admin/tickets/ticket/{late.pk}/change/" in mail.body
