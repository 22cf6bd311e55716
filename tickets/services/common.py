"""What every ticket service shares: the rule error, the event row, the row lock and the SLA clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection

from tickets import sla
from tickets.models import ActorKind, Department, Message, SLATarget, Ticket, TicketEvent

Status = Ticket.Status
AuthorKind = Message.AuthorKind


class TicketRuleError(Exception):
    """A request that breaks a ticket rule. ``str(error)`` is safe to show to the person who asked."""


def _actor_kind(actor: AbstractBaseUser | None) -> str:
    return ActorKind.AGENT if actor is not None else ActorKind.SYSTEM


_event_batch: ContextVar[list[TicketEvent] | None] = ContextVar("ticket_event_batch", default=None)


@contextmanager
def batched_events() -> Iterator[None]:
    """Write the events ``_event`` records inside this block as one ``INSERT`` at its end (a service
    that changes several fields — the AI's triage records five events per message — pays one round trip,
    not five). Use it inside the service's transaction and only where nothing in the block reads the
    ticket's events back. Nested blocks join the outer one; an exception drops the batch with the
    transaction it belonged to."""
    if _event_batch.get() is not None:
        yield
        return
    batch: list[TicketEvent] = []
    token = _event_batch.set(batch)
    try:
        yield
    finally:
        _event_batch.reset(token)
    if batch:
        TicketEvent.objects.bulk_create(batch)


def _event(
    ticket: Ticket,
    kind: str,
    *,
    actor: AbstractBaseUser | None = None,
    actor_kind: str | None = None,
    field: str = "",
    from_value: Any = "",
    to_value: Any = "",
    note: str = "",
) -> TicketEvent:
    event = TicketEvent(
        ticket=ticket,
        kind=kind,
        field=field,
        from_value="" if from_value is None else str(from_value)[:255],
        to_value="" if to_value is None else str(to_value)[:255],
        note=note,
        actor=actor,
        actor_kind=actor_kind or _actor_kind(actor),
    )
    batch = _event_batch.get()
    if batch is None:
        event.save(force_insert=True)
    else:
        batch.append(event)
    return event


def _locked(ticket: Ticket) -> Ticket:
    """Re-read the ticket under a row lock; every service decides on fresh state, never a stale copy.

    The customer comes along (unlocked) because the on-commit broadcast renders their name.
    """
    return Ticket.objects.select_for_update(of=("self",)).select_related("customer").get(pk=ticket.pk)


def _next_reference() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('tickets_ticket_reference_seq')")
        (number,) = cursor.fetchone()
    return f"SF-{number:06d}"


# --- SLA ------------------------------------------------------------------------------------------


def _sla_target(department: Department | None, priority: str) -> SLATarget | None:
    if department is None or department.sla_policy_id is None:
        return None
    return (
        SLATarget.objects.select_related("policy").filter(policy_id=department.sla_policy_id, priority=priority).first()
    )


def _apply_sla(ticket: Ticket) -> None:
    """Due times from the ticket's creation, its priority and queue, plus time credited while pending."""
    target = _sla_target(ticket.department, ticket.priority)
    if target is None:
        ticket.first_response_due_at = ticket.resolution_due_at = None
        return
    calendar = sla.BusinessCalendar.from_policy(target.policy)
    ticket.first_response_due_at = sla.add_minutes(ticket.created_at, target.first_response_minutes, calendar)
    ticket.resolution_due_at = sla.add_minutes(
        ticket.created_at, target.resolution_minutes + ticket.sla_paused_minutes, calendar
    )


def _sla_resume(ticket: Ticket, now: dt.datetime) -> None:
    """Leaving ``pending``: the time spent waiting on the customer does not count against resolution."""
    if ticket.sla_paused_at is None:
        return
    target = _sla_target(ticket.department, ticket.priority)
    calendar = sla.BusinessCalendar.from_policy(target.policy) if target else None
    ticket.sla_paused_minutes += round(sla.minutes_between(ticket.sla_paused_at, now, calendar))
    ticket.sla_paused_at = None
    _apply_sla(ticket)
