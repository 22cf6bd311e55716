"""The fault battery's cases that fit in CI time, on real parts: PostgreSQL refusing connections and
dropping them, a Redis server of the test's own stopped and started under a live websocket, an
OpenAI-compatible server answering 429s, 500s, slowly or not at all, two beat schedulers, and a
Celery worker stopped while messages arrive. ``bench/fault_bench.py`` runs the same faults against
real processes (uvicorn, worker, beat) and measures them.

Covered elsewhere: a worker killed (SIGKILL) mid-LLM-call and replaced sends one reply
(``tickets/tests/test_pipeline_worker.py``); the breaker's transitions (``test_llm.py``); a stopped
Redis makes ``/readyz`` a 503 (``test_health.py``).
"""

from __future__ import annotations

import time

import psycopg
import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.db import OperationalError, connection
from django.test import Client

from supportflow import beat, llm
from supportflow.api.keys import api_key_create
from supportflow.celery import app
from tickets import selectors, services
from tickets.ai import pipeline
from tickets.models import AIDraft, AIRun, Message
from tickets.tests.factories import CustomerFactory, make_agent, make_ticket
from tickets.tests.mailservers import free_port
from tickets.tests.test_pipeline import ai_messages, customer_writes, world  # noqa: F401 — a fixture

QUESTION = "My notes are stuck syncing on my Android phone, it says syncing forever"


def _wait(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def fresh_pool():
    connection.close()
    connection.close_pool()
    yield
    connection.close()
    connection.close_pool()


# --- PostgreSQL ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_database_refusing_connections_gives_a_clean_503_then_recovers(fresh_pool, department):
    # given a conversation, an API key, and a server that refuses connections
    ticket = make_ticket(department=department, body="Hello")
    token = selectors.ticket_customer_token(ticket=ticket)
    _, secret = api_key_create(name="faults", user=make_agent(department), scopes=["tickets:read"])
    browser = Client(raise_request_exception=False)
    requests = [
        ("get", "/help/", {}),
        ("get", f"/chat/c/{token}/messages/?after=0", {}),
        ("post", f"/chat/c/{token}/send/", {"data": {"body": "are you there?", "client_id": "c-1"}}),
        ("get", "/api/v1/tickets/", {"HTTP_AUTHORIZATION": f"Bearer {secret}"}),
    ]
    assert [getattr(browser, m)(url, **kw).status_code for m, url, kw in requests[:2]] == [200, 200]
    db = connection.settings_dict
    saved_port, saved_pool = db["PORT"], db["OPTIONS"]["pool"]
    connection.close()
    connection.close_pool()
    db["PORT"] = str(free_port())
    db["OPTIONS"]["pool"] = {**saved_pool, "timeout": 1.0}
    try:
        # when requests come in during the outage
        responses = [getattr(browser, m)(url, **kw) for m, url, kw in requests]
        ready = browser.get("/readyz")
    finally:
        connection.close()
        connection.close_pool()
        db["PORT"], db["OPTIONS"]["pool"] = saved_port, saved_pool

    # then every one is a short 503 with Retry-After, never a traceback
    assert [r.status_code for r in responses] == [503, 503, 503, 503]
    for response in responses:
        assert response["Retry-After"] == "5"
        assert b"Traceback" not in response.content
        assert len(response.content) < 300
    assert responses[3].json()["error"]["code"] == "service_unavailable"
    assert responses[0].content.decode().startswith("The service is briefly unavailable (database).")
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["database"]
    # the message sent during the outage was not stored; the page keeps it pending and re-sends it
    assert not Message.objects.filter(ticket=ticket, body="are you there?").exists()
    # and the same process serves again once the database is back
    assert browser.get(f"/chat/c/{token}/messages/?after=0").status_code == 200
    assert browser.get("/api/v1/tickets/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_chat_socket_during_a_database_outage_closes_with_try_again_later(fresh_pool, department):
    from tickets.consumers import db
    from tickets.tests.test_consumers import customer_socket, seqs

    ticket = make_ticket(department=department, body="Hello")
    settings_dict = connection.settings_dict
    saved_port, saved_pool = settings_dict["PORT"], settings_dict["OPTIONS"]["pool"]

    def outage(on: bool) -> None:
        connection.close()
        connection.close_pool()
        settings_dict["PORT"], settings_dict["OPTIONS"]["pool"] = (str(free_port()), {**saved_pool, "timeout": 1.0}) if on else (
            saved_port, saved_pool,
        )  # fmt: skip

    async def scenario():
        # given an open conversation
        ws = customer_socket(ticket)
        assert (await ws.connect(timeout=5))[0]
        # when the database goes away and the customer sends
        await sync_to_async(outage)(True)
        try:
            assert await db(_refused)()  # as the consumers' threads see it
            await ws.send_json_to({"type": "message", "body": "still there?", "client_id": "c-9"})
            closed = await ws.receive_output(timeout=15)
            again = await customer_socket(ticket).connect(timeout=15)
        finally:
            await sync_to_async(outage)(False)
        # then the socket closes with 1013 (the page reconnects), a new one is refused until it is back
        assert closed == {"type": "websocket.close", "code": 1013}
        assert again == (False, 1013)
        back = customer_socket(ticket)
        assert (await back.connect(timeout=5))[0]
        await back.send_json_to({"type": "message", "body": "still there?", "client_id": "c-9"})
        await back.send_json_to({"type": "resync", "after": 0})
        frames = await back.receive_from(timeout=5) + await back.receive_from(timeout=5)
        assert 2 in seqs(frames)
        await back.disconnect()

    async_to_sync(scenario)()
    assert list(Message.objects.filter(ticket=ticket).values_list("body", flat=True)) == ["Hello", "still there?"]


def _refused() -> bool:
    try:
        connection.ensure_connection()
    except OperationalError:
        return True
    return False


def test_a_database_error_outside_a_view_is_a_503_too_and_other_errors_stay_500(rf):
    """``handler500`` sees errors raised in middleware (a session saved on the way out, say)."""
    from supportflow import resilience

    try:
        raise OperationalError("connection refused")
    except OperationalError:
        page, api = resilience.server_error(rf.get("/help/")), resilience.server_error(rf.get("/api/v1/tickets/"))
    try:
        raise ValueError("a bug")
    except ValueError:
        bug = resilience.server_error(rf.get("/help/"))
    assert (page.status_code, page["Retry-After"], page["Content-Type"]) == (503, "5", "text/plain; charset=utf-8")
    assert api.status_code == 503
    assert api["Content-Type"] == "application/json"
    assert bug.status_code == 500


@pytest.mark.django_db(transaction=True)
def test_pooled_connections_killed_by_a_restart_are_replaced_without_a_failed_request(fresh_pool, department):
    # given a warm pool
    ticket = make_ticket(department=department, body="Hello")
    url = f"/chat/c/{selectors.ticket_customer_token(ticket=ticket)}/messages/?after=0"
    browser = Client(raise_request_exception=False)
    assert _served(browser, url) == 200
    # when the server drops every connection of this database, as a restart does
    db = connection.settings_dict
    admin = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [db["NAME"]],
        ).fetchone()[0]
    assert killed >= 1
    # then the next requests are served: the pool checks a connection before handing it out
    assert [_served(browser, url) for _ in range(3)] == [200, 200, 200]


def _served(browser: Client, url: str) -> int:
    """A request as a server runs it: its connection comes from the pool and goes back at the end (the
    test client skips that, keeping one connection for the whole test)."""
    connection.close()
    try:
        return browser.get(url).status_code
    finally:
        connection.close()


# --- Redis under live chats ------------------------------------------------------------------------


@pytest.fixture
def layer_on(throwaway_redis, settings):
    from channels.layers import channel_layers

    layers = {"default": {**settings.CHANNEL_LAYERS["default"]}}
    layers["default"]["CONFIG"] = {
        "hosts": [{**settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0], "address": throwaway_redis.url}]
    }
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends.clear()
    yield throwaway_redis
    channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True)
