"""The chat websockets through the full ASGI stack (origin check, session auth, routing) and the real
Redis channel layer; consumers reach the real database from their own threads."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import redis
import redis.asyncio
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import translation

from supportflow.asgi import application
from tickets import realtime, selectors, services
from tickets.consumers import db  # returns each thread's connection to the pool, like the consumers
from tickets.models import Message
from tickets.tests.factories import DepartmentFactory, UserFactory, make_agent, make_ticket

ORIGIN = (b"origin", b"http://localhost")  # asgi.py captured ALLOWED_HOSTS before "testserver" was added
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_channel_layer")]


def seqs(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'data-seq="(\d+)"', html)]


def customer_socket(ticket, *, origin=ORIGIN, token: str | None = None, client=("10.0.0.1", 5000)):
    token = token if token is not None else selectors.ticket_customer_token(ticket=ticket)
    communicator = WebsocketCommunicator(application, f"/ws/chat/{token}/", headers=[origin] if origin else [])
    communicator.scope["client"] = client
    return communicator


def agent_socket(user, ticket, *, language: str = ""):
    """Build in sync code (it logs the user in), then connect inside the scenario. ``language``: the
    browser's (Accept-Language), which the console's socket speaks as its pages do."""
    browser = Client()
    browser.force_login(user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()
    headers = [ORIGIN, (b"cookie", cookie)] + ([(b"accept-language", language.encode())] if language else [])
    return WebsocketCommunicator(application, f"/ws/agent/tickets/{ticket.pk}/", headers=headers)


def channel_layer():
    from channels.layers import get_channel_layer

    return get_channel_layer()


async def subscribers(group: str) -> int:
    """Sockets joined to a group, as Redis sees them (PUBSUB NUMSUB on the layer's group channel)."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    name = f"{layer._get_layer().prefix}__group__{group}"
    client = redis.asyncio.Redis.from_url(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"])
    try:
        return dict(await client.pubsub_numsub(name)).get(name.encode(), 0)
    finally:
        await client.aclose()


async def receive_until(communicator, pattern: str, *, frames: int = 10) -> str:
    for _ in range(frames):
        frame = await communicator.receive_from(timeout=3)
        if re.search(pattern, frame):
            return frame
    raise AssertionError(f"no frame matching {pattern!r}")


def run(coro_fn):
    return async_to_sync(coro_fn)()


@pytest.fixture
def chat(department):
    return make_ticket(department=department, body="My sync is stuck")


# --- joining and refusing --------------------------------------------------------------------------


def test_customer_joins_with_the_token_and_resyncs_from_zero(chat):
    async def scenario():
        ws = customer_socket(chat)
        connected, _ = await ws.connect(timeout=5)
        assert connected
        assert await subscribers(realtime.ticket_group(chat.pk)) == 1
        await ws.send_json_to({"type": "resync", "after": 0})
        frame = await ws.receive_from(timeout=3)
        assert seqs(frame) == [1]
        assert "My sync is stuck" in frame
        assert 'id="chat-status"' in frame
        await ws.disconnect()

    run(scenario)


@pytest.mark.parametrize(
    "token",
    ["", "not-a-token", "InRhbXBlcmVkIg:1vQ2x3:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
)
def test_a_bad_token_is_refused_and_nothing_is_joined(chat, token):
    async def scenario():
        ws = customer_socket(chat, token=token or "x")
        connected, code = await ws.connect(timeout=5)
        assert (connected, code) == (False, 4403)
        assert await subscribers(realtime.ticket_group(chat.pk)) == 0

    run(scenario)


def test_a_foreign_origin_is_refused(chat):
    async def scenario():
        ws = customer_socket(chat, origin=(b"origin", b"http://evil.example"))
        connected, _ = await ws.connect(timeout=5)
        assert connected is False
        assert await subscribers(realtime.ticket_group(chat.pk)) == 0

    run(scenario)


def test_another_customers_token_opens_only_that_conversation(chat, department):
    other = make_ticket(department=department, body="Someone else's secret")

    async def scenario():
        ws = customer_socket(other)
        assert (await ws.connect(timeout=5))[0]
        await ws.send_json_to({"type": "resync", "after": 0})
        frame = await ws.receive_from(timeout=3)
        assert "Someone else's secret" in frame
        assert "My sync is stuck" not in frame
        await ws.disconnect()

    run(scenario)


def test_a_revoked_link_is_refused(chat):
    token = selectors.ticket_customer_token(ticket=chat)
    type(chat).objects.filter(pk=chat.pk).update(access_key="rotated-key")

    async def scenario():
        ws = customer_socket(chat, token=token)
        assert (await ws.connect(timeout=5)) == (False, 4403)

    run(scenario)


@pytest.mark.parametrize("who", ["anonymous", "customer-user", "agent-of-another-queue"])
def test_agent_socket_refuses_users_without_access(chat, who):
    user = {
        "anonymous": lambda: None,
        "customer-user": lambda: UserFactory(is_staff=False),
        "agent-of-another-queue": lambda: make_agent(DepartmentFactory()),
    }[who]()
    if user is None:
        ws = WebsocketCommunicator(application, f"/ws/agent/tickets/{chat.pk}/", headers=[ORIGIN])
    else:
        ws = agent_socket(user, chat)

    async def scenario():
        assert (await ws.connect(timeout=5)) == (False, 4403)
        assert await subscribers(realtime.ticket_group(chat.pk)) == 0

    run(scenario)


# --- sending ---------------------------------------------------------------------------------------


def test_customer_message_is_stored_then_broadcast_to_both_sides(chat, agent):
    customer, console = customer_socket(chat), agent_socket(agent, chat)

    async def scenario():
        assert (await customer.connect(timeout=5))[0]
        assert (await console.connect(timeout=5))[0]
        await customer.receive_from(timeout=3)  # "<agent> joined the conversation"
        await customer.send_json_to({"type": "message", "body": "Still **stuck**", "client_id": "c-1"})

        to_agent = await receive_until(console, r'data-client-id="c-1"')
        to_customer = await receive_until(customer, r'data-client-id="c-1"')
        assert seqs(to_agent) == seqs(to_customer) == [2]
        assert "<strong>stuck</strong>" in to_agent
        assert ">You<" in to_customer
        await customer.disconnect()
        await console.disconnect()

    run(scenario)
    stored = Message.objects.get(ticket=chat, seq=2)
    assert (stored.author_kind, stored.body, stored.client_msg_id) == ("customer", "Still **stuck**", "c-1")


def test_a_resend_with_the_same_client_id_is_stored_once_and_confirmed(chat):
    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        for _ in range(2):
            await ws.send_json_to({"type": "message", "body": "hello", "client_id": "same-id"})
            frame = await receive_until(ws, r'data-client-id="same-id"')
            assert seqs(frame) == [2]
        await ws.disconnect()

    run(scenario)
    assert Message.objects.filter(ticket=chat).count() == 2


def test_internal_notes_reach_agents_but_never_the_customer(chat, agent):
    customer, console = customer_socket(chat), agent_socket(agent, chat)

    async def scenario():
        assert (await customer.connect(timeout=5))[0]
        assert (await console.connect(timeout=5))[0]
        await customer.receive_from(timeout=3)  # presence
        await db(services.message_create)(
            ticket=chat, author_kind="agent", author_user=agent, body="secret note", is_internal=True
        )
        frame = await receive_until(console, "secret note")
        assert "Internal note" in frame
        assert await customer.receive_nothing(timeout=0.5)
        await customer.disconnect()
        await console.disconnect()

    run(scenario)


def test_a_customer_message_is_one_layer_message_for_every_audience(chat, agent, monkeypatch):
    """The customer, agents in English and in German: one ``group_send`` carries the three fragments (each
    costs channels_redis four Redis round trips), and each socket sends only its own."""
    german = make_agent(chat.department, username="greta")
    customer, console = customer_socket(chat), agent_socket(agent, chat)
    console_de = agent_socket(german, chat, language="de")
    sent = []

    async def scenario():
        for ws in (customer, console, console_de):
            assert (await ws.connect(timeout=5))[0]
        await customer.receive_from(timeout=3)  # presence
        await customer.receive_from(timeout=3)
        layer = channel_layer()
        group_send = layer.group_send

        async def counted(group, event):
            sent.append((group, [audience for audience, _ in event.get("parts", ())]))
            await group_send(group, event)

        monkeypatch.setattr(layer, "group_send", counted)
        await customer.send_json_to({"type": "message", "body": "Hello there", "client_id": "c1"})
        mine = await receive_until(customer, "Hello there")
        english = await receive_until(console, "Hello there")
        german_frame = await receive_until(console_de, "Hello there")
        assert "You" in mine
        assert "You" not in english
        assert english != german_frame  # each console language its own rendering
        for ws in (customer, console, console_de):
            assert await ws.receive_nothing(timeout=0.3)  # one fragment each, not the others'
            await ws.disconnect()

    run(scenario)
    message, *after = sent
    assert message == (realtime.ticket_group(chat.pk), ["agent.en", "agent.de", "customer"])
    assert after == [(realtime.ticket_group(chat.pk), ["customer"])] * 2  # the two consoles' "… left"


def test_agent_reply_reaches_the_customer_live_with_the_agent_first_name(chat, department):
    agent = make_agent(department)
    type(agent).objects.filter(pk=agent.pk).update(first_name="Alice")
    agent.refresh_from_db()

    customer = customer_socket(chat)

    async def scenario():
        assert (await customer.connect(timeout=5))[0]
        await db(services.message_create)(
            ticket=chat, author_kind="agent", author_user=agent, body="Try restarting sync"
        )
        frame = await receive_until(customer, "Try restarting sync")
        assert ">Alice<" in frame
        assert agent.username not in frame
        await customer.disconnect()

    run(scenario)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"type": "message", "body": "", "client_id": "e1"}, "cannot be empty"),
        ({"type": "message", "body": "x" * 10_001, "client_id": "e1"}, "at most 10,000"),
        ({"type": "message", "body": "hi", "client_id": "bad id!"}, "message id"),
        ({"type": "message", "body": ["not", "text"], "client_id": "e1"}, "must be text"),
        ({"type": "delete_everything"}, "Unknown request"),
    ],
)
def test_bad_messages_get_a_clear_error_and_nothing_is_stored(chat, payload, error):
    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        await ws.send_json_to(payload)
        frame = await ws.receive_from(timeout=3)
        assert 'id="chat-error"' in frame
        assert error in frame
        await ws.disconnect()

    run(scenario)
    assert Message.objects.filter(ticket=chat).count() == 1


