"""Ticket events for subscribers outside the tickets app: webhooks, Slack/Discord, metrics.

What the tickets app itself does after a change (the live broadcast, the AI enqueue, an email reply)
is not here: the service that decides it schedules it with ``transaction.on_commit`` in plain sight.
This module only announces committed changes to the rest of the system, under the named kinds below,
so a subscriber never has to know which service made the change.

``publish`` runs each subscriber on commit, so a rolled-back change announces nothing. Subscribers
are registered once, at start-up, by the app that owns them (``supportflow.apps``); each must not raise
(a failing subscriber is logged and the others still run).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

TICKET_CREATED = "ticket.created"
TICKET_UPDATED = "ticket.updated"
TICKET_ASSIGNED = "ticket.assigned"
TICKET_ESCALATED = "ticket.escalated"
TICKET_STATUS_CHANGED = "ticket.status_changed"
TICKET_RATED = "ticket.rated"
TICKET_SLA_BREACHED = "ticket.sla_breached"
MESSAGE_CREATED = "message.created"
AI_DRAFTED = "ai.drafted"
AI_RUN_FINISHED = "ai_run.finished"
AI_ANSWER_RATED = "ai.answer_rated"

KINDS = frozenset(
    {
        TICKET_CREATED,
        TICKET_UPDATED,
        TICKET_ASSIGNED,
        TICKET_ESCALATED,
        TICKET_STATUS_CHANGED,
        TICKET_RATED,
        TICKET_SLA_BREACHED,
        MESSAGE_CREATED,
        AI_DRAFTED,
        AI_RUN_FINISHED,
        AI_ANSWER_RATED,
    }
)

Subscriber = Callable[..., None]
# ``async (kind, **payload) -> bool``: the subscriber's work for the event loop, True when it did it all
LoopSubscriber = Callable[..., Awaitable[bool]]
_subscribers: list[Subscriber] = []
_on_loop: dict[Subscriber, LoopSubscriber] = {}


def subscribe(subscriber: Subscriber, *, on_loop: LoopSubscriber | None = None) -> None:
    """Call ``subscriber(kind, **payload)`` after every committed event. Idempotent. ``on_loop``: its
    twin for an event announced from the event loop (``apublish_committed``) — no database, only async
    I/O — which returns False for what it leaves to ``subscriber`` (on a thread)."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)
    if on_loop is not None:
        _on_loop[subscriber] = on_loop


def publish(kind: str, **payload: Any) -> None:
    """Announce ``kind`` to every subscriber once the current transaction commits."""
    if kind not in KINDS:
        raise ValueError(f"unknown ticket event {kind!r}")
    for subscriber in list(_subscribers):
        transaction.on_commit(lambda subscriber=subscriber: _deliver(subscriber, kind, payload))


def publish_committed(kind: str, **payload: Any) -> None:
    """``publish`` for a change already committed outside any transaction of this thread (the chat's
    hot path stores on the event loop): the subscribers run now, and nothing opens a connection to ask
    whether a transaction is active."""
    if kind not in KINDS:
        raise ValueError(f"unknown ticket event {kind!r}")
    for subscriber in list(_subscribers):
        _deliver(subscriber, kind, payload)


async def apublish_committed(kind: str, **payload: Any) -> list[Subscriber]:
    """``publish_committed`` from the event loop (the chat's hot path): each subscriber's ``on_loop`` twin
    runs here; returned are the subscribers still to run, on a thread (``deliver``) — those without a
    twin, and those whose twin left the event to them (a webhook someone subscribes to needs the
    database). A failing twin is logged and its subscriber is not run again: the same rule as ``_deliver``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown ticket event {kind!r}")
    rest = []
    for subscriber in list(_subscribers):
        twin = _on_loop.get(subscriber)
        if twin is None:
            rest.append(subscriber)
            continue
        try:
            if not await twin(kind, **payload):
                rest.append(subscriber)
        except Exception:
            logger.exception("event subscriber %s failed on %s", getattr(twin, "__qualname__", twin), kind)
    return rest


def deliver(subscribers: list[Subscriber], kind: str, **payload: Any) -> None:
    """Run ``subscribers`` (what ``apublish_committed`` returned) now, each guarded like ``publish``'s."""
    for subscriber in subscribers:
        _deliver(subscriber, kind, payload)


def _deliver(subscriber: Subscriber, kind: str, payload: dict) -> None:
    try:
        subscriber(kind, **payload)
    except Exception:
        logger.exception("event subscriber %s failed on %s", getattr(subscriber, "__qualname__", subscriber), kind)