def test_a_redis_restart_makes_live_sockets_reconnect_and_catch_up(fresh_pool, layer_on, department):
    from tickets.tests.test_consumers import customer_socket, receive_until, seqs

    ticket = make_ticket(department=department, body="My sync is stuck")
    agent = make_agent(department)

    async def scenario():
        # given a customer with the conversation open
        ws = customer_socket(ticket)
        assert (await ws.connect(timeout=5))[0]
        await ws.send_json_to({"type": "resync", "after": 0})
        last = max(seqs(await ws.receive_from(timeout=5)))
        # when Redis restarts and the agent replies while it is down
        await sync_to_async(layer_on.stop)()
        reply = await sync_to_async(services.message_create)(
            ticket=ticket, author_kind="agent", author_user=agent, body="Reply while Redis was down"
        )
        await sync_to_async(layer_on.start)()
        # then the server asks the page to reconnect (1012), and the resync brings the reply, once
        closed = None
        for _ in range(50):
            output = await ws.receive_output(timeout=30)
            if output["type"] == "websocket.close":
                closed = output
                break
        assert closed == {"type": "websocket.close", "code": 1012}
        again = customer_socket(ticket)
        assert (await again.connect(timeout=5))[0]
        await again.send_json_to({"type": "resync", "after": last})
        frame = await again.receive_from(timeout=5)
        assert seqs(frame) == [reply.seq]
        assert frame.count("Reply while Redis was down") == 1
        # and live delivery works again
        await sync_to_async(services.message_create)(
            ticket=ticket, author_kind="agent", author_user=agent, body="And after it came back"
        )
        assert "And after it came back" in await receive_until(again, "And after it came back")
        await again.disconnect()

    async_to_sync(scenario)()


