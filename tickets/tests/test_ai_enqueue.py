"""The AI enqueue from the chat's event loop (``tasks.ai_enqueue_async``): one LPUSH of the task message
Celery would publish, on the real broker Redis — the message is Celery's own to the byte but for its ids,
a real Celery worker runs it, and when the push cannot be made the thread path (Celery's producer) enqueues
the message instead: nothing is lost either way."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
import redis
from django.conf import settings

from supportflow.celery import app as celery_app
from tickets import tasks
from tickets.models import AIRun, Message
from tickets.tests.factories import make_ticket
from tickets.tests.test_consumers import customer_socket, receive_until, run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_channel_layer")]

PER_MESSAGE = {"id", "root_id", "correlation_id", "delivery_tag"}  # fresh for every message, by design


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_BROKER_URL)
    client.delete("ai")
    yield client
    client.delete("ai")
    client.close()


@pytest.fixture
def ai_on(settings):
    settings.FEATURE_AI_PIPELINE = True


def _without_ids(envelope: dict) -> dict:
    return {
        "body": base64.b64decode(envelope["body"]),
        **{key: envelope[key] for key in ("content-encoding", "content-type")},
        "headers": {k: v for k, v in envelope["headers"].items() if k not in PER_MESSAGE},
        "properties": {k: v for k, v in envelope["properties"].items() if k not in PER_MESSAGE},
    }


def _write_in_chat(chat, body: str, client_id: str) -> Message:
    """The customer sends ``body`` over the chat page's socket (the loop's hot path); the stored message."""
    ws = customer_socket(chat)

    async def scenario():
        assert (await ws.connect(timeout=5))[0]
        await ws.send_json_to({"type": "message", "body": body, "client_id": client_id})
        await receive_until(ws, f'data-client-id="{client_id}"')
        await ws.disconnect()

    run(scenario)
    return Message.objects.get(ticket=chat, client_msg_id=client_id)


def test_the_loop_pushes_the_message_celery_publishes(broker, ai_on):
    celery_app.tasks  # noqa: B018 - finalized, as in a worker: Celery's message then carries the task's time limits
    tasks.ai_enqueue(4242)  # Celery's own producer
    celerys = json.loads(broker.rpop("ai"))

    assert asyncio.run(tasks.ai_enqueue_async(4242)) is True
    ours = json.loads(broker.rpop("ai"))

    assert _without_ids(ours) == _without_ids(celerys)
    assert json.loads(base64.b64decode(ours["body"]))[0] == [4242]
    assert ours["headers"]["timelimit"] == [140, 120]  # process_message's own (tickets/ai/tasks.py)
    assert ours["headers"]["id"] == ours["headers"]["root_id"] == ours["properties"]["correlation_id"]
    assert ours["headers"]["id"] != celerys["headers"]["id"]
    assert ours["properties"]["delivery_tag"] != celerys["properties"]["delivery_tag"]


def test_the_pushed_message_carries_the_log_context_to_the_worker(broker, ai_on):
    from supportflow import logs

    with logs.bound(request_id="req-on-the-loop", ticket="SF-000042"):
        assert asyncio.run(tasks.ai_enqueue_async(7)) is True
    headers = json.loads(broker.rpop("ai"))["headers"]
    assert (headers["sf_request_id"], headers["sf_ticket"]) == ("req-on-the-loop", "SF-000042")


def test_nothing_is_pushed_with_the_ai_pipeline_off(broker, settings):
    settings.FEATURE_AI_PIPELINE = False
    assert asyncio.run(tasks.ai_enqueue_async(7)) is True
    assert broker.llen("ai") == 0


def test_a_broker_that_cannot_be_reached_is_reported_not_raised(broker, ai_on, settings):
    settings.REDIS_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    assert asyncio.run(tasks.ai_enqueue_async(7)) is False


def test_a_chat_message_is_run_by_a_real_worker_from_the_loops_push(department, ai_on, celery_worker):
    chat = make_ticket(department=department, body="Hello")
    message = _write_in_chat(chat, "My notes do not sync", "w-1")
    runs = AIRun.objects.filter(message=message)
    # the task's last run is the reply (an answer, or the draft handed over with the escalation); waiting
    # for "some run and none pending" could end between the triage's run and the reply's
    finished = runs.filter(kind=AIRun.Kind.REPLY).exclude(status="pending")
    deadline = time.monotonic() + 120  # the worker loads the models on its first task
    while time.monotonic() < deadline and not (finished.exists() and not runs.filter(status="pending").exists()):
        time.sleep(0.2)  # finished, so the worker stops idle (its shutdown waits 10 s at most)
    assert runs.exists(), "the worker never ran the pushed task"
    assert finished.exists()
    assert not runs.filter(status="pending").exists()


def test_when_the_loop_cannot_push_the_thread_enqueues_through_celery(department, ai_on, broker, monkeypatch):
    async def cannot(message_id):
        return False

    monkeypatch.setattr(tasks, "ai_enqueue_async", cannot)
    chat = make_ticket(department=department, body="Hello")
    broker.delete("ai")  # the opening message's own enqueue
    message = _write_in_chat(chat, "Still there?", "f-1")
    deadline = time.monotonic() + 10  # the fallback runs on the effects thread after the broadcast
    while time.monotonic() < deadline and not broker.llen("ai"):
        time.sleep(0.05)
    [pushed] = broker.lrange("ai", 0, -1)
    assert json.loads(base64.b64decode(json.loads(pushed)["body"]))[0] == [message.pk]