def test_garbage_frames_get_an_error(chat):
    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        await ws.send_to(text_data="{not json")
        assert "could not be read" in await ws.receive_from(timeout=3)
        await ws.send_to(text_data="x" * 70_000)
        assert "too large" in await ws.receive_from(timeout=3)
        await ws.disconnect()

    run(scenario)


def test_rate_limit_per_conversation_refuses_with_the_wait_and_stores_nothing_more(chat, settings):
    settings.CHAT_RATE_PER_CONVERSATION = "2/60"

    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        for n in range(2):
            await ws.send_json_to({"type": "message", "body": f"m{n}", "client_id": f"r{n}"})
            await receive_until(ws, f'data-client-id="r{n}"')
        await ws.send_json_to({"type": "message", "body": "one too many", "client_id": "r2"})
        frame = await ws.receive_from(timeout=3)
        assert 'data-client-id="r2"' in frame
        assert "Too many messages from this conversation" in frame
        assert "still in the box" in frame
        await ws.disconnect()

    run(scenario)
    assert list(Message.objects.filter(ticket=chat).values_list("body", flat=True)) == ["My sync is stuck", "m0", "m1"]


def test_rate_limit_per_address_spans_conversations(department, settings):
    settings.CHAT_RATE_PER_IP = "3/60"
    tickets = [make_ticket(department=department) for _ in range(2)]

    async def scenario():
        sockets = [customer_socket(t, client=("203.0.113.7", 1)) for t in tickets]
        for ws in sockets:
            assert (await ws.connect(timeout=5))[0]
        for n in range(3):
            ws = sockets[n % 2]
            await ws.send_json_to({"type": "message", "body": "x", "client_id": f"ip{n}"})
            await receive_until(ws, f'data-client-id="ip{n}"')
        await sockets[1].send_json_to({"type": "message", "body": "x", "client_id": "ip3"})
        assert "your network" in await sockets[1].receive_from(timeout=3)
        for ws in sockets:
            await ws.disconnect()

    run(scenario)
    assert Message.objects.filter(ticket__in=tickets).count() == 2 + 3


