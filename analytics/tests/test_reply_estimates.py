"""How well the "a person will reply by …" promises held, on the overview page, from constructed tickets."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics import rollup
from analytics.metrics import Filters
from analytics.reply_estimates import reply_estimate_accuracy
from tickets import services
from tickets.models import Message, Ticket
from tickets.tests.factories import DepartmentFactory, make_agent, make_manager, make_ticket

pytestmark = pytest.mark.django_db


def _promise(department, agent, *, promised_in: int, replied_after: int | None, escalated: dt.datetime) -> Ticket:
    """A ticket handed over at ``escalated``, promised a reply ``promised_in`` minutes later, first answered by a
    person ``replied_after`` minutes after the handover (None: not yet)."""
    ticket = make_ticket(department=department)
    if replied_after is not None:
        note = services.message_create(
            ticket=ticket, author_kind="agent", author_user=agent, body="n", is_internal=True
        )
        reply = services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="Done.")
        Message.objects.filter(pk=note.pk).update(created_at=escalated + dt.timedelta(minutes=1))  # not a reply
        Message.objects.filter(pk=reply.pk).update(created_at=escalated + dt.timedelta(minutes=replied_after))
    Ticket.objects.filter(pk=ticket.pk).update(
        escalated=True, escalated_at=escalated, reply_promised_at=escalated + dt.timedelta(minutes=promised_in)
    )
    return ticket


@pytest.fixture
def promises():
    department, other = DepartmentFactory(), DepartmentFactory()
    agent = make_agent(department, other)
    now = timezone.now()
    start = now - dt.timedelta(hours=3)
    _promise(department, agent, promised_in=60, replied_after=50, escalated=start)  # kept, 10 min early
    _promise(department, agent, promised_in=60, replied_after=80, escalated=start)  # missed, 20 min late
    _promise(department, agent, promised_in=60, replied_after=60, escalated=start)  # kept, on the minute
    _promise(department, agent, promised_in=60, replied_after=None, escalated=start)  # missed: passed, no reply
    _promise(department, agent, promised_in=600, replied_after=None, escalated=start)  # pending
    _promise(other, agent, promised_in=60, replied_after=5, escalated=start)  # another queue
    old = now - dt.timedelta(days=40)
    _promise(department, agent, promised_in=60, replied_after=500, escalated=old)  # out of the range
    make_ticket(department=department)  # never handed over
    return department


def test_kept_share_and_median_error_from_constructed_promises(promises):
    today = rollup.today()
    figures = reply_estimate_accuracy(Filters(today - dt.timedelta(days=6), today, promises.pk))

    assert figures == {
        "promised": 5,
        "decided": 4,
        "pending": 1,
        "kept": 2,
        "replied": 3,
        "kept_share": 0.5,
        "median_error_minutes": 0.0,  # −10, 0, +20
        "median_abs_error_minutes": 10.0,  # 10, 0, 20
    }
    everywhere = reply_estimate_accuracy(Filters(today - dt.timedelta(days=6), today))
    assert (everywhere["promised"], everywhere["kept"], everywhere["decided"]) == (6, 3, 5)


def test_the_overview_shows_the_panel(client, promises):
    client.force_login(make_manager())
    today = rollup.today()
    query = {"start": (today - dt.timedelta(days=6)).isoformat(), "end": today.isoformat(), "department": promises.pk}

    page = client.get(reverse("analytics:overview"), query)

    assert page.status_code == 200
    html = page.content.decode()
    assert "Reply-time promises to customers" in html
    assert "50 % (2/4)" in html
    assert "<td>0.0 min</td>" in html
    assert "<td>10.0 min</td>" in html


def test_no_promises_says_so(client):
    client.force_login(make_manager())
    page = client.get(reverse("analytics:overview"))
    assert "No handovers with a promised reply time in this range." in page.content.decode()
