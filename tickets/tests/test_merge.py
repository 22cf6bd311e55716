"""Merging two tickets of one customer, on the real database: the thread, its numbering, what moves, the
SLA, the refusals, the console page and list action, and the secondary's reference in the console, the
chat and the API. Concurrency and live sockets are in ``test_merge_live.py``."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from tickets import events, selectors, services
from tickets.models import AIDraft, AIRun, Attachment, EmailRecord, Message, Ticket, TicketEvent
from tickets.tests.factories import CustomerFactory, DepartmentFactory, make_agent, make_ticket
from tickets.tests.test_admin import change_url

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def at(message: Message, minutes: int) -> None:
    Message.objects.filter(pk=message.pk).update(created_at=T0 + dt.timedelta(minutes=minutes))


def thread(ticket: Ticket) -> list[tuple[int, str]]:
    return list(Message.objects.filter(ticket=ticket).order_by("seq").values_list("seq", "body"))


def say(ticket: Ticket, body: str, *, agent=None) -> Message:
    if agent is None:
        return services.message_create(ticket=ticket, author_kind="customer", body=body)
    return services.message_create(ticket=ticket, author_kind="agent", author_user=agent, body=body)


@pytest.fixture
def pair(department, agent):
    """One customer's two tickets: the earlier ``primary`` (kept) and the later ``secondary``, their
    messages written in turns: P1 S1 P2 S2 P3 (P2 an agent's reply)."""
    customer = CustomerFactory(name="Ada Lovelace")
    primary = make_ticket(department=department, customer=customer, subject="Sync stuck", body="P1 sync is stuck")
    secondary = make_ticket(department=department, customer=customer, subject="Sync again", body="S1 still stuck")
    p2 = say(primary, "P2 try resetting the cache", agent=agent)
    s2 = say(secondary, "S2 it did not help")
    p3 = say(primary, "P3 any news?")
    for minutes, message in enumerate([primary.messages.get(seq=1), secondary.messages.get(seq=1), p2, s2, p3]):
        at(message, minutes)
    return primary, secondary


# --- the service ------------------------------------------------------------------------------------


def test_the_threads_interleave_by_time_and_are_numbered_again_without_gaps(pair, agent):
    primary, secondary = pair

    merged = services.ticket_merge(primary=primary, secondary=secondary, actor=agent)

    assert [body[:2] for _, body in thread(primary)] == ["P1", "S1", "P2", "S2", "P3", "Co"]
    assert [seq for seq, _ in thread(primary)] == [1, 2, 3, 4, 5, 6]
    assert thread(primary)[-1][1] == f"Conversation {secondary.reference} was merged into this one."
    assert merged.last_message_seq == 6
    assert thread(secondary) == []
    nxt = say(merged, "P4 after the merge")
    assert nxt.seq == 7


def test_each_tickets_own_order_is_kept_where_clocks_disagree(pair):
    primary, secondary = pair
    # S2 carries a timestamp before S1 (two writers' clocks): it still follows S1, as it did in S
    at(secondary.messages.get(seq=2), -5)

    services.ticket_merge(primary=primary, secondary=secondary)

    assert [body[:2] for _, body in thread(primary)] == ["P1", "S1", "S2", "P2", "P3", "Co"]


def test_events_ai_records_attachments_and_emails_move_to_the_primary(pair):
    primary, secondary = pair
    s1 = secondary.messages.get(seq=1)
    run = AIRun.objects.create(
        key=f"triage:message:{s1.pk}", ticket=secondary, message=s1, kind="triage", provider="local"
    )
    draft = AIDraft.objects.create(ticket=secondary, in_reply_to=s1, body="Draft", confidence=0.4, provider="local")
    attachment = Attachment.objects.create(
        ticket=secondary, message=s1, filename="log.txt", content_type="text/plain", size=3, sha256="0" * 64,
        storage_name="attachments/x",
    )  # fmt: skip
    record = EmailRecord.objects.create(
        msgid="<s1@example.com>", direction="in", status="received", ticket=secondary, message=s1
    )
    created_on_secondary = secondary.events.get(kind="created").pk

    services.ticket_merge(primary=primary, secondary=secondary)

    for row in (run, draft, attachment, record):
        row.refresh_from_db()
        assert row.ticket_id == primary.pk, row
    assert TicketEvent.objects.get(pk=created_on_secondary).ticket_id == primary.pk
    assert list(secondary.events.order_by("pk").values_list("kind", "to_value")) == [
        ("status_changed", "closed"),
        ("merged", primary.reference),
    ]
    merged_event = primary.events.get(kind="merged")
    assert (merged_event.field, merged_event.from_value) == ("merged_from", secondary.reference)


def test_the_secondary_is_closed_as_merged_and_other_apps_hear_of_both(
    pair, agent, monkeypatch, django_capture_on_commit_callbacks
):
    primary, secondary = pair
    heard: list[tuple[str, dict]] = []
    monkeypatch.setattr(events, "_subscribers", [lambda kind, **payload: heard.append((kind, payload))])

    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_merge(primary=primary, secondary=secondary, actor=agent)

    secondary.refresh_from_db()
    assert (secondary.status, secondary.merged_into_id, secondary.last_message_seq) == ("closed", primary.pk, 0)
    closing = secondary.events.get(kind="status_changed")
    assert (closing.actor, closing.note) == (agent, f"Merged into {primary.reference}.")
    kinds = [(kind, payload["ticket_id"]) for kind, payload in heard]
    assert (events.TICKET_STATUS_CHANGED, secondary.pk) in kinds
    assert (events.TICKET_UPDATED, primary.pk) in kinds
    assert (events.MESSAGE_CREATED, primary.pk) in kinds  # the note in the thread


def test_the_sla_keeps_the_earliest_due_times_and_first_response(department, agent):
    customer = CustomerFactory()
    secondary = make_ticket(department=department, customer=customer, priority="urgent")  # due in 15 min
    primary = make_ticket(department=department, customer=customer, priority="low")  # due in 8 h
    say(secondary, "We are on it", agent=agent)
    Ticket.objects.filter(pk=secondary.pk).update(first_response_breached=True)
    secondary.refresh_from_db()
    say(primary, "Looking", agent=agent)

    merged = services.ticket_merge(primary=primary, secondary=secondary)

    assert merged.first_response_due_at == secondary.first_response_due_at
    assert merged.resolution_due_at == secondary.resolution_due_at
    assert merged.first_response_at == secondary.first_response_at
    assert merged.first_response_breached is True
    assert merged.priority == "low"  # the kept ticket's own fields stay as they were


def test_a_primary_waiting_on_the_customer_opens_again_when_the_merged_in_one_waits_on_us(pair, agent):
    primary, secondary = pair
    services.ticket_change_status(ticket=primary, to_status="pending", actor=agent)

    merged = services.ticket_merge(primary=primary, secondary=secondary, actor=agent)

    assert merged.status == "open"
    assert merged.sla_paused_at is None
    assert merged.events.filter(kind="status_changed", from_value="pending", to_value="open", actor=agent).exists()


def test_a_client_id_both_tickets_used_stays_with_the_primarys_message(department):
    customer = CustomerFactory()
    primary, secondary = (make_ticket(department=department, customer=customer) for _ in range(2))
    kept = services.message_create(ticket=primary, author_kind="customer", body="kept", client_msg_id="c-1")
    moved = services.message_create(ticket=secondary, author_kind="customer", body="moved", client_msg_id="c-1")

    services.ticket_merge(primary=primary, secondary=secondary)

    kept.refresh_from_db()
    moved.refresh_from_db()
    assert (kept.client_msg_id, moved.client_msg_id, moved.ticket_id) == ("c-1", "", primary.pk)


def test_a_merged_ticket_merged_again_leaves_no_chain(department):
    customer = CustomerFactory()
    first, second, third = (make_ticket(department=department, customer=customer) for _ in range(3))

    services.ticket_merge(primary=second, secondary=first)
    services.ticket_merge(primary=third, secondary=second)

    assert Ticket.objects.get(pk=first.pk).merged_into_id == third.pk
    assert [seq for seq, _ in thread(third)] == list(range(1, 6))  # 3 firsts + 2 merge notes


def refused(primary, secondary, match: str) -> None:
    def state():
        return [(Ticket.objects.get(pk=t.pk).status, thread(t), t.events.count()) for t in (primary, secondary)]

    before = state()
    with pytest.raises(services.TicketRuleError, match=match):
        services.ticket_merge(primary=primary, secondary=secondary)
    assert state() == before


def test_tickets_of_different_customers_are_refused_and_left_as_they_were(department):
    primary = make_ticket(department=department, customer=CustomerFactory(name="Ada"))
    secondary = make_ticket(department=department, customer=CustomerFactory(name="Bob"))

    refused(primary, secondary, "are from different customers")


def test_a_ticket_cannot_be_merged_into_itself(ticket):
    with pytest.raises(services.TicketRuleError, match="into itself"):
        services.ticket_merge(primary=ticket, secondary=ticket)


def test_closed_tickets_are_not_merged(pair):
    primary, secondary = pair
    services.ticket_close(ticket=secondary)
    refused(primary, secondary, f"{secondary.reference} is closed: its record is final")
    refused(secondary, primary, f"{secondary.reference} is closed: merge into a ticket that is still open")


def test_the_secondary_refuses_new_messages_and_says_where_the_conversation_went(pair):
    primary, secondary = pair
    services.ticket_merge(primary=primary, secondary=secondary)

    with pytest.raises(services.TicketRuleError, match=f"merged into {primary.reference}: reload the page"):
        say(Ticket.objects.get(pk=secondary.pk), "late message")
    assert Message.objects.filter(body="late message").count() == 0


# --- the console --------------------------------------------------------------------------------------


def merge_url(ticket: Ticket) -> str:
    return reverse("admin:tickets_ticket_merge", args=[ticket.pk])


def test_the_merge_page_offers_the_customers_other_open_tickets(agent_client, pair, department):
    primary, secondary = pair
    make_ticket(department=department)  # another customer's: never offered

    response = agent_client.get(merge_url(secondary))

    assert response.status_code == 200
    assert response.context["candidates"] == [primary]
    assert f'href="?into={primary.reference}"' in response.content.decode()


def test_merging_from_the_ticket_page_opens_the_kept_ticket(agent_client, pair):
    primary, secondary = pair

    response = agent_client.post(merge_url(secondary), {"into": primary.reference.lower()}, follow=True)

    assert response.redirect_chain == [(change_url(primary), 302)]
    assert f"{secondary.reference} was merged into {primary.reference}." in [
        str(m) for m in response.context["messages"]
    ]
    assert Ticket.objects.get(pk=secondary.pk).merged_into_id == primary.pk


def test_the_ticket_page_links_to_the_merge_page(agent_client, pair):
    primary, _ = pair
    assert merge_url(primary) in agent_client.get(change_url(primary)).content.decode()


def test_opening_the_secondary_in_the_console_goes_to_the_primary_with_a_notice(agent_client, pair):
    primary, secondary = pair
    services.ticket_merge(primary=primary, secondary=secondary)

    response = agent_client.get(change_url(secondary), follow=True)

    assert response.redirect_chain == [(change_url(primary), 302)]
    notice = f"{secondary.reference} was merged into {primary.reference}; this is the merged conversation."
    assert notice in [str(m) for m in response.context["messages"]]
    assert "S2 it did not help" in response.content.decode()


@pytest.mark.parametrize("into", ["SF-999999", "not a reference", ""])
def test_an_unknown_reference_is_shown_on_the_form_and_nothing_is_merged(agent_client, pair, into):
    _, secondary = pair

    response = agent_client.post(merge_url(secondary), {"into": into})

    assert response.status_code == 400
    assert Ticket.objects.get(pk=secondary.pk).merged_into_id is None
    assert response.context["form"].errors


def test_a_ticket_outside_the_agents_queues_cannot_be_merged_into_nor_opened(agent_client, agent):
    customer = CustomerFactory()
    mine = make_ticket(department=agent.agent_profile.departments.get(), customer=customer)
    theirs = make_ticket(department=DepartmentFactory(), customer=customer)

    into_theirs = agent_client.post(merge_url(mine), {"into": theirs.reference})
    open_theirs = agent_client.get(merge_url(theirs))

    assert into_theirs.status_code == 400
    assert f"No ticket {theirs.reference} in your queues." in into_theirs.content.decode()
    assert open_theirs.status_code == 404
    assert not Ticket.objects.exclude(merged_into=None).exists()


def test_a_different_customers_ticket_is_refused_with_the_reason(agent_client, department):
    mine = make_ticket(department=department, customer=CustomerFactory(name="Ada"))
    other = make_ticket(department=department, customer=CustomerFactory(name="Bob"))

    response = agent_client.post(merge_url(mine), {"into": other.reference})

    assert response.status_code == 400
    assert "are from different customers" in response.content.decode()
    assert not Ticket.objects.exclude(merged_into=None).exists()


def test_merging_needs_the_csrf_token(agent, pair):
    primary, secondary = pair
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)

    assert client.post(merge_url(secondary), {"into": primary.reference}).status_code == 403
    assert Ticket.objects.get(pk=secondary.pk).merged_into_id is None


