from __future__ import annotations

import pytest

from tickets import services
from tickets.models import Message, Ticket
from tickets.tests.factories import CustomerFactory, make_ticket


@pytest.mark.django_db
def test_ticket_create_stores_first_message_reference_and_event(department):
    ticket = services.ticket_create(
        customer=CustomerFactory(),
        subject="  Can't   log in ",
        body="  Password reset mail never arrives. ",
        department=department,
    )
    assert ticket.reference.startswith("SF-")
    assert len(ticket.reference) >= 9
    assert ticket.subject == "Can't log in"
    assert list(ticket.messages.values_list("seq", "author_kind", "body")) == [
        (1, "customer", "Password reset mail never arrives.")
    ]
    assert list(ticket.events.values_list("kind", "actor_kind")) == [("created", "customer")]
    assert ticket.last_message_seq == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "error"),
    [("", "cannot be empty"), ("   \n ", "cannot be empty"), ("x" * 10_001, "at most 10,000"), (None, "must be text")],
)
def test_bad_bodies_are_refused_and_nothing_is_stored(body, error, department):
    with pytest.raises(services.TicketRuleError, match=error):
        services.ticket_create(customer=CustomerFactory(), subject="s", body=body, department=department)
    assert Ticket.objects.count() == 0

    ticket = make_ticket(department=department)
    with pytest.raises(services.TicketRuleError, match=error):
        services.message_create(ticket=ticket, author_kind="customer", body=body)
    assert ticket.messages.count() == 1


@pytest.mark.django_db
def test_sequence_numbers_are_gap_free_in_a_thread(ticket, agent):
    services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="Hi")
    services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="note", is_internal=True)
    with pytest.raises(services.TicketRuleError):
        services.message_create(ticket=ticket, author_kind="customer", body="")
    services.message_create(ticket=ticket, author_kind="customer", body="Thanks")
    assert list(ticket.messages.values_list("seq", flat=True)) == [1, 2, 3, 4]


@pytest.mark.django_db
def test_first_response_is_the_first_public_agent_or_ai_reply(ticket, agent):
    services.message_create(ticket=ticket, author_kind="customer", body="Anyone?")
    services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="Looking", is_internal=True)
    ticket.refresh_from_db()
    assert ticket.first_response_at is None
    assert ticket.status == Ticket.Status.NEW

    reply = services.message_create(ticket=ticket, author_kind="ai", body="Try this", ai_confidence=0.9)
    ticket.refresh_from_db()
    assert ticket.first_response_at == reply.created_at
    assert ticket.status == Ticket.Status.OPEN
    assert ticket.events.filter(kind="first_response", actor_kind="ai").count() == 1

    services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body="Also this")
    ticket.refresh_from_db()
    assert ticket.first_response_at == reply.created_at
    assert ticket.events.filter(kind="first_response").count() == 1


@pytest.mark.django_db
def test_customers_cannot_write_internal_notes(ticket):
    with pytest.raises(services.TicketRuleError, match="internal"):
        services.message_create(ticket=ticket, author_kind="customer", body="x", is_internal=True)
    assert Message.objects.filter(ticket=ticket).count() == 1


@pytest.mark.django_db
def test_customer_email_is_unique_case_insensitively():
    first = services.customer_get_or_create(email="Ana@Example.com", name="Ana")
    again = services.customer_get_or_create(email="ana@example.com")
    assert first.pk == again.pk
    assert again.name == "Ana"


# --- the chat's hot path: one statement per customer message ----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_customer_message_on_an_open_ticket_is_one_statement(department):
    """Sequence number, row lock, insert and ticket update in one statement (one round trip, no
    BEGIN/COMMIT) and nothing else: on commit, whether anyone subscribes to the event is a Redis GET
    (``webhooks._subscribed_events``), not a query."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ticket = make_ticket(department=department)
    with CaptureQueriesContext(connection) as captured:
        message = services.message_create(
            ticket=ticket, author_kind="customer", body="fast <b>path</b>", client_msg_id="f1"
        )

    statements = [q["sql"] for q in captured.captured_queries]
    assert len(statements) == 1
    assert statements[0].lstrip().startswith("WITH")
    assert (message.seq, message.was_created, message.body, message.client_msg_id) == (
        2,
        True,
        "fast <b>path</b>",
        "f1",
    )
    assert message.ticket.customer.name == ticket.customer.name
    stored = Message.objects.get(pk=message.pk)
    assert (stored.seq, stored.author_kind, stored.body, stored.citations) == (2, "customer", "fast <b>path</b>", [])
    ticket.refresh_from_db()
    assert ticket.last_message_seq == 2
    assert ticket.last_customer_message_at == stored.created_at


@pytest.mark.django_db
def test_the_hot_path_returns_the_ticket_as_stored(ticket):
    """The message comes back with the ticket and customer read by the same statement (the broadcast
    and the event subscribers use them): JSON fields decoded, the new sequence number in place."""
    Ticket.objects.filter(pk=ticket.pk).update(triage={"category": "billing"})

    message = services.message_create(ticket=ticket, author_kind="customer", body="hello")

    assert message.ticket.triage == {"category": "billing"}
    assert message.ticket.last_message_seq == message.seq == 2
    assert message.ticket.access_key == Ticket.objects.get(pk=ticket.pk).access_key


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["pending", "resolved"])
def test_a_customer_message_on_a_waiting_ticket_still_reopens_it(ticket, status):
    Ticket.objects.filter(pk=ticket.pk).update(status=status)

    message = services.message_create(ticket=ticket, author_kind="customer", body="still there?")

    ticket.refresh_from_db()
    assert (ticket.status, message.seq, ticket.last_message_seq) == ("open", 2, 2)


@pytest.mark.django_db
def test_a_resend_takes_no_sequence_number(ticket):
    first = services.message_create(ticket=ticket, author_kind="customer", body="hi", client_msg_id="same")
    again = services.message_create(ticket=ticket, author_kind="customer", body="hi", client_msg_id="same")
    after = services.message_create(ticket=ticket, author_kind="customer", body="next", client_msg_id="other")

    assert (first.was_created, again.was_created, again.pk) == (True, False, first.pk)
    assert list(ticket.messages.values_list("seq", flat=True)) == [1, 2, 3]
    assert after.seq == 3
