"""A chat message's event (``message.created``) announced from the event loop (``events.apublish_committed``):
the metrics are counted and "does anyone subscribe to it" is answered there, with Redis round trips on the
loop and no thread; what needs the database — a webhook someone subscribes to, a subscriber without a loop
twin — still runs, on the effects thread, once. Real Redis, PostgreSQL, websockets."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import pytest
import redis

from supportflow import metrics
from supportflow.integrations import webhooks
from supportflow.models import WebhookDelivery
from supportflow.tests.test_metrics import metrics_store  # noqa: F401 - a fixture
from tickets import events
from tickets.services import conversations
from tickets.tests.factories import make_ticket
from tickets.tests.test_ai_enqueue import _write_in_chat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_channel_layer")]


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The effects thread pool, remembering what it was given."""

    def __init__(self):
        super().__init__(max_workers=1)
        self.calls = []

    def submit(self, fn, /, *args, **kwargs):
        self.calls.append(fn.__name__)
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def effects(monkeypatch):
    executor = CountingExecutor()
    monkeypatch.setattr(conversations, "_EFFECTS", executor)
    yield executor
    executor.shutdown(wait=True)


def customer_messages_counted() -> int:
    client = redis.Redis.from_url(metrics._store_url())
    try:
        return int(client.hget(metrics._key("messages"), metrics._field("customer")) or 0)
    finally:
        client.close()


def test_a_chat_message_is_counted_and_announced_on_the_loop_without_a_thread(
    department,
    metrics_store,  # noqa: F811
    effects,
):
    chat = make_ticket(department=department, body="Hello")
    webhooks._subscribed_events()  # what a running process knows already: nobody subscribes to anything
    before = customer_messages_counted()

    _write_in_chat(chat, "Is anyone there?", "e-1")

    assert customer_messages_counted() == before + 1
    assert effects.calls == []  # nothing needed the database, nothing went to a thread


def test_a_webhook_subscribed_to_messages_gets_a_chat_message_through_the_thread(department, settings, effects):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    chat = make_ticket(department=department, body="Hello")
    webhooks.webhook_subscription_create(name="CRM", url="http://127.0.0.1:9999/hook", events=["message.created"])
    webhooks._subscribed_events()

    message = _write_in_chat(chat, "A message for the CRM", "e-2")

    assert effects.calls == ["_customer_message_effects_in_thread"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not WebhookDelivery.objects.filter(event="message.created").exists():
        time.sleep(0.05)
    delivery = WebhookDelivery.objects.get(event="message.created")
    assert delivery.payload["data"]["message"]["body"] == "A message for the CRM"
    assert delivery.payload["data"]["message"]["seq"] == message.seq


def test_a_subscriber_without_a_loop_twin_still_runs_once(department, effects):
    chat = make_ticket(department=department, body="Hello")
    webhooks._subscribed_events()
    heard = []
    events.subscribe(listener := lambda kind, **payload: heard.append((kind, payload["message_id"])))
    try:
        message = _write_in_chat(chat, "Hello again", "e-3")
    finally:
        events._subscribers.remove(listener)
    assert heard == [(events.MESSAGE_CREATED, message.pk)]
    assert effects.calls == ["_customer_message_effects_in_thread"]


def test_a_failing_loop_twin_is_logged_and_the_others_still_run(caplog):
    ran = []

    def plain(kind, **payload):
        ran.append("plain")

    async def broken(kind, **payload):
        raise RuntimeError("twin failed")

    def twinned(kind, **payload):
        ran.append("twinned on a thread")

    events.subscribe(twinned, on_loop=broken)
    events.subscribe(plain)
    try:
        rest = asyncio.run(events.apublish_committed(events.MESSAGE_CREATED, ticket_id=1, message_id=1))
    finally:
        events._subscribers.remove(twinned)
        events._subscribers.remove(plain)
        events._on_loop.pop(twinned)
    assert twinned not in rest  # a failure is not run twice
    assert plain in rest
    assert "twin failed" in caplog.text


def test_the_generation_moving_sends_the_webhook_check_to_the_thread(department):
    from django.core.cache import cache

    webhooks._subscribed_events()
    message = make_ticket(department=department, body="Hi").messages.get()
    payload = {"ticket_id": message.ticket_id, "message_id": message.pk, "message": message}
    assert asyncio.run(webhooks.on_ticket_event_on_loop(events.MESSAGE_CREATED, **payload)) is True
    cache.set(webhooks.GENERATION_KEY, "bumped by another process", timeout=None)
    assert asyncio.run(webhooks.on_ticket_event_on_loop(events.MESSAGE_CREATED, **payload)) is False