def list_action(client, tickets):
    data = {"action": "merge_two", "_selected_action": [t.pk for t in tickets], "index": "0", "select_across": "0"}
    return client.post(reverse("admin:tickets_ticket_changelist"), data, follow=True)


def test_the_list_action_takes_exactly_two_tickets_to_the_merge_page(agent_client, pair):
    primary, secondary = pair

    response = list_action(agent_client, [secondary, primary])

    assert response.redirect_chain == [(f"{merge_url(secondary)}?into={primary.reference}", 302)]
    assert response.context["form"]["into"].value() == primary.reference


@pytest.mark.parametrize("count", [1, 3])
def test_the_list_action_refuses_other_counts(agent_client, department, count):
    customer = CustomerFactory()
    tickets = [make_ticket(department=department, customer=customer) for _ in range(count)]

    response = list_action(agent_client, tickets)

    assert "Select exactly two tickets to merge." in [str(m) for m in response.context["messages"]]


def test_the_list_action_refuses_two_customers(agent_client, department):
    tickets = [make_ticket(department=department) for _ in range(2)]

    response = list_action(agent_client, tickets)

    [message] = [str(m) for m in response.context["messages"]]
    assert "are from different customers" in message


# --- the secondary's reference, for the customer and the API ---------------------------------------------


