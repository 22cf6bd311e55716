"""Several events of one service call written as one INSERT (``services.common.batched_events``)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tickets import services
from tickets.models import ActorKind, TicketEvent
from tickets.services.common import _event, batched_events
from tickets.tests.factories import DepartmentFactory, make_ticket

pytestmark = pytest.mark.django_db


def _event_inserts(queries: CaptureQueriesContext) -> int:
    return sum(1 for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "tickets_ticketevent"'))


def test_events_of_a_block_are_one_insert_in_the_order_they_were_recorded():
    ticket = make_ticket()
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), batched_events():
        for note in ("first", "second", "third"):
            _event(ticket, TicketEvent.Kind.TRIAGE_CHANGED, note=note)
        with batched_events():  # nested: joins the outer batch
            _event(ticket, TicketEvent.Kind.TRIAGE_CHANGED, note="fourth")
        assert not TicketEvent.objects.filter(ticket=ticket, kind=TicketEvent.Kind.TRIAGE_CHANGED).exists()

    assert _event_inserts(queries) == 1
    notes = TicketEvent.objects.filter(ticket=ticket, kind=TicketEvent.Kind.TRIAGE_CHANGED).order_by("pk")
    assert list(notes.values_list("note", flat=True)) == ["first", "second", "third", "fourth"]
    assert all(e.created_at is not None for e in notes)


def test_an_error_in_the_block_writes_none_of_its_events():
    ticket = make_ticket()

    def failing_service():
        with transaction.atomic(), batched_events():
            _event(ticket, TicketEvent.Kind.TRIAGE_CHANGED, note="lost with the transaction")
            raise RuntimeError("the service failed")

    with pytest.raises(RuntimeError):
        failing_service()
    assert not TicketEvent.objects.filter(ticket=ticket, kind=TicketEvent.Kind.TRIAGE_CHANGED).exists()
    _event(ticket, TicketEvent.Kind.TRIAGE_CHANGED, note="outside a batch: written at once")
    assert TicketEvent.objects.filter(ticket=ticket, note__startswith="outside").count() == 1


def test_the_ai_triage_records_every_change_in_one_insert():
    ticket = make_ticket()
    billing = DepartmentFactory(name="Billing")
    with CaptureQueriesContext(connection) as queries:
        services.ticket_apply_ai_triage(
            ticket=ticket,
            details={"category": "billing", "provider": "local", "model": "m1"},
            category="billing",
            sentiment="negative",
            language="de",
            department=billing,
        )
    assert _event_inserts(queries) == 1
    events = TicketEvent.objects.filter(ticket=ticket, actor_kind=ActorKind.AI).order_by("pk")
    assert [(e.kind, e.field) for e in events] == [
        (TicketEvent.Kind.TRIAGE_CHANGED, "category"),
        (TicketEvent.Kind.TRIAGE_CHANGED, "sentiment"),
        (TicketEvent.Kind.TRIAGE_CHANGED, "language"),
        (TicketEvent.Kind.DEPARTMENT_CHANGED, "department"),
        (TicketEvent.Kind.AI_TRIAGED, ""),
    ]