# --- reconnect, presence, typing, the AI hook -----------------------------------------------------


def test_reconnect_catches_up_from_the_last_sequence_exactly_once(chat, agent):
    for n in range(5):
        services.message_create(ticket=chat, author_kind="agent", author_user=agent, body=f"while away {n}")
    services.message_create(ticket=chat, author_kind="agent", author_user=agent, body="hidden", is_internal=True)

    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        await ws.send_json_to({"type": "resync", "after": 2})
        frame = await ws.receive_from(timeout=3)
        assert seqs(frame) == [3, 4, 5, 6]
        assert "hidden" not in frame
        await ws.disconnect()

    run(scenario)


def test_resync_pages_through_long_histories(chat, agent):
    for n in range(230):
        services.message_create(ticket=chat, author_kind="agent", author_user=agent, body=f"m{n}")

    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        await ws.send_json_to({"type": "resync", "after": 0})
        got = seqs(await ws.receive_from(timeout=5)) + seqs(await ws.receive_from(timeout=5))
        assert got == list(range(1, 232))
        await ws.disconnect()

    run(scenario)


def test_agent_presence_and_typing_both_ways(chat, department):
    agent = make_agent(department)
    type(agent).objects.filter(pk=agent.pk).update(first_name="Bob")
    agent.refresh_from_db()

    customer, console = customer_socket(chat), agent_socket(agent, chat)

    async def scenario():
        assert (await customer.connect(timeout=5))[0]
        assert (await console.connect(timeout=5))[0]
        assert "Bob joined the conversation" in await customer.receive_from(timeout=3)

        await customer.send_json_to({"type": "typing"})
        assert "is typing" in await console.receive_from(timeout=3)
        assert await customer.receive_nothing(timeout=0.3)

        await console.send_json_to({"type": "typing"})
        assert "Bob is typing" in await customer.receive_from(timeout=3)

        await console.disconnect()
        assert "Bob left" in await customer.receive_from(timeout=3)
        await customer.disconnect()

    run(scenario)


