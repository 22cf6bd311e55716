from __future__ import annotations

import itertools

import pytest

from tickets import services
from tickets.models import Ticket, TicketEvent
from tickets.tests.factories import make_ticket, set_status

S = Ticket.Status
LEGAL = {
    (S.NEW, S.OPEN), (S.NEW, S.PENDING), (S.NEW, S.RESOLVED), (S.NEW, S.CLOSED),
    (S.OPEN, S.PENDING), (S.OPEN, S.RESOLVED), (S.OPEN, S.CLOSED),
    (S.PENDING, S.OPEN), (S.PENDING, S.RESOLVED), (S.PENDING, S.CLOSED),
    (S.RESOLVED, S.OPEN), (S.RESOLVED, S.CLOSED),
}  # fmt: skip
ALL_PAIRS = [(a, b) for a, b in itertools.product(S.values, S.values) if a != b]


def test_the_table_covers_every_pair():
    assert len(ALL_PAIRS) == 20
    assert {(a, b) for a, b in ALL_PAIRS if services.can_transition(a, b)} == LEGAL


@pytest.mark.django_db
@pytest.mark.parametrize(("from_status", "to_status"), sorted(LEGAL))
def test_legal_transition_changes_status_and_writes_one_event(from_status, to_status, agent, department):
    ticket = set_status(make_ticket(department=department), from_status)
    events_before = ticket.events.count()

    services.ticket_change_status(ticket=ticket, to_status=to_status, actor=agent)

    ticket.refresh_from_db()
    assert ticket.status == to_status
    new_events = list(ticket.events.order_by("pk")[events_before:])
    assert [(e.kind, e.from_value, e.to_value, e.actor_id) for e in new_events] == [
        (TicketEvent.Kind.STATUS_CHANGED, from_status, to_status, agent.pk)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(("from_status", "to_status"), sorted(set(ALL_PAIRS) - LEGAL))
def test_illegal_transition_is_refused_and_changes_nothing(from_status, to_status, agent, department):
    ticket = set_status(make_ticket(department=department), from_status)
    events_before = ticket.events.count()

    with pytest.raises(services.TicketRuleError, match="cannot go from"):
        services.ticket_change_status(ticket=ticket, to_status=to_status, actor=agent)

    ticket.refresh_from_db()
    assert ticket.status == from_status
    assert ticket.events.count() == events_before


@pytest.mark.django_db
def test_unknown_status_is_refused(ticket, agent):
    with pytest.raises(services.TicketRuleError, match="Unknown status"):
        services.ticket_change_status(ticket=ticket, to_status="deleted", actor=agent)


@pytest.mark.django_db
def test_resolve_then_reopen_counts_the_reopen_and_clears_resolved_at(ticket, agent):
    services.ticket_resolve(ticket=ticket, actor=agent)
    ticket.refresh_from_db()
    assert ticket.resolved_at is not None

    services.ticket_reopen(ticket=ticket, actor=agent)

    ticket.refresh_from_db()
    assert (ticket.status, ticket.reopen_count, ticket.resolved_at) == (S.OPEN, 1, None)


@pytest.mark.django_db
def test_reopen_needs_a_resolved_ticket(ticket, agent):
    with pytest.raises(services.TicketRuleError, match="Only resolved tickets"):
        services.ticket_reopen(ticket=ticket, actor=agent)
    ticket.refresh_from_db()
    assert ticket.status == S.NEW


@pytest.mark.django_db
def test_close_sets_closed_at_and_resolved_at(ticket, agent):
    services.ticket_close(ticket=ticket, actor=agent)
    ticket.refresh_from_db()
    assert ticket.status == S.CLOSED
    assert ticket.closed_at is not None
    assert ticket.resolved_at == ticket.closed_at


@pytest.mark.django_db
@pytest.mark.parametrize("status", [S.PENDING, S.RESOLVED])
def test_customer_message_reopens_a_waiting_or_resolved_ticket(status, department):
    ticket = set_status(make_ticket(department=department), status)

    services.message_create(ticket=ticket, author_kind="customer", body="Still broken.")

    ticket.refresh_from_db()
    assert ticket.status == S.OPEN
    assert ticket.reopen_count == (1 if status == S.RESOLVED else 0)
    last = ticket.events.order_by("-pk").first()
    assert (last.kind, last.from_value, last.to_value, last.actor_kind) == (
        "status_changed",
        status,
        "open",
        "customer",
    )


@pytest.mark.django_db
def test_closed_ticket_refuses_messages_and_stores_nothing(ticket):
    set_status(ticket, S.CLOSED)
    with pytest.raises(services.TicketRuleError, match="closed"):
        services.message_create(ticket=ticket, author_kind="customer", body="Hello again")
    assert ticket.messages.count() == 1


@pytest.mark.django_db
def test_reply_with_set_status_goes_through_the_machine(ticket, agent):
    services.message_create(
        ticket=ticket, author_kind="agent", author_user=agent, body="Try again now?", set_status=S.PENDING
    )
    ticket.refresh_from_db()
    assert ticket.status == S.PENDING
    assert list(ticket.events.filter(kind="status_changed").values_list("from_value", "to_value")) == [
        ("new", "open"),
        ("open", "pending"),
    ]


@pytest.mark.django_db
def test_escalate_flags_reroutes_and_raises_priority(ticket, agent, other_department):
    services.ticket_escalate(
        ticket=ticket, reason="Possible fraud", actor=agent, department=other_department, priority="urgent"
    )
    ticket.refresh_from_db()
    assert (ticket.escalated, ticket.needs_human, ticket.escalation_reason) == (True, True, "Possible fraud")
    assert (ticket.department, ticket.priority) == (other_department, "urgent")
    assert set(ticket.events.values_list("kind", flat=True)) >= {"escalated", "priority_changed", "department_changed"}


@pytest.mark.django_db
def test_escalate_needs_a_reason(ticket, agent):
    with pytest.raises(services.TicketRuleError, match="why"):
        services.ticket_escalate(ticket=ticket, reason="   ", actor=agent)
    ticket.refresh_from_db()
    assert ticket.escalated is False
    assert not ticket.events.filter(kind="escalated").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("score", [0, 6, "x", None])
def test_csat_out_of_range_is_refused(score, ticket, agent):
    services.ticket_resolve(ticket=ticket, actor=agent)
    with pytest.raises(services.TicketRuleError, match="1 to 5"):
        services.ticket_record_csat(ticket=ticket, score=score)
    ticket.refresh_from_db()
    assert ticket.csat_score is None


@pytest.mark.django_db
def test_csat_only_after_resolution_then_recorded_with_event(ticket, agent):
    with pytest.raises(services.TicketRuleError, match="once it is resolved"):
        services.ticket_record_csat(ticket=ticket, score=5)

    services.ticket_resolve(ticket=ticket, actor=agent)
    services.ticket_record_csat(ticket=ticket, score=4, comment="Good")

    ticket.refresh_from_db()
    assert (ticket.csat_score, ticket.csat_comment) == (4, "Good")
    assert ticket.events.filter(kind="csat_recorded", to_value="4").count() == 1
