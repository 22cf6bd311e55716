"""The stalled-message sweep re-enqueues what a dead worker dropped, but not what is merely waiting in a
backed-up ``ai`` queue (bench/load_run.py saw it re-queue, and after three sweeps hand to a person,
messages that were still queued). Real Redis broker, no worker: tasks stay where they were sent."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from supportflow.celery import app
from tickets.ai import runs
from tickets.ai import tasks as ai_tasks
from tickets.models import Message
from tickets.tests.factories import make_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def empty_ai_queue():
    with app.connection_for_write() as conn:
        conn.default_channel.queue_declare(queue="ai", durable=True, auto_delete=False)
        conn.default_channel.queue_purge("ai")
    yield
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("ai")


def stalled_message() -> Message:
    ticket = make_ticket(body="Where is my refund?")
    message = ticket.messages.get(seq=1)
    Message.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - runs.STALLED_AFTER - dt.timedelta(minutes=1)
    )
    return message


def test_the_sweep_waits_while_the_ai_queue_has_work_then_requeues(empty_ai_queue, settings):
    message = stalled_message()
    ai_tasks.process_message.apply_async(args=[message.pk])  # routed to "ai"; no worker takes it
    assert ai_tasks.ai_queue_waiting() == 1

    assert ai_tasks.recover_stalled() == 0  # behind, not stalled

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("ai")  # the queued copy is gone: now it is stalled
    assert ai_tasks.ai_queue_waiting() == 0
    assert ai_tasks.recover_stalled() == 1
    assert ai_tasks.ai_queue_waiting() == 1  # enqueued again