def test_the_ai_hook_pushes_status_and_reply_from_sync_worker_code(chat):
    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]

        def worker_side():  # what a Celery task does: plain sync code, no event loop
            realtime.ai_status(chat.pk, working=True)
            services.message_create(ticket=chat, author_kind="ai", body="Try **Settings → Sync**", ai_confidence=0.9)
            realtime.ai_status(chat.pk, working=False)

        await db(worker_side)()
        frames = [await ws.receive_from(timeout=3) for _ in range(3)]
        assert "preparing an answer" in frames[0]
        assert seqs(frames[1]) == [2]
        assert ">Assistant<" in frames[1]
        assert 'id="ai-status"' in frames[2]
        await ws.disconnect()

    run(scenario)


def test_a_worker_process_sends_from_one_long_lived_event_loop_in_order(chat, monkeypatch):
    # given a Celery worker process (worker_process_init turned its own event loop on)
    monkeypatch.setattr(realtime, "_own_loop_wanted", True)
    monkeypatch.setattr(realtime, "_own_loop", None)

    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        loops = []

        def worker_side():
            realtime.ai_status(chat.pk, working=True)
            loops.append(realtime._own_loop)
            services.message_create(ticket=chat, author_kind="ai", body="Try **Settings → Sync**", ai_confidence=0.9)
            realtime.ai_status(chat.pk, working=False)
            loops.append(realtime._own_loop)

        # when it sends three updates from plain sync code
        await db(worker_side)()

        # then they arrive in order, all sent from the same loop (not a new one per send)
        frames = [await ws.receive_from(timeout=3) for _ in range(3)]
        assert "preparing an answer" in frames[0]
        assert seqs(frames[1]) == [2]
        assert 'id="ai-status"' in frames[2]
        assert "preparing an answer" not in frames[2]
        assert loops[0] is not None
        assert loops[0] is loops[1]
        await ws.disconnect()

    run(scenario)


def test_resolving_pushes_the_rating_form_and_closed_disables(chat, agent):
    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        await db(services.ticket_resolve)(ticket=chat, actor=agent)
        frame = await receive_until(ws, 'id="chat-status"')
        assert 'data-status="resolved"' in frame
        assert "How did we do?" in frame
        await ws.disconnect()

    run(scenario)


