"""When a person will reply (issue 18): the estimate given at a handover — the SLA bound, sooner from the queue's
recent replies, in business hours — shown in the chat and sent in the email acknowledgement (real SMTP server,
real Celery worker)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from tickets import reply_estimates, selectors, services, sla
from tickets.consumers import db
from tickets.email import inbound
from tickets.email import tasks as email_tasks
from tickets.models import EmailRecord, Message, Ticket
from tickets.tests.emails import build
from tickets.tests.factories import DepartmentFactory, SLAPolicyFactory, make_agent, make_ticket
from tickets.tests.test_consumers import customer_socket, receive_until

HTMX = {"HTTP_HX_REQUEST": "true"}
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
FRIDAY_1650 = dt.datetime(2026, 12, 4, 16, 50, tzinfo=BERLIN)  # ten business minutes before the weekend


def _replied_history(department, agent, spans: list[tuple[dt.datetime, dt.timedelta]], priority="normal") -> None:
    """Tickets of the queue handed over at ``start`` whose first public agent reply came ``after`` later (with an
    internal note and a reply from before the handover that must not count)."""
    for start, after in spans:
        ticket = make_ticket(department=department, priority=priority)
        early = services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="Before.")
        note = services.message_create(
            ticket=ticket, author_kind="agent", author_user=agent, body="Looking.", is_internal=True
        )
        reply = services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="Fixed.")
        Message.objects.filter(pk=early.pk).update(created_at=start - dt.timedelta(hours=1))
        Message.objects.filter(pk=note.pk).update(created_at=start + dt.timedelta(minutes=1))
        Message.objects.filter(pk=reply.pk).update(created_at=start + after)
        Ticket.objects.filter(pk=ticket.pk).update(escalated=True, escalated_at=start)


@pytest.fixture
def business_queue(db):
    policy = SLAPolicyFactory(business_hours_only=True, timezone="Europe/Berlin")  # Mon–Fri 09:00–17:00
    return DepartmentFactory(sla_policy=policy)


def _friday_ticket(department) -> Ticket:
    ticket = make_ticket(department=department)
    calendar = sla.BusinessCalendar.from_policy(department.sla_policy)
    Ticket.objects.filter(pk=ticket.pk).update(
        created_at=FRIDAY_1650, first_response_due_at=sla.add_minutes(FRIDAY_1650, 240, calendar)
    )
    ticket.refresh_from_db()
    return ticket


@pytest.mark.django_db
def test_business_hours_push_the_sla_bound_past_the_weekend(business_queue):
    ticket = _friday_ticket(business_queue)

    promised = reply_estimates.reply_estimate(ticket=ticket, now=FRIDAY_1650)

    # 10 minutes on Friday, the other 230 from Monday's opening.
    assert promised == dt.datetime(2026, 12, 7, 12, 50, tzinfo=BERLIN)
    with translation.override("en"):
        phrase = reply_estimates.reply_estimate_phrase(promised=promised, zone=BERLIN, now=FRIDAY_1650)
    assert phrase == "by about 12:50 CET on Monday"


@pytest.mark.django_db
def test_the_queues_recent_median_beats_the_sla_bound_and_is_measured_in_business_hours(business_queue):
    agent = make_agent(business_queue)
    thursday_10 = dt.datetime(2026, 12, 3, 10, 0, tzinfo=BERLIN)
    thursday_1650 = dt.datetime(2026, 12, 3, 16, 50, tzinfo=BERLIN)
    spans = [(thursday_10, dt.timedelta(minutes=m)) for m in (20, 35, 40, 30)]
    spans.append((thursday_1650, dt.timedelta(hours=16, minutes=30)))  # Fri 09:20: 30 business minutes
    _replied_history(business_queue, agent, spans)
    _replied_history(business_queue, agent, [(thursday_10, dt.timedelta(minutes=1))], priority="urgent")
    ticket = _friday_ticket(business_queue)

    promised = reply_estimates.reply_estimate(ticket=ticket, now=FRIDAY_1650)

    # median 30 business minutes: 10 on Friday, 20 from Monday's opening — well before the SLA's 12:50
    assert promised == dt.datetime(2026, 12, 7, 9, 20, tzinfo=BERLIN)


@pytest.mark.django_db
def test_too_little_history_falls_back_to_the_sla_bound_and_the_median_is_capped_by_it(department, settings):
    agent = make_agent(department)
    now = timezone.now()
    ticket = make_ticket(department=department)  # normal: first response due 240 minutes after creation
    _replied_history(department, agent, [(now - dt.timedelta(days=2), dt.timedelta(hours=9))] * 4)
    assert reply_estimates.reply_estimate(ticket=ticket, now=now) == ticket.first_response_due_at  # 4 < 5

    _replied_history(department, agent, [(now - dt.timedelta(days=2), dt.timedelta(hours=9))])
    assert reply_estimates.reply_estimate(ticket=ticket, now=now) == ticket.first_response_due_at  # 9 h > 4 h

    settings.REPLY_ESTIMATE_WINDOW_DAYS = 1  # the history is too old now
    Ticket.objects.filter(pk=ticket.pk).update(first_response_due_at=now - dt.timedelta(minutes=5))
    ticket.refresh_from_db()  # an overdue (or AI-answered) ticket: the target counted from the handover
    assert reply_estimates.reply_estimate(ticket=ticket, now=now) == now + dt.timedelta(minutes=240)


@pytest.mark.django_db
def test_no_sla_policy_no_promise(client):
    ticket = make_ticket(department=DepartmentFactory(sla_policy=None))
    token = selectors.ticket_customer_token(ticket=ticket)

    response = client.post(reverse("chat:person", args=[token]), **HTMX)

    assert response.status_code == 200
    ticket.refresh_from_db()
    assert ticket.reply_promised_at is None
    notice = ticket.messages.get(author_kind="system").body
    assert (
        notice
        == f"I've passed this to our {ticket.department.name} team; a person will reply here as soon as possible."
    )


@pytest.mark.django_db
def test_a_handover_in_the_chat_says_when_a_person_will_reply_until_one_does(client, department):
    ticket = make_ticket(department=department, body="I was charged twice.")
    token = selectors.ticket_customer_token(ticket=ticket)

    response = client.post(reverse("chat:person", args=[token]), **HTMX)  # "Talk to a person"

    assert response.status_code == 200
    ticket.refresh_from_db()
    due = ticket.first_response_due_at
    assert ticket.reply_promised_at == due  # no history yet: the SLA's first-response time
    day = "today" if due.date() == timezone.now().date() else "tomorrow"
    when = f"by about {due:%H:%M} UTC {day}"
    assert f"A person from our team has this conversation and will reply here {when}." in response.text
    notice = ticket.messages.get(author_kind="system").body
    assert notice == f"I've passed this to our {department.name} team; a person will reply here {when}."
    page = client.get(reverse("chat:conversation", args=[token]))
    assert page.text.count(when) == 2  # the notice in the thread and the status line

    agent = make_agent(department)
    services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="Refunded.")
    page = client.get(reverse("chat:conversation", args=[token]))
    assert "A person from our team has this conversation and will reply here." in page.text
    assert page.text.count(when) == 1  # the thread keeps what was said; the status line no longer promises


@pytest.mark.django_db
def test_the_promise_is_in_the_conversations_language(client, department):
    ticket = make_ticket(department=department)
    services.ticket_set_ui_language(ticket=ticket, language="de")
    token = selectors.ticket_customer_token(ticket=ticket)

    response = client.post(reverse("chat:person", args=[token]), **HTMX)

    ticket.refresh_from_db()
    due = ticket.first_response_due_at
    day = "heute" if due.date() == timezone.now().date() else "morgen"
    when = f"{day} bis etwa {due:%H:%M} UTC"
    assert when in response.text
    assert when in ticket.messages.get(author_kind="system").body


@pytest.mark.django_db(transaction=True)
def test_an_email_ticket_handed_over_gets_one_acknowledgement_saying_when(
    smtp_server, email_settings, department, celery_worker
):
    result = inbound.email_receive(
        raw=build(sender="Ada <ada@example.com>", message_id="<ack1@example.com>", subject="Invoice is wrong")
    )
    ticket = result.ticket
    services.ticket_update_triage(ticket=ticket, department=department)
    question = ticket.messages.get(author_kind="customer")

    outcome = services.ai_reply_record(
        ticket=ticket,
        in_reply_to=question,
        body="Draft: refund the second charge.",
        citations=[],
        confidence=0.2,
        provider="local",
        model="test",
        gate={},
        send=False,
        escalation_reason="AI not confident enough to answer",
    )

    assert outcome == "escalated"
    [mail] = smtp_server.wait_for(1, timeout=60)
    ticket.refresh_from_db()
    due = ticket.reply_promised_at
    assert due == ticket.first_response_due_at
    assert mail["Subject"] == f"A person will reply: Invoice is wrong [{ticket.reference}]"
    assert mail["In-Reply-To"] == "<ack1@example.com>"  # threads into the ticket
    assert mail["Auto-Submitted"] == "auto-replied"
    day = "today" if due.date() == ticket.escalated_at.date() else "tomorrow"
    assert mail.get_content().replace("\r\n", "\n") == (
        "Hello Ada,\n\n"
        f"A person from our team has your request {ticket.reference} and will reply by about {due:%H:%M} UTC {day}."
        "\n\nTo add anything, reply to this email.\n"
    )
    record = EmailRecord.objects.get(key__startswith=f"handover:{ticket.pk}:")
    assert record.msgid == mail["Message-ID"]

    assert email_tasks.send_handover_ack(ticket.pk) == "sent"  # a rerun sends nothing more
    services.ticket_request_human(ticket=ticket)  # already handed over: no second notice
    assert Message.objects.filter(ticket=ticket, author_kind="system").count() == 1
    assert EmailRecord.objects.filter(key__startswith="handover:").count() == 1
    assert len(smtp_server.messages) == 1


@pytest.mark.django_db
def test_the_acknowledgement_goes_only_to_email_tickets_still_open(smtp_server, email_settings, department):
    chat = make_ticket(department=department)
    services.ticket_request_human(ticket=chat)
    assert email_tasks.send_handover_ack(chat.pk) == "not-email"
    by_email = services.ticket_create(
        customer=chat.customer, subject="x", body="x", channel="email", department=department
    )
    assert email_tasks.send_handover_ack(by_email.pk) == "not-needed"  # not handed over
    services.ticket_request_human(ticket=by_email)
    services.ticket_resolve(ticket=by_email)
    assert email_tasks.send_handover_ack(by_email.pk) == "not-needed"  # resolved before the task ran
    assert email_tasks.send_handover_ack(0) == "missing"
    assert smtp_server.messages == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_channel_layer")
def test_the_customers_open_socket_gets_the_promise_live(department):
    ticket = make_ticket(department=department, body="I was charged twice.")
    person = reverse("chat:person", args=[selectors.ticket_customer_token(ticket=ticket)])

    async def scenario() -> tuple[str, str]:
        ws = customer_socket(ticket)
        assert (await ws.connect(timeout=5))[0]
        assert (await db(lambda: Client().post(person, **HTMX).status_code)()) == 200  # "Talk to a person"
        notice = await receive_until(ws, "passed this to our")
        status = await receive_until(ws, 'id="chat-status"')
        await ws.disconnect()
        return notice, status

    notice, status = async_to_sync(scenario)()
    ticket.refresh_from_db()
    due = ticket.reply_promised_at
    assert due == ticket.first_response_due_at
    assert f"a person will reply here by about {due:%H:%M} UTC" in notice
    assert f"will reply here by about {due:%H:%M} UTC" in status