# --- the LLM endpoint failing ------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["429", "500", "slow", "down"])
def test_a_failing_llm_opens_the_breaker_and_every_message_gets_one_local_reply(world, fake_openai, settings, fault):  # noqa: F811
    # given an endpoint that fails in one way, a breaker that opens after 2 failures
    settings.LLM_BREAKER_FAILURES = 2
    settings.LLM_MAX_ATTEMPTS = 2
    settings.LLM_TIMEOUT_S = 0.5
    for _ in range(50):
        if fault == "429":
            fake_openai.enqueue(status=429, headers={"Retry-After": "0"})
        elif fault == "500":
            fake_openai.enqueue(status=500)
        elif fault == "slow":
            fake_openai.enqueue(content="{}", delay=3)
    if fault == "down":
        settings.OPENAI_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"
        llm.reset_client()

    # when three customers write
    messages = [customer_writes(QUESTION) for _ in range(3)]
    outcomes = [pipeline.process_message(message_id=m.pk) for m in messages]
    again = [pipeline.process_message(message_id=m.pk) for m in messages]  # a redelivered task

    # then each gets exactly one reply, from the local provider
    assert outcomes == ["sent"] * 3
    assert again == ["done"] * 3
    for message in messages:
        [reply] = ai_messages(message.ticket)
        assert "Reset local cache" in reply.body
        assert AIDraft.objects.get(in_reply_to=message).provider == "local"
    # the breaker opened on the first message, so the endpoint saw at most failures x attempts calls
    assert llm.breaker.status()["state"] == "open"
    assert fake_openai.request_count <= settings.LLM_BREAKER_FAILURES * settings.LLM_MAX_ATTEMPTS
    remote = AIRun.objects.filter(provider="openai")
    assert set(remote.values_list("status", flat=True)) == {"failed"}
    assert "breaker_open" in set(remote.values_list("error", flat=True))
    assert sum(run.cost for run in remote) == 0


# --- two beats ---------------------------------------------------------------------------------------


@pytest.fixture
def lease_redis():
    client = redis.Redis.from_url(django_settings.REDIS_LOCKS_URL)
    client.delete(beat.LEASE_KEY)
    yield client
    client.delete(beat.LEASE_KEY)
    client.close()


def test_the_beat_lease_has_one_holder_and_passes_on_when_released(lease_redis):
    assert beat.lease_hold(lease_redis, "a") is True
    assert beat.lease_hold(lease_redis, "b") is False
    assert beat.lease_hold(lease_redis, "a") is True  # renewed
    beat.lease_release(lease_redis, "b")  # not b's to release
    assert beat.lease_hold(lease_redis, "b") is False
    beat.lease_release(lease_redis, "a")
    assert beat.lease_hold(lease_redis, "b") is True
    assert beat.lease_hold(lease_redis, "a", lease_s=0.2) is False


@pytest.mark.django_db(transaction=True)
def test_two_beat_schedulers_send_each_periodic_task_once(lease_redis, monkeypatch):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="fault test sweep", task="tickets.tasks.sla_sweep", interval=every_second)
    sent: list[tuple[str, str]] = []

    class Sent:
        id = "test"

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        sent.append((self._holder, entry.name))
        return Sent()

    monkeypatch.setattr(beat.SingleBeatScheduler, "apply_async", apply_async)
    first, second = beat.SingleBeatScheduler(app=app), beat.SingleBeatScheduler(app=app)
    try:
        # when both tick for a few seconds
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            first.tick()
            second.tick()
            time.sleep(0.1)
        ours = [holder for holder, name in sent if name == "fault test sweep"]
        # then only the lease holder sent, about once a second (never once per scheduler)
        assert set(ours) == {first._holder}
        assert 2 <= len(ours) <= 4
        # and when the holder stops, the other takes over
        first.close()
        sent.clear()
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            second.tick()
            time.sleep(0.1)
        assert {holder for holder, name in sent if name == "fault test sweep"} == {second._holder}
    finally:
        first.close()
        second.close()


# --- the worker stopped while messages arrive --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_messages_stored_while_no_worker_runs_are_answered_once_after_it_starts(fresh_pool, settings):
    from knowledge import services as kb_services
    from tickets.ai.tasks import process_message
    from tickets.tests.test_pipeline import ARTICLES

    for title, slug, body in ARTICLES:
        kb_services.article_save(title=title, slug=slug, status="published", reindex="now", body=body)
    app.loader.import_default_modules()
    app.control.purge()
    settings.FEATURE_AI_PIPELINE = True

    def ask() -> Message:
        ticket = services.ticket_create(customer=CustomerFactory(), subject="Sync", body=QUESTION)
        return ticket.messages.get(seq=1)

    # given a worker that answers, then is stopped (warm shutdown)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        first = ask()
        _wait(lambda: AIDraft.objects.filter(in_reply_to=first).exists(), timeout=120, what="the first reply")
    # when messages arrive while no worker runs (one of them enqueued twice, like a redelivery)
    waiting = [ask() for _ in range(3)]
    process_message.delay(waiting[0].pk)
    assert not AIDraft.objects.filter(in_reply_to__in=waiting).exists()
    # then a restarted worker answers each of them exactly once
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        _wait(lambda: AIDraft.objects.filter(in_reply_to__in=waiting).count() == 3, timeout=180, what="the replies")
        time.sleep(1)  # the duplicate task, if it came second, finishes as a no-op
    for message in [first, *waiting]:
        assert Message.objects.filter(ticket=message.ticket, author_kind="ai").count() == 1
    app.control.purge()