def test_messages_are_json_requests_only(chat):
    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        await ws.send_to(text_data=json.dumps(["message"]))
        assert "could not be read" in await ws.receive_from(timeout=3)
        await ws.disconnect()

    run(scenario)


# --- the hot path: on the event loop, one render per audience, any number of processes -------------


def test_a_message_is_rendered_once_per_audience_and_language_whatever_the_number_of_sockets(chat, agent, monkeypatch):
    renders = []
    real_render = realtime.render_messages

    def counting(messages, **kwargs):
        renders.append((kwargs["viewer"], kwargs.get("language") or translation.get_language()))
        return real_render(messages, **kwargs)

    monkeypatch.setattr(realtime, "render_messages", counting)
    customers = [customer_socket(chat, client=("10.0.0.1", 5000 + n)) for n in range(3)]
    consoles = [agent_socket(agent, chat) for _ in range(2)]

    async def scenario():
        for ws in customers + consoles:
            assert (await ws.connect(timeout=5))[0]
        await customers[0].send_json_to({"type": "message", "body": "one render each", "client_id": "once"})
        for ws in customers + consoles:
            await receive_until(ws, r'data-client-id="once"')
        for ws in customers + consoles:
            await ws.disconnect()

    run(scenario)
    # the agents' fragment once per console language (whichever sockets are open), the customer's once
    assert sorted(renders) == [("agent", "de"), ("agent", "en"), ("customer", "en")]


def _another_process_layer():
    """A second channel layer object with the same settings: what another web process (uvicorn
    ``--workers``) holds. It shares nothing with this process's layer but Redis."""
    from django.utils.module_loading import import_string

    config = settings.CHANNEL_LAYERS["default"]
    return import_string(config["BACKEND"])(**config["CONFIG"])


def test_a_broadcast_from_another_process_reaches_this_process_sockets(chat):
    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        other = _another_process_layer()
        try:
            [(group, event)] = realtime.fanout([(realtime.customer_audience(chat.pk), "from-elsewhere")])
            await other.group_send(group, event)
            assert await ws.receive_from(timeout=3) == "from-elsewhere"
        finally:
            await other.flush()  # closes its connections; pub/sub keeps nothing in Redis
        await ws.disconnect()

    run(scenario)


def test_rate_limits_are_shared_by_every_process(chat, settings):
    """The counters live in Redis: what another process counts — here the HTTP path's own client, as
    a chat page's POST fallback in a second web process — counts against the socket's limit too, so N
    processes do not allow N times the limit."""
    from supportflow import ratelimit
    from tickets import limits

    settings.CHAT_RATE_PER_CONVERSATION = "2/60"

    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        await ws.send_json_to({"type": "message", "body": "p0", "client_id": "p0"})
        await receive_until(ws, 'data-client-id="p0"')
        verdict, _ = await db(ratelimit.hit_all)(limits.send_limits(conversation=chat.pk, ip="10.9.9.9"))
        assert verdict.allowed  # the second of two
        await ws.send_json_to({"type": "message", "body": "third", "client_id": "p2"})
        assert "Too many messages from this conversation" in await ws.receive_from(timeout=3)
        await ws.disconnect()

    run(scenario)
    assert Message.objects.filter(ticket=chat).count() == 2


