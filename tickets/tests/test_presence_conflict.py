"""Collision before sending: a reply written on top of messages the agent had not seen is not sent; the
reply box shows what was added and a "Send anyway". Through Django's test client and the real database."""

from __future__ import annotations

import re
from html import escape

import pytest
from django.urls import reverse

from tickets import services
from tickets.models import AIDraft, Message, Ticket
from tickets.tests.factories import make_agent
from tickets.tests.test_ai_console import pending_draft

pytestmark = pytest.mark.django_db


def change_url(ticket: Ticket) -> str:
    return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def reply(client, ticket: Ticket, body: str, *, seen: int | str | None, **fields):
    data = {"_reply": "1", "body": body, **fields}
    if seen is not None:
        data["last_seen_seq"] = seen
    return client.post(change_url(ticket), data)


def customer_says(ticket: Ticket, body: str) -> Message:
    return services.message_create(ticket=ticket, author_kind="customer", body=body)


def hidden_value(html: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden {name} in the page"
    return match.group(1)


def warning(html: str) -> str:
    """The warning box of the reply form (the page's thread shows the same messages too)."""
    match = re.search(r'<div class="sf-conflict" role="alert">.*?</ol>', html, re.S)
    assert match, "no warning in the page"
    return match.group(0)


def kept(html: str, body: str) -> bool:
    return re.search(rf">\s*{re.escape(body)}</textarea>", html) is not None


def thread_of(ticket: Ticket) -> list[tuple[int, str, str]]:
    return list(ticket.messages.order_by("seq").values_list("seq", "author_kind", "body"))


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def test_the_page_carries_the_newest_message_it_shows(agent_client, ticket):
    assert hidden_value(agent_client.get(change_url(ticket)).content.decode(), "last_seen_seq") == "1"
    customer_says(ticket, "One more thing")
    assert hidden_value(agent_client.get(change_url(ticket)).content.decode(), "last_seen_seq") == "2"


def test_a_reply_crossing_a_customer_message_is_not_sent_and_shows_what_was_added(agent_client, ticket):
    customer_says(ticket, "Actually it works now <b>thanks</b>")

    response = reply(agent_client, ticket, "Please reset your cache.", seen=1, then_status="resolved")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Not sent: the conversation moved on while you were writing." in html
    assert "This message was added:" in html
    assert "Actually it works now &lt;b&gt;thanks&lt;/b&gt;" in warning(html)
    assert re.search(r'<button type="submit" name="send_anyway" value="1"[^>]*>Send anyway</button>', html)
    assert hidden_value(html, "confirm_seq") == "2"
    assert hidden_value(html, "last_seen_seq") == "1"
    assert kept(html, "Please reset your cache.")
    assert [seq for seq, *_ in thread_of(ticket)] == [1, 2]  # nothing sent
    ticket.refresh_from_db()
    assert (ticket.status, ticket.first_response_at) == ("new", None)  # and nothing changed


def test_send_anyway_sends_it(agent_client, ticket, agent):
    customer_says(ticket, "Hello?")
    warned = reply(agent_client, ticket, "On it.", seen=1).content.decode()

    response = reply(
        agent_client, ticket, "On it.", seen=1, confirm_seq=hidden_value(warned, "confirm_seq"), send_anyway="1"
    )

    assert response.status_code == 302
    sent = ticket.messages.get(seq=3)
    assert (sent.author_kind, sent.author_user, sent.body, sent.is_internal) == ("agent", agent, "On it.", False)


def test_send_anyway_warns_again_about_a_message_added_after_the_warning(agent_client, ticket):
    customer_says(ticket, "First addition")
    warned = reply(agent_client, ticket, "Reply", seen=1).content.decode()
    customer_says(ticket, "Second addition")

    again = reply(
        agent_client, ticket, "Reply", seen=1, confirm_seq=hidden_value(warned, "confirm_seq"), send_anyway="1"
    )

    html = again.content.decode()
    assert "Second addition" in warning(html)
    assert "First addition" not in warning(html)
    assert hidden_value(html, "confirm_seq") == "3"
    assert ticket.messages.count() == 3


def test_the_plain_send_button_after_a_warning_warns_again(agent_client, ticket):
    customer_says(ticket, "Hello?")
    warned = reply(agent_client, ticket, "Reply", seen=1).content.decode()

    again = reply(agent_client, ticket, "Reply", seen=1, confirm_seq=hidden_value(warned, "confirm_seq"))

    assert "Not sent" in again.content.decode()
    assert ticket.messages.count() == 2


@pytest.mark.parametrize(
    ("added", "warns"),
    [
        ("customer message", True),
        ("another agent's reply", True),
        ("an AI reply", True),
        ("another agent's internal note", False),
        ("my own earlier reply", False),
        ("a system line", False),
    ],
)
def test_what_counts_as_a_crossing_message(agent_client, ticket, agent, department, added, warns):
    colleague = make_agent(department)
    kwargs = {
        "customer message": {"author_kind": "customer"},
        "another agent's reply": {"author_kind": "agent", "author_user": colleague},
        "an AI reply": {"author_kind": "ai", "ai_confidence": 0.9},
        "another agent's internal note": {"author_kind": "agent", "author_user": colleague, "is_internal": True},
        "my own earlier reply": {"author_kind": "agent", "author_user": agent},
        "a system line": {"author_kind": "system"},
    }[added]
    services.message_create(ticket=ticket, body=f"Added: {added}", **kwargs)

    response = reply(agent_client, ticket, "My reply", seen=1)

    if warns:
        assert response.status_code == 200
        assert escape(f"Added: {added}") in warning(response.content.decode())
        assert ticket.messages.count() == 2
    else:
        assert response.status_code == 302
        assert ticket.messages.last().body == "My reply"


def test_an_internal_note_is_added_without_a_warning(agent_client, ticket):
    customer_says(ticket, "Hello?")

    response = reply(agent_client, ticket, "Customer seems impatient", seen=1, is_internal="on")

    assert response.status_code == 302
    note = ticket.messages.get(seq=3)
    assert (note.body, note.is_internal) == ("Customer seems impatient", True)


def test_over_htmx_the_reply_box_comes_back_with_the_warning(agent_client, ticket):
    customer_says(ticket, "Are you there?")

    response = agent_client.post(
        change_url(ticket), {"_reply": "1", "body": "Yes!", "last_seen_seq": "1"}, HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<form method="post" id="sf-reply"')
    assert "Are you there?" in html
    assert "Send anyway" in html
    assert ticket.messages.count() == 2

    sent = agent_client.post(
        change_url(ticket),
        {"_reply": "1", "body": "Yes!", "last_seen_seq": "1", "confirm_seq": "2", "send_anyway": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert "Reply sent." in sent.content.decode()
    assert hidden_value(sent.content.decode(), "last_seen_seq") == "1"  # the page moves it on as the thread grows
    assert ticket.messages.get(seq=3).body == "Yes!"


def test_an_edited_ai_draft_is_checked_too_and_stays_pending_when_warned(agent_client, ticket, agent):
    draft = pending_draft(ticket)
    customer_says(ticket, "Never mind, found it")
    last = ticket.messages.order_by("seq").last().seq

    warned = reply(agent_client, ticket, "Edited draft", seen=last - 1, draft=draft.pk)

    assert "Never mind, found it" in warning(warned.content.decode())
    draft.refresh_from_db()
    assert draft.status == AIDraft.Status.PENDING
    sent = reply(agent_client, ticket, "Edited draft", seen=last - 1, draft=draft.pk, confirm_seq=last, send_anyway="1")
    assert sent.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.sent_message.body, draft.used_by) == (AIDraft.Status.USED, "Edited draft", agent)


@pytest.mark.parametrize("seen", ["abc", "-1", "1e3"])
def test_a_garbled_last_seen_is_refused_with_a_message_and_nothing_sent(agent_client, ticket, seen):
    response = reply(agent_client, ticket, "Keep me", seen=seen)

    html = response.content.decode()
    assert response.status_code == 200
    assert "This page is out of date: reload it, then send again" in html
    assert kept(html, "Keep me")
    assert ticket.messages.count() == 1


def test_a_client_that_does_not_say_what_it_saw_is_not_checked(agent_client, ticket):
    customer_says(ticket, "Hello?")

    assert reply(agent_client, ticket, "Plain post", seen=None).status_code == 302
    assert ticket.messages.get(seq=3).body == "Plain post"


def test_an_agent_of_another_queue_cannot_send_anyway(client, ticket, other_department):
    client.force_login(make_agent(other_department))

    response = reply(client, ticket, "Not my queue", seen=1, confirm_seq="1", send_anyway="1")

    assert response.status_code == 404
    assert ticket.messages.count() == 1


def test_the_service_raises_the_conflict_and_writes_nothing(ticket, agent):
    added = customer_says(ticket, "Hello?")
    events_before = ticket.events.count()

    with pytest.raises(services.ReplyConflict) as raised:
        services.agent_reply_send(ticket=ticket, actor=agent, body="Hi", seen_through=1, set_status="pending")

    assert [m.pk for m in raised.value.messages] == [added.pk]
    assert raised.value.seen_through == 2
    assert ticket.messages.count() == 2
    assert ticket.events.count() == events_before
    message = services.agent_reply_send(ticket=ticket, actor=agent, body="Hi", seen_through=2, set_status="pending")
    ticket.refresh_from_db()
    assert (message.seq, ticket.status) == (3, "pending")