def test_the_secondarys_chat_link_opens_the_merged_conversation(client, pair):
    primary, secondary = pair
    old_link = reverse("chat:conversation", args=[selectors.ticket_customer_token(ticket=secondary)])
    services.ticket_merge(primary=primary, secondary=secondary)

    response = client.get(old_link, follow=True)

    [(location, status)] = response.redirect_chain
    assert status == 302
    assert selectors.ticket_get_for_customer(token=location.rstrip("/").split("/")[-1]).pk == primary.pk
    html = response.content.decode()
    assert primary.reference in html
    assert "S2 it did not help" in html
    assert "P3 any news?" in html


def test_the_secondarys_token_opens_the_primary_everywhere_the_chat_looks(pair):
    primary, secondary = pair
    token = selectors.ticket_customer_token(ticket=secondary)
    services.ticket_merge(primary=primary, secondary=secondary)

    ticket = selectors.ticket_get_for_customer(token=token)

    assert (ticket.pk, ticket.followed_from) == (primary.pk, secondary.reference)


def test_the_api_answers_the_secondarys_reference_with_the_primary(agent_client, pair):
    primary, secondary = pair
    services.ticket_merge(primary=primary, secondary=secondary)

    detail = agent_client.get(reverse("api:ticket-detail", args=[secondary.reference]))
    thread_page = agent_client.get(reverse("api:ticket-messages", args=[secondary.reference]))

    assert detail.status_code == 200
    assert detail.json()["reference"] == primary.reference
    assert [m["seq"] for m in thread_page.json()["results"]] == [1, 2, 3, 4, 5, 6]


def test_the_api_does_not_follow_a_merge_out_of_the_callers_queues(client, department):
    customer = CustomerFactory()
    secondary = make_ticket(department=department, customer=customer)
    primary = make_ticket(department=DepartmentFactory(), customer=customer)
    services.ticket_merge(primary=primary, secondary=secondary)
    client.force_login(make_agent(department))

    detail = client.get(reverse("api:ticket-detail", args=[secondary.reference]))

    assert detail.json()["reference"] == secondary.reference
    assert detail.json()["status"] == "closed"


def test_an_email_tagged_with_the_secondarys_reference_joins_the_primary(pair, email_settings):
    from tickets.email.inbound import email_receive

    primary, secondary = pair
    services.ticket_merge(primary=primary, secondary=secondary)
    sender = primary.customer.email
    raw = (
        f"From: Ada <{sender}>\r\nTo: support@help.example.com\r\nSubject: Re: [{secondary.reference}] Sync again\r\n"
        "Message-ID: <reply-1@example.com>\r\n\r\nIt works now, thanks.\r\n"
    ).encode()

    result = email_receive(raw=raw)

    assert (result.status, result.ticket.pk) == ("appended", primary.pk)