def test_a_message_on_an_open_conversation_is_stored_and_broadcast_from_the_loop_then_enqueued(
    chat, agent, monkeypatch
):
    """No worker thread between the customer's frame and the broadcast (``_store_customer_message`` is
    the general path's) and no blocking hop back to a loop (``async_to_sync``); the AI enqueue (pushed from
    the loop, ``test_ai_enqueue.py``) and the event subscribers still run, after it, once."""
    from tickets import consumers, events, tasks

    def general_path(*args, **kwargs):
        raise AssertionError("an open conversation's message went to a worker thread to be stored")

    def no_hop(*args, **kwargs):
        raise AssertionError("async_to_sync used on the chat's hot path")

    enqueued, announced = [], []
    monkeypatch.setattr(consumers, "_store_customer_message", general_path)
    monkeypatch.setattr(realtime, "async_to_sync", no_hop)
    monkeypatch.setattr(tasks, "ai_enqueue", lambda message_id: pytest.fail("the loop's push fell back to a thread"))

    async def push(message_id):
        enqueued.append(message_id)
        return True

    monkeypatch.setattr(tasks, "ai_enqueue_async", push)
    events.subscribe(listener := lambda kind, **payload: announced.append((kind, payload["message_id"])))
    customer, console = customer_socket(chat), agent_socket(agent, chat)

    async def scenario():
        assert (await customer.connect(timeout=5))[0]
        assert (await console.connect(timeout=5))[0]
        await customer.send_json_to({"type": "message", "body": "on the loop", "client_id": "loop-1"})
        to_agent = await receive_until(console, r'data-client-id="loop-1"')
        to_customer = await receive_until(customer, r'data-client-id="loop-1"')
        assert "on the loop" in to_agent
        assert seqs(to_agent) == seqs(to_customer) == [2]
        for _ in range(50):  # the effects run on a worker thread after the broadcast
            if enqueued and announced:
                break
            await asyncio.sleep(0.05)
        await customer.disconnect()
        await console.disconnect()

    try:
        run(scenario)
    finally:
        events._subscribers.remove(listener)
    stored = Message.objects.get(ticket=chat, client_msg_id="loop-1")
    assert (stored.seq, stored.author_kind) == (2, "customer")
    assert enqueued == [stored.pk]
    assert announced == [(events.MESSAGE_CREATED, stored.pk)]
    chat.refresh_from_db()
    assert chat.last_message_seq == 2
    assert chat.last_customer_message_at == stored.created_at


def test_a_resend_and_a_message_that_reopens_take_the_general_path_and_store_nothing_twice(chat):
    from tickets.models import Ticket

    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        await ws.send_json_to({"type": "message", "body": "first", "client_id": "again"})
        await receive_until(ws, 'data-client-id="again"')
        await ws.send_json_to({"type": "message", "body": "first", "client_id": "again"})  # the page resends
        assert seqs(await receive_until(ws, 'data-client-id="again"')) == [2]
        await db(Ticket.objects.filter(pk=chat.pk).update)(status="pending")
        await ws.send_json_to({"type": "message", "body": "back again", "client_id": "reopen"})
        assert seqs(await receive_until(ws, 'data-client-id="reopen"')) == [3]
        await ws.disconnect()

    run(scenario)
    assert list(Message.objects.filter(ticket=chat).values_list("seq", "body")) == [
        (1, "My sync is stuck"),
        (2, "first"),
        (3, "back again"),
    ]
    chat.refresh_from_db()
    assert chat.status == "open"


def test_a_bad_message_from_the_loop_is_refused_in_the_conversations_language_and_nothing_is_stored(chat):
    async def scenario():
        ws = customer_socket(chat)
        assert (await ws.connect(timeout=5))[0]
        await ws.send_json_to({"type": "message", "body": "   ", "client_id": "empty"})
        refused = await ws.receive_from(timeout=3)
        assert 'data-client-id="empty"' in refused
        assert "chat-error" in refused
        await ws.send_json_to({"type": "message", "body": "ok", "client_id": "bad id!"})
        assert "The message id must be" in await ws.receive_from(timeout=3)
        await ws.disconnect()

    run(scenario)
    assert Message.objects.filter(ticket=chat).count() == 1


def test_socket_events_do_not_hop_to_the_sync_thread_to_close_connections(chat, agent, monkeypatch):
    """Channels runs ``aclose_old_connections()`` (a hop to the sync thread) before every event it
    dispatches; the chat sockets never hold a Django connection on the loop, so theirs skip it."""
    import channels.consumer

    hops = []

    async def counting():
        hops.append(1)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting)
    customer, console = customer_socket(chat), agent_socket(agent, chat)

    async def scenario():
        assert (await customer.connect(timeout=5))[0]
        assert (await console.connect(timeout=5))[0]
        hops.clear()  # connecting may run other consumers' code paths; count the events only
        for n in range(3):
            await customer.send_json_to({"type": "message", "body": f"hop {n}", "client_id": f"hop-{n}"})
            await receive_until(console, f'data-client-id="hop-{n}"')
            await receive_until(customer, f'data-client-id="hop-{n}"')
        assert hops == []
        await customer.disconnect()
        await console.disconnect()

    run(scenario)
