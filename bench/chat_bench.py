"""Live chat delivery benchmark: chat websockets against a bare Channels echo, same server, same Redis.

Run from the repository root, with the embedded services up::

    python -m supportflow.devservices exec -- .venv/bin/python bench/chat_bench.py \
        [--sizes 10,100,500] [--messages 5] [--interval 1.0] [--repeats 2] [--out docs/benchmarks.md]

What it does, in order:

1. Drops and recreates its own database ``supportflow_bench`` on the PostgreSQL of ``DATABASE_URL``
   (never the app's database), migrates it, and empties its own Redis databases (cache 6, channel
   layer 7; ``REDIS_URL`` points at db 5 so nothing can reach the app's Celery queue on db 0).
2. Starts ONE uvicorn server on a free loopback port with ``BENCH_ENDPOINTS=1`` (the bare echo
   consumer), a fixed bench ``SECRET_KEY`` and the chat rate limits raised out of the way (every bench
   client comes from 127.0.0.1).
3. For each size N, alternating the two workloads (echo then chat, then chat then echo, ...):
   - chat: N conversations, 1 customer socket + 1 agent socket each. Each customer sends M messages,
     one every ``interval`` seconds, first send at a random offset within the first interval.
     Latency = customer send -> the agent socket receives the fragment with that ``data-client-id``.
     Then each agent resyncs from 0; the figures are sent / stored (DB) / delivered live / delivered
     after resync.
   - echo: N rooms, 1 sender + 1 listener each, same count and pacing; latency = send -> listener.
4. Prints a table and, as the very last stdout line, one JSON object with every figure; writes the
   ``## Live chat: websocket delivery`` section of ``docs/benchmarks.md``.

Clients and server share the machine, so the absolute figures include the clients' CPU; read them as
chat/echo ratios first. Every wait is bounded in time and every loop in count; the server is always
stopped (try/finally).
"""

# ruff: noqa: S311, S603 — random only paces the load; the subprocesses are this interpreter with fixed arguments

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import _harness
from _harness import (
    BASE_DIR,
    Server,
    close_django_connections,
    django_setup,
    docs_update,
    fmt,
    log,
    median_of,
    ms,
    percentile,
    raise_nofile_limit,
    run_async,
    run_main,
    spread_of,
    with_path,
)

BENCH_DB_NAME = "supportflow_bench"
# Redis databases of the bench only (the app uses 0-2, the tests 10-12).
BENCH_REDIS_DB = 5  # REDIS_URL itself (Celery broker / health check): nothing of the app's queue
BENCH_CACHE_DB = 6  # cache: the chat rate-limit counters
BENCH_CHANNELS_DB = 7  # channel layer
SECRET_KEY = "supportflow-bench-only-secret-key-never-used-outside-this-script-0123456789"  # noqa: S105
RATE_OVERRIDE = "1000000/60"
RATE_ENV = ("CHAT_RATE_PER_CONVERSATION", "CHAT_RATE_PER_IP", "CHAT_RATE_START_PER_IP")
RESYNC_BATCH = 200  # tickets.consumers.RESYNC_BATCH: a resync reply batch holds at most this many
SECTION_HEADING = "## Live chat: websocket delivery"
P95_TARGET_RATIO = 3.0
P95_TARGET_SIZE = 100

LI_RE = re.compile(r'<li id="msg-(\d+)"([^>]*)>')
CID_RE = re.compile(r'data-client-id="([^"]*)"')
ERROR_TEXT_RE = re.compile(r'id="chat-error"[^>]*>([^<]*)<')


# --- environment, database, Redis -----------------------------------------------------------------


def bench_env(base: dict[str, str]) -> dict[str, str]:
    """The environment of both the bench process (Django, for fixtures) and the server."""
    services = _harness.bench_services(
        base, script="chat_bench.py", db_name=BENCH_DB_NAME, redis_db=BENCH_REDIS_DB, cache_db=BENCH_CACHE_DB,
        channels_db=BENCH_CHANNELS_DB,
    )  # fmt: skip
    env = {k: v for k, v in base.items() if not k.startswith("SECRET_KEY")}
    env.update(
        services,
        SECRET_KEY=SECRET_KEY,
        BENCH_ENDPOINTS="1",
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        FEATURE_AI_AUTO_REPLY="0",
        PYTHONUNBUFFERED="1",
    )
    for name in RATE_ENV:
        env[name] = RATE_OVERRIDE
    return env


def recreate_database(database_url: str) -> None:
    _harness.recreate_database(database_url, BENCH_DB_NAME)


def flush_bench_redis(redis_url: str) -> None:
    _harness.flush_redis_dbs(redis_url, (BENCH_REDIS_DB, BENCH_CACHE_DB, BENCH_CHANNELS_DB))


# --- fixtures (Django, synchronous, in this process) ------------------------------------------------


def make_agent_session() -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_superuser("bench-agent", "bench-agent@example.com", None)
    browser = Client()
    browser.force_login(user)
    return browser.cookies["sessionid"].value


def make_conversations(label: str, count: int) -> list[tuple[int, str]]:
    """``count`` chat tickets (seq 1 = the opening message) and their customer tokens."""
    from tickets import selectors, services
    from tickets.models import Ticket

    made = []
    for i in range(count):
        customer = services.customer_get_or_create(email=f"{label}-{i}@bench.example.com", name=f"Bench {label} {i}")
        ticket = services.ticket_create(
            customer=customer, subject=f"Bench {label} {i}", body="Benchmark conversation", channel=Ticket.Channel.CHAT
        )
        made.append((ticket.pk, selectors.ticket_customer_token(ticket=ticket)))
    return made


def stored_counts(ticket_ids: list[int], client_ids: set[str]) -> dict:
    """What the database holds for the run: messages after the opening one, and which of ours."""
    from tickets.models import Message

    rows = list(Message.objects.filter(ticket_id__in=ticket_ids, seq__gt=1).values_list("client_msg_id", flat=True))
    ids = Counter(rows)
    return {
        "stored": len(rows),
        "stored_of_ours": sum(1 for cid in ids if cid in client_ids),
        "stored_duplicates": sum(n - 1 for n in ids.values() if n > 1),
    }


# --- websocket clients ----------------------------------------------------------------------------


@dataclass
class RunStats:
    workload: str
    size: int
    repeat: int
    sockets_planned: int = 0
    connect_times: list[float] = field(default_factory=list)
    conn_failures: int = 0
    conn_errors: Counter = field(default_factory=Counter)
    connect_wall: float = 0.0
    unexpected_closes: int = 0
    close_codes: Counter = field(default_factory=Counter)
    handler_errors: int = 0
    sent: int = 0
    delivered: int = 0
    duplicates: int = 0
    latencies: list[float] = field(default_factory=list)
    own_copy_latencies: list[float] = field(default_factory=list)
    first_send: float | None = None
    last_send: float | None = None
    last_delivery: float | None = None
    error_frames: int = 0
    error_samples: Counter = field(default_factory=Counter)
    loop_lag: list[float] = field(default_factory=list)
    drain_timed_out: bool = False
    drain_wait: float = 0.0
    closing: bool = False
    reconnects: int = 0
    reconnect_failures: int = 0
    sends_while_down: int = 0
    resent: int = 0
    inbox_max: int = 0
    server_cpu_peak: float = 0.0
    inbox_probe_errors: int = 0

    def mark_send(self, at: float) -> None:
        self.sent += 1
        self.first_send = at if self.first_send is None else min(self.first_send, at)
        self.last_send = at if self.last_send is None else max(self.last_send, at)

    def mark_delivery(self, at: float, latency: float) -> None:
        self.delivered += 1
        self.latencies.append(latency)
        self.last_delivery = at if self.last_delivery is None else max(self.last_delivery, at)


class Client:
    """One websocket plus the task that always drains it into a handler.

    Like the real browser client (htmx's ws extension + ``static/supportflow/chat.js``), a socket the
    server drops is reopened (a few bounded attempts with jittered backoff) and ``on_reopen`` runs:
    the chat customer re-sends its unconfirmed messages there, with the same ``client_id``.
    """

    def __init__(self, stats: RunStats, handler, url: str, headers: list[tuple[str, str]], on_reopen=None) -> None:
        self.stats = stats
        self.handler = handler
        self.url = url
        self.headers = headers
        self.on_reopen = on_reopen
        self.origin = ""
        self.timeout = 30.0
        self.ws = None
        self.task: asyncio.Task | None = None
        self.reopen_task: asyncio.Task | None = None

    @property
    def alive(self) -> bool:
        from websockets.protocol import State

        return self.ws is not None and self.ws.state is State.OPEN

    async def _connect(self):
        from websockets.asyncio.client import connect

        return await connect(
            self.url,
            origin=self.origin,
            additional_headers=self.headers,
            proxy=None,
            open_timeout=self.timeout,
            ping_interval=None,  # the server pings; we always read, so pongs go out
            close_timeout=5,
            max_size=8 * 2**20,
            user_agent_header="supportflow-chat-bench",
        )

    async def open(self, origin: str, sem: asyncio.Semaphore, timeout: float) -> bool:
        self.origin, self.timeout = origin, timeout
        async with sem:
            started = time.perf_counter()
            try:
                self.ws = await self._connect()
            except Exception as exc:
                self.stats.conn_failures += 1
                self.stats.conn_errors[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1
                return False
            self.stats.connect_times.append(time.perf_counter() - started)
        self.task = asyncio.get_running_loop().create_task(self._pump(self.ws))
        return True

    async def _pump(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for frame in ws:
                try:
                    self.handler(time.perf_counter(), frame)
                except Exception:
                    self.stats.handler_errors += 1
        except ConnectionClosed:
            pass
        finally:
            if not self.stats.closing:
                self.stats.unexpected_closes += 1
                self.stats.close_codes[str(ws.close_code)] += 1
                if self.reopen_task is None or self.reopen_task.done():
                    self.reopen_task = asyncio.get_running_loop().create_task(self.reopen())

    async def reopen(self, attempts: int = 4) -> bool:
        """Reconnect after the server dropped us (bounded: ``attempts`` tries, <= ~4 s of backoff)."""
        for attempt in range(attempts):
            if self.stats.closing:
                return False
            await asyncio.sleep(random.uniform(0.05, 0.25 * 2**attempt))
            try:
                ws = await self._connect()
            except Exception as exc:
                self.stats.conn_errors[f"reconnect {type(exc).__name__}: {str(exc)[:80]}"] += 1
                continue
            self.ws = ws
            self.stats.reconnects += 1
            self.task = asyncio.get_running_loop().create_task(self._pump(ws))
            if self.on_reopen is not None:
                await self.on_reopen()
            return True
        self.stats.reconnect_failures += 1
        return False

    async def send(self, text: str) -> bool:
        if not self.alive:
            return False
        try:
            await self.ws.send(text)
            return True
        except Exception:
            return False

    async def resync(self) -> None:
        """Ask for everything after seq 0: on a reopened socket if the server dropped this one (after
        waiting for a reopen already under way)."""
        if not self.alive:
            if self.reopen_task is not None and not self.reopen_task.done():
                await asyncio.wait([self.reopen_task], timeout=10)
            if not self.alive:
                await self.reopen(attempts=2)
        await self.send(json.dumps({"type": "resync", "after": 0}))


async def close_all(clients: list[Client], stats: RunStats, timeout: float = 30.0) -> None:
    """Close every socket at once (as a deploy or a network blip would), bounded in time."""
    stats.closing = True
    for client in clients:
        if client.reopen_task is not None:
            client.reopen_task.cancel()
    live = [c for c in clients if c.ws is not None]
    if live:
        try:
            await asyncio.wait_for(
                asyncio.gather(*(c.ws.close() for c in live), return_exceptions=True), timeout=timeout
            )
        except TimeoutError:
            log(f"  closing {len(live)} sockets took over {timeout:.0f}s; abandoning them")
    tasks = [t for c in clients for t in (c.task, c.reopen_task) if t is not None]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=10)


async def inbox_probe(stats: RunStats, stop: asyncio.Event, channels_url: str, every: float = 0.25) -> None:
    """Largest backlog of the server's channel-layer inbox during the run.

    channels_redis keeps ONE sorted set per server process (``asgispecific.<id>!``) for every socket
    of that process, and ``capacity`` applies to it: past it, group messages are dropped."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(channels_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        for _ in range(100_000):  # bounded; stopped by the event long before
            if stop.is_set():
                return
            try:
                total = 0
                async for key in client.scan_iter(match="asgispecific.*!", count=100):
                    total += await client.zcard(key)
                stats.inbox_max = max(stats.inbox_max, total)
            except Exception:
                stats.inbox_probe_errors += 1
            await asyncio.sleep(every)
    finally:
        await client.aclose()


async def loop_lag_probe(stats: RunStats, stop: asyncio.Event, every: float = 0.05) -> None:
    """How late this (client) event loop wakes up: client saturation shows here, not in the server."""
    for _ in range(100_000):  # bounded; stopped by the event long before
        if stop.is_set():
            return
        before = time.perf_counter()
        await asyncio.sleep(every)
        stats.loop_lag.append(max(0.0, time.perf_counter() - before - every))


@dataclass
class Context:
    args: argparse.Namespace
    server: Server
    base_ws: str
    origin: str
    channels_url: str


async def connect_all(clients: list[Client], ctx: Context, stats: RunStats) -> None:
    sem = asyncio.Semaphore(ctx.args.connect_concurrency)
    started = time.perf_counter()
    await asyncio.gather(*(client.open(ctx.origin, sem, ctx.args.connect_timeout) for client in clients))
    stats.connect_wall = time.perf_counter() - started


async def server_cpu_probe(server: Server, stats: RunStats, stop: asyncio.Event, every: float = 1.0) -> None:
    """Peak server CPU over 1 s slices: the run average hides saturation when the drain wait idles."""
    last_cpu, last_at = server.cpu_seconds(), time.perf_counter()
    for _ in range(100_000):  # bounded; stopped by the event long before
        if stop.is_set() or last_cpu is None:
            return
        await asyncio.sleep(every)
        cpu, now = server.cpu_seconds(), time.perf_counter()
        if cpu is None:
            return
        stats.server_cpu_peak = max(stats.server_cpu_peak, (cpu - last_cpu) / (now - last_at))
        last_cpu, last_at = cpu, now


class Window:
    """The measured part of a run: server and client CPU, client loop lag, channel-layer backlog."""

    def __init__(self, ctx: Context, stats: RunStats) -> None:
        loop = asyncio.get_running_loop()
        self.ctx, self.stats = ctx, stats
        self.stop_event = asyncio.Event()
        self.tasks = [
            loop.create_task(loop_lag_probe(stats, self.stop_event)),
            loop.create_task(inbox_probe(stats, self.stop_event, ctx.channels_url)),
            loop.create_task(server_cpu_probe(ctx.server, stats, self.stop_event)),
        ]
        self.server_cpu = ctx.server.cpu_seconds()
        self.client_cpu = time.process_time()
        self.wall = time.perf_counter()

    async def stop(self) -> dict:
        self.stop_event.set()
        server_cpu = self.ctx.server.cpu_seconds()
        measured = {
            "active": time.perf_counter() - self.wall,
            "client_cpu": time.process_time() - self.client_cpu,
            "server_cpu": server_cpu - self.server_cpu
            if server_cpu is not None and self.server_cpu is not None
            else None,
        }
        await asyncio.wait(self.tasks, timeout=3)
        for task in self.tasks:
            task.cancel()
        return measured


async def paced_sends(send_one, count: int, interval: float, t0: float) -> None:
    """``count`` sends, one per ``interval``, the first at a random offset within the first interval.
    The schedule is absolute (t0 + offset + k*interval): a late send does not push the others back."""
    offset = random.uniform(0.0, interval)
    for k in range(count):
        delay = t0 + offset + k * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send_one(k)


async def wait_for_deliveries(stats: RunStats, timeout: float) -> None:
    started = time.perf_counter()
    deadline = started + timeout
    while time.perf_counter() < deadline and stats.delivered < stats.sent:
        await asyncio.sleep(0.02)
    stats.drain_wait = time.perf_counter() - started
    stats.drain_timed_out = stats.delivered < stats.sent


# --- echo workload --------------------------------------------------------------------------------


async def run_echo(ctx: Context, size: int, repeat: int, label: str, kind: str = "echo") -> dict:
    """``kind`` "echo": the bare Channels echo; "store-echo": the same with one INSERT per message before
    the group send (``supportflow.consumers.StoreEchoConsumer``), the floor of store-first delivery."""
    args = ctx.args
    stats = RunStats(kind, size, repeat, sockets_planned=2 * size)
    sent_at: dict[str, float] = {}
    got: set[str] = set()

    def on_listener(now: float, frame) -> None:
        key = json.loads(frame)["id"]
        if key in got:
            stats.duplicates += 1
            return
        started = sent_at.get(key)
        if started is not None:
            got.add(key)
            stats.mark_delivery(now, now - started)

    def on_sender(now: float, frame) -> None:
        started = sent_at.get(json.loads(frame)["id"])
        if started is not None:
            stats.own_copy_latencies.append(now - started)

    rooms = []
    for i in range(size):
        room = f"{label}-{i}"
        url = f"{ctx.base_ws}/ws/bench/{kind}/{room}/"
        rooms.append((room, Client(stats, on_listener, url, []), Client(stats, on_sender, url, [])))

    log(f"{kind} N={size} #{repeat + 1}: connecting {2 * size} sockets")
    await connect_all([c for _, listener, sender in rooms for c in (listener, sender)], ctx, stats)
    ready = [(room, sender) for room, listener, sender in rooms if listener.ws is not None and sender.ws is not None]
    window = Window(ctx, stats)
    t0 = time.perf_counter() + 0.2

    def sender_for(room: str, sender: Client):
        async def send_one(k: int) -> None:
            key = f"{room}-{k}"
            payload = json.dumps({"type": "echo", "id": key, "body": f"Benchmark message {k + 1} of {args.messages}"})
            now = time.perf_counter()
            sent_at[key] = now
            if await sender.send(payload):
                stats.mark_send(now)
            else:  # an echo has no store: a send on a dropped socket is simply not made
                sent_at.pop(key, None)
                stats.sends_while_down += 1

        return send_one

    log(f"{kind} N={size} #{repeat + 1}: {len(ready)} rooms sending {args.messages} each every {args.interval:g}s")
    await asyncio.gather(*(paced_sends(sender_for(r, s), args.messages, args.interval, t0) for r, s in ready))
    await wait_for_deliveries(stats, args.drain_timeout)
    measured = await window.stop()
    await close_all([c for _, listener, sender in rooms for c in (listener, sender)], stats)
    return summarise(stats, measured, ctx.server.rss_mb())


# --- chat workload --------------------------------------------------------------------------------


@dataclass
class Conversation:
    ticket_id: int
    token: str
    sent_at: dict[str, float] = field(default_factory=dict)
    payloads: dict[str, str] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)
    live_seqs: set[int] = field(default_factory=set)
    confirmed: set[str] = field(default_factory=set)
    resync_requested: bool = False
    resync_started: bool = False
    resync_done: bool = False
    resync_seqs: set[int] = field(default_factory=set)


def messages_in(frame: str) -> list[tuple[int, str]]:
    out = []
    for match in LI_RE.finditer(frame):
        cid = CID_RE.search(match.group(2))
        out.append((int(match.group(1)), cid.group(1) if cid else ""))
    return out


def note_errors(stats: RunStats, frame: str) -> None:
    if 'id="chat-error"' in frame:
        found = ERROR_TEXT_RE.search(frame)
        text = (found.group(1).strip() if found else "") or "(empty)"
        stats.error_frames += 1
        stats.error_samples[text[:120]] += 1


async def run_chat(ctx: Context, size: int, repeat: int, convs_in: list[tuple[int, str]], session_id: str):
    args = ctx.args
    stats = RunStats("chat", size, repeat, sockets_planned=2 * size)
    convs = [Conversation(ticket_id, token) for ticket_id, token in convs_in]

    def agent_handler(conv: Conversation):
        def on_frame(now: float, frame) -> None:
            note_errors(stats, frame)
            found = messages_in(frame)
            if not found:
                return
            seqs = [seq for seq, _ in found]
            if conv.resync_requested and not conv.resync_done and (conv.resync_started or 1 in seqs):
                # The resync reply (it starts at seq 1); never counted as live delivery.
                conv.resync_started = True
                conv.resync_seqs.update(seq for seq in seqs if seq > 1)
                if len(seqs) < RESYNC_BATCH:
                    conv.resync_done = True
                return
            for seq, cid in found:
                started = conv.sent_at.get(cid)
                if started is None:
                    continue
                if cid in conv.delivered:
                    stats.duplicates += 1
                    continue
                conv.delivered.add(cid)
                conv.live_seqs.add(seq)
                stats.mark_delivery(now, now - started)

        return on_frame

    def customer_handler(conv: Conversation):
        def on_frame(now: float, frame) -> None:
            note_errors(stats, frame)
            for _seq, cid in messages_in(frame):
                started = conv.sent_at.get(cid)
                if started is not None and cid not in conv.confirmed:
                    conv.confirmed.add(cid)
                    stats.own_copy_latencies.append(now - started)

        return on_frame

    def resend_unconfirmed(conv: Conversation, customer: Client):
        async def on_reopen() -> None:
            for cid, payload in list(conv.payloads.items()):
                if cid not in conv.confirmed and await customer.send(payload):
                    stats.resent += 1

        return on_reopen

    cookie = [("Cookie", f"sessionid={session_id}")]
    members = []
    for conv in convs:
        agent = Client(stats, agent_handler(conv), f"{ctx.base_ws}/ws/agent/tickets/{conv.ticket_id}/", cookie)
        customer = Client(stats, customer_handler(conv), f"{ctx.base_ws}/ws/chat/{conv.token}/", [])
        customer.on_reopen = resend_unconfirmed(conv, customer)
        members.append((conv, agent, customer))

    log(f"chat N={size} #{repeat + 1}: connecting {2 * size} sockets")
    await connect_all([c for _, agent, customer in members for c in (agent, customer)], ctx, stats)
    ready = [(conv, agent, customer) for conv, agent, customer in members if agent.ws and customer.ws]
    window = Window(ctx, stats)
    t0 = time.perf_counter() + 0.2

    def sender_for(conv: Conversation, customer: Client):
        async def send_one(k: int) -> None:
            cid = f"b{size}r{repeat}t{conv.ticket_id}m{k}-{random.getrandbits(32):08x}"
            body = f"Benchmark message {k + 1} of {args.messages} in ticket {conv.ticket_id}"
            payload = json.dumps({"type": "message", "body": body, "client_id": cid})
            now = time.perf_counter()
            conv.sent_at[cid] = now
            conv.payloads[cid] = payload
            stats.mark_send(now)  # the customer pressed Send: from here on it must not be lost
            if not await customer.send(payload):
                stats.sends_while_down += 1  # queued; re-sent when the socket is reopened

        return send_one

    log(
        f"chat N={size} #{repeat + 1}: {len(ready)} conversations sending {args.messages} each every {args.interval:g}s"
    )
    await asyncio.gather(
        *(paced_sends(sender_for(conv, cust), args.messages, args.interval, t0) for conv, _, cust in ready)
    )
    await wait_for_deliveries(stats, args.drain_timeout)
    measured = await window.stop()

    # Resync: every agent socket (reopened if the server dropped it) asks for everything after 0.
    log(f"chat N={size} #{repeat + 1}: resync of {len(ready)} agent sockets")
    for conv, _agent, _customer in ready:
        conv.resync_requested = True

    deadline = time.perf_counter() + args.resync_timeout
    try:
        await asyncio.wait_for(asyncio.gather(*(agent.resync() for _, agent, _ in ready)), args.resync_timeout)
    except TimeoutError:
        log("  sending the resync requests timed out")
    while time.perf_counter() < deadline and not all(conv.resync_done for conv, _, _ in ready):
        await asyncio.sleep(0.02)
    resync_incomplete = sum(1 for conv, _, _ in ready if not conv.resync_done)

    await close_all([c for _, agent, customer in members for c in (agent, customer)], stats)
    result = summarise(stats, measured, ctx.server.rss_mb())
    result.update(
        after_resync=sum(len(conv.resync_seqs) for conv in convs),
        resync_incomplete=resync_incomplete,
        unconfirmed_to_customer=sum(len(set(conv.sent_at) - conv.confirmed) for conv in convs),
        conversations_with_loss=sum(1 for conv in convs if conv.sent_at and len(conv.resync_seqs) < len(conv.sent_at)),
    )
    client_ids = {cid for conv in convs for cid in conv.sent_at}
    return result, [conv.ticket_id for conv in convs], client_ids


def summarise(stats: RunStats, measured: dict, rss) -> dict:
    server_cpu, client_cpu, active = measured["server_cpu"], measured["client_cpu"], measured["active"]
    send_window = (stats.last_send - stats.first_send) if stats.sent else 0.0
    end = max(filter(None, [stats.last_send, stats.last_delivery]), default=None)
    elapsed = (end - stats.first_send) if (end is not None and stats.first_send is not None) else 0.0
    return {
        "workload": stats.workload,
        "size": stats.size,
        "repeat": stats.repeat,
        "sockets_planned": stats.sockets_planned,
        "sockets_connected": len(stats.connect_times),
        "conn_failures": stats.conn_failures,
        "conn_errors": dict(stats.conn_errors.most_common(5)),
        "connect_wall_s": round(stats.connect_wall, 3),
        "connect_p50_ms": ms(percentile(stats.connect_times, 50)),
        "connect_p95_ms": ms(percentile(stats.connect_times, 95)),
        "connect_max_ms": ms(max(stats.connect_times, default=None)),
        "sent": stats.sent,
        "delivered_live": stats.delivered,
        "duplicates": stats.duplicates,
        "sends_while_down": stats.sends_while_down,
        "resent": stats.resent,
        "unexpected_closes": stats.unexpected_closes,
        "reconnects": stats.reconnects,
        "reconnect_failures": stats.reconnect_failures,
        "close_codes": dict(stats.close_codes),
        "handler_errors": stats.handler_errors,
        "error_frames": stats.error_frames,
        "error_samples": dict(stats.error_samples.most_common(3)),
        "p50_ms": ms(percentile(stats.latencies, 50)),
        "p95_ms": ms(percentile(stats.latencies, 95)),
        "p99_ms": ms(percentile(stats.latencies, 99)),
        "max_ms": ms(max(stats.latencies, default=None)),
        "own_copy_p95_ms": ms(percentile(stats.own_copy_latencies, 95)),
        "send_window_s": round(send_window, 3),
        "elapsed_s": round(elapsed, 3),
        "offered_per_s": round(stats.sent / send_window, 1) if send_window > 0 else None,
        "msgs_per_s": round(stats.delivered / elapsed, 1) if elapsed > 0 else None,
        "drain_wait_s": round(stats.drain_wait, 3),
        "drain_timed_out": stats.drain_timed_out,
        "server_cpu_pct": round(100 * server_cpu / active, 1) if server_cpu is not None and active > 0 else None,
        "server_cpu_peak_pct": round(100 * stats.server_cpu_peak, 1),
        "server_cpu_ms_per_msg": round(1000 * server_cpu / stats.sent, 2)
        if server_cpu is not None and stats.sent
        else None,
        "client_cpu_pct": round(100 * client_cpu / active, 1) if active > 0 else None,
        "server_rss_mb": rss,
        "client_loop_lag_p99_ms": ms(percentile(stats.loop_lag, 99)),
        "client_loop_lag_max_ms": ms(max(stats.loop_lag, default=None)),
        "layer_inbox_max": stats.inbox_max,
    }


# --- orchestration --------------------------------------------------------------------------------


def aggregate(runs: list[dict], sizes: list[int]) -> dict:
    summary: dict[str, dict] = {}
    for size in sizes:
        entry: dict[str, dict] = {}
        for workload in ("echo", "store-echo", "chat"):
            mine = [r for r in runs if r["size"] == size and r["workload"] == workload]
            if not mine:
                continue
            agg = {
                "runs": len(mine),
                "p50_ms": median_of([r["p50_ms"] for r in mine]),
                "p95_ms": median_of([r["p95_ms"] for r in mine]),
                "p95_ms_spread": spread_of([r["p95_ms"] for r in mine]),
                "p99_ms": median_of([r["p99_ms"] for r in mine]),
                "max_ms": max((r["max_ms"] for r in mine if r["max_ms"] is not None), default=None),
                "msgs_per_s": median_of([r["msgs_per_s"] for r in mine]),
                "msgs_per_s_spread": spread_of([r["msgs_per_s"] for r in mine]),
                "offered_per_s": median_of([r["offered_per_s"] for r in mine]),
                "sent": sum(r["sent"] for r in mine),
                "delivered_live": sum(r["delivered_live"] for r in mine),
                "duplicates": sum(r["duplicates"] for r in mine),
                "conn_failures": sum(r["conn_failures"] for r in mine),
                "unexpected_closes": sum(r["unexpected_closes"] for r in mine),
                "reconnects": sum(r["reconnects"] for r in mine),
                "reconnect_failures": sum(r["reconnect_failures"] for r in mine),
                "sends_while_down": sum(r["sends_while_down"] for r in mine),
                "resent": sum(r["resent"] for r in mine),
                "layer_inbox_max": max(r["layer_inbox_max"] for r in mine),
                "drain_timeouts": sum(1 for r in mine if r["drain_timed_out"]),
                "error_frames": sum(r["error_frames"] for r in mine),
                "connect_p95_ms": median_of([r["connect_p95_ms"] for r in mine]),
                "connect_wall_s": median_of([r["connect_wall_s"] for r in mine]),
                "server_cpu_pct": median_of([r["server_cpu_pct"] for r in mine]),
                "server_cpu_ms_per_msg": median_of([r["server_cpu_ms_per_msg"] for r in mine]),
                "server_cpu_peak_pct": median_of([r["server_cpu_peak_pct"] for r in mine]),
                "client_cpu_pct": median_of([r["client_cpu_pct"] for r in mine]),
                "client_loop_lag_p99_ms": median_of([r["client_loop_lag_p99_ms"] for r in mine]),
                "client_loop_lag_max_ms": max(
                    (r["client_loop_lag_max_ms"] for r in mine if r["client_loop_lag_max_ms"] is not None),
                    default=None,
                ),
            }
            if workload == "chat":
                agg["stored"] = sum(r["stored"] for r in mine)
                agg["stored_duplicates"] = sum(r["stored_duplicates"] for r in mine)
                agg["after_resync"] = sum(r["after_resync"] for r in mine)
                agg["resync_incomplete"] = sum(r["resync_incomplete"] for r in mine)
                agg["unconfirmed_to_customer"] = sum(r["unconfirmed_to_customer"] for r in mine)
                agg["zero_loss"] = all(
                    r["sent"] == r["stored"] == r["after_resync"] and r["resync_incomplete"] == 0 for r in mine
                )
                agg["all_live"] = all(r["delivered_live"] == r["sent"] for r in mine)
            else:
                agg["zero_loss"] = all(r["delivered_live"] == r["sent"] for r in mine)
            entry[workload] = agg
        if "echo" in entry and "chat" in entry:
            echo, chat = entry["echo"], entry["chat"]
            entry["ratio"] = {
                "p95": round(chat["p95_ms"] / echo["p95_ms"], 2) if chat["p95_ms"] and echo["p95_ms"] else None,
                "throughput": round(chat["msgs_per_s"] / echo["msgs_per_s"], 3)
                if chat["msgs_per_s"] and echo["msgs_per_s"]
                else None,
            }
        store = entry.get("store-echo")
        if store and "echo" in entry and "chat" in entry:
            entry["floor_ratio"] = {
                "store_echo_p95_over_echo": _ratio(store["p95_ms"], entry["echo"]["p95_ms"]),
                "chat_p95_over_store_echo": _ratio(entry["chat"]["p95_ms"], store["p95_ms"]),
                "store_echo_throughput_over_echo": _ratio(store["msgs_per_s"], entry["echo"]["msgs_per_s"]),
                "store_echo_cpu_ms_per_msg": store["server_cpu_ms_per_msg"],
            }
        summary[str(size)] = entry
    return summary


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def targets(summary: dict, sizes: list[int]) -> dict:
    result: dict[str, dict] = {}
    at = summary.get(str(P95_TARGET_SIZE), {})
    ratio = at.get("ratio", {}).get("p95")
    result["p95_within_3x_echo_at_100"] = {
        "measured_ratio": ratio,
        "met": None if ratio is None else ratio <= P95_TARGET_RATIO,
        "note": None if ratio is not None else f"N={P95_TARGET_SIZE} was not in --sizes",
    }
    per_size = {}
    for size in sizes:
        chat = summary.get(str(size), {}).get("chat")
        if chat:
            per_size[str(size)] = {
                "sent": chat["sent"],
                "stored": chat["stored"],
                "after_resync": chat["after_resync"],
                "delivered_live": chat["delivered_live"],
                "conn_failures": chat["conn_failures"],
                "met": chat["zero_loss"],
            }
    result["zero_loss_every_size"] = {
        "per_size": per_size,
        "met": all(v["met"] for v in per_size.values()) if per_size else None,
    }
    return result


def fmt_spread(spread) -> str:
    return f"{spread[0]:.1f}–{spread[1]:.1f}" if spread else "–"


def tables_markdown(summary: dict, sizes: list[int]) -> str:
    head = (
        "| N | workload | p50 ms | p95 ms (min–max) | p99 ms | msg/s (min–max) | sent | stored | delivered live "
        "| after resync | conn. failures |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for size in sizes:
        entry = summary.get(str(size), {})
        for workload in ("echo", "store-echo", "chat"):
            a = entry.get(workload)
            if not a:
                continue
            rows.append(
                f"| {size} | {workload} | {fmt(a['p50_ms'])} | {fmt(a['p95_ms'])} ({fmt_spread(a['p95_ms_spread'])}) "
                f"| {fmt(a['p99_ms'])} | {fmt(a['msgs_per_s'])} ({fmt_spread(a['msgs_per_s_spread'])}) | {a['sent']} "
                f"| {a.get('stored', '–')} | {a['delivered_live']} | {a.get('after_resync', '–')} "
                f"| {a['conn_failures']} |"
            )
    ratio_head = "\n\n| N | chat/echo p95 | chat/echo msg/s |\n|---:|---:|---:|\n"
    ratio_rows = []
    for size in sizes:
        ratio = summary.get(str(size), {}).get("ratio")
        if ratio:
            ratio_rows.append(f"| {size} | {fmt(ratio['p95'], 2)}× | {fmt(ratio['throughput'], 2)}× |")
    floor_rows = []
    for size in sizes:
        floor = summary.get(str(size), {}).get("floor_ratio")
        if floor:
            floor_rows.append(
                f"| {size} | {fmt(floor['store_echo_p95_over_echo'], 2)}× "
                f"| {fmt(floor['chat_p95_over_store_echo'], 2)}× "
                f"| {fmt(floor['store_echo_throughput_over_echo'], 2)}× |"
            )
    if floor_rows:
        ratio_rows.append(
            "\n\nThe store-first floor (`--floor`: the echo plus one `INSERT` per message, as the chat consumer "
            "stores):\n\n| N | store-echo/echo p95 | chat/store-echo p95 | store-echo/echo msg/s |\n"
            "|---:|---:|---:|---:|\n" + "\n".join(floor_rows)
        )
    load_head = (
        "\n\n| N | workload | connect p95 ms | connect all s | server CPU % avg / peak | server CPU ms/msg "
        "| client CPU % | client loop lag p99 / max ms | layer inbox max | dropped by server (reopened) "
        "| error frames |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    load_rows = []
    for size in sizes:
        entry = summary.get(str(size), {})
        for workload in ("echo", "store-echo", "chat"):
            a = entry.get(workload)
            if not a:
                continue
            load_rows.append(
                f"| {size} | {workload} | {fmt(a['connect_p95_ms'])} | {fmt(a['connect_wall_s'], 2)} "
                f"| {fmt(a['server_cpu_pct'], 0)} / {fmt(a['server_cpu_peak_pct'], 0)} "
                f"| {fmt(a['server_cpu_ms_per_msg'], 2)} "
                f"| {fmt(a['client_cpu_pct'], 0)} "
                f"| {fmt(a['client_loop_lag_p99_ms'])} / {fmt(a['client_loop_lag_max_ms'])} "
                f"| {a['layer_inbox_max']} | {a['unexpected_closes']} ({a['reconnects']}) | {a['error_frames']} |"
            )
    return head + "\n".join(rows) + ratio_head + "\n".join(ratio_rows) + load_head + "\n".join(load_rows)


def verdict_lines(result: dict) -> list[str]:
    p95 = result["p95_within_3x_echo_at_100"]
    loss = result["zero_loss_every_size"]
    lines = []
    if p95["met"] is None:
        lines.append(f"- p95 delivery at N=100 within 3× the bare echo: **not measured** ({p95['note']}).")
    else:
        lines.append(
            f"- p95 delivery at N=100 within 3× the bare echo: **{'met' if p95['met'] else 'NOT met'}** "
            f"(chat/echo p95 = {p95['measured_ratio']:.2f}×)."
        )
    parts = ", ".join(
        f"N={size}: sent {v['sent']}, stored {v['stored']}, after resync {v['after_resync']}"
        for size, v in loss["per_size"].items()
    )
    if loss["met"] is None:
        lines.append("- Zero loss at every N: **not measured**.")
    else:
        lines.append(f"- Zero loss at every N: **{'met' if loss['met'] else 'NOT met'}** ({parts}).")
        live_gaps = {size: v["sent"] - v["delivered_live"] for size, v in loss["per_size"].items()}
        if any(live_gaps.values()):
            lines.append(
                "  Live delivery alone was not lossless: "
                + ", ".join(
                    f"N={size}: {gap} of {loss['per_size'][size]['sent']} messages reached the agent only "
                    "through the resync"
                    for size, gap in live_gaps.items()
                    if gap
                )
                + "."
            )
    return lines


def observations(summary: dict, sizes: list[int], server_log: dict, runs: list[dict], channel_capacity) -> list[str]:
    """Plain-language notes generated from the figures: what a reader should not miss."""
    notes = []
    for size in sizes:
        entry = summary.get(str(size), {})
        for workload in ("echo", "chat"):
            a = entry.get(workload)
            if not a:
                continue
            where = f"N={size} {workload}"
            if a["offered_per_s"] and a["msgs_per_s"] and a["msgs_per_s"] < 0.9 * a["offered_per_s"]:
                notes.append(
                    f"- {where}: the server did not keep up: {a['msgs_per_s']:.0f} msg/s delivered of "
                    f"{a['offered_per_s']:.0f} offered, server CPU peaking at {fmt(a['server_cpu_peak_pct'], 0)}% "
                    f"of one core ({fmt(a['server_cpu_ms_per_msg'], 1)} ms of server CPU per message; one Python "
                    "process cannot use much more than one core), so the latency here is queueing."
                )
            if a["conn_failures"]:
                kinds = Counter()
                for r in runs:
                    if r["size"] == size and r["workload"] == workload:
                        kinds.update(r["conn_errors"])
                notes.append(f"- {where}: {a['conn_failures']} connection failures ({dict(kinds)}).")
            if a["unexpected_closes"]:
                codes = Counter()
                for r in runs:
                    if r["size"] == size and r["workload"] == workload:
                        codes.update(r["close_codes"])
                notes.append(
                    f"- {where}: the server dropped {a['unexpected_closes']} sockets mid-run (close codes "
                    f"{dict(codes)}); reopened {a['reconnects']}, failed to reopen {a['reconnect_failures']}"
                    + (f"; {a['resent']} unconfirmed messages re-sent with their client_id" if a["resent"] else "")
                    + "."
                )
            if a["delivered_live"] < a["sent"]:
                notes.append(
                    f"- {where}: {a['sent'] - a['delivered_live']} of {a['sent']} messages never arrived live "
                    f"(waited up to the drain timeout); the largest channel-layer inbox backlog seen was "
                    f"{a['layer_inbox_max']} messages (capacity {channel_capacity}, shared by every socket of "
                    "the process)."
                )
            if a.get("unconfirmed_to_customer"):
                notes.append(
                    f"- {where}: {a['unconfirmed_to_customer']} messages never confirmed back to the customer "
                    "socket (its own copy was dropped too)."
                )
            if a["error_frames"]:
                notes.append(f"- {where}: {a['error_frames']} error notices from the server.")
            if (a["client_loop_lag_max_ms"] or 0) > 100:
                notes.append(
                    f"- {where}: the client event loop lagged up to {a['client_loop_lag_max_ms']:.0f} ms; "
                    "part of the latency at this size is the clients', not the server's."
                )
    log_parts = []
    if server_log["layer_over_capacity"]:
        log_parts.append(
            f"{server_log['layer_over_capacity']} × channels_redis `over capacity in group` (group messages "
            "dropped: the process inbox was full)"
        )
    if server_log["redis_read_timeout"]:
        log_parts.append(
            f"{server_log['redis_read_timeout']} × redis `TimeoutError: Timeout reading` in a consumer's channel "
            "receive (the socket is dropped with code 1006)"
        )
    if server_log["redis_max_connections"]:
        log_parts.append(
            f"{server_log['redis_max_connections']} × redis `MaxConnectionsError: Too many connections` "
            "(channel-layer pool exhausted, mostly in disconnect handlers when every socket closes at once)"
        )
    if server_log["live_delivery_failed"]:
        log_parts.append(f"{server_log['live_delivery_failed']} × `live delivery of … failed`")
    for text, count in server_log["other"][:3]:
        log_parts.append(f"{count} × `{text}`")
    if log_parts:
        notes.append(
            f"- Server log ({server_log['asgi_exception']} × `Exception in ASGI application`): "
            + "; ".join(log_parts)
            + "."
        )
        if server_log["raised_in"]:
            notes.append(
                "- Tracebacks through our code: "
                + "; ".join(f"`{where}` ×{count}" for where, count in server_log["raised_in"][:4])
                + "."
            )
    else:
        notes.append("- Server log: no errors, warnings or tracebacks.")
    return notes


def docs_section(args, summary, sizes, result, notes, meta) -> str:
    command = (
        "python -m supportflow.devservices exec -- .venv/bin/python bench/chat_bench.py "
        f"--sizes {','.join(map(str, sizes))} --messages {args.messages} --interval {args.interval:g} "
        f"--repeats {args.repeats}" + (f" --workers {args.workers}" if args.workers > 1 else "")
    )
    return f"""{SECTION_HEADING}

What it measures: how long a customer's chat message takes to reach the agent's open ticket over the
real path (websocket in, rate limits, stored in PostgreSQL, broadcast on commit through the Redis
channel layer, rendered fragment out), next to a bare Channels echo (`ws/bench/echo/<room>/`, only
routed with `BENCH_ENDPOINTS=1`) that goes through the same server and the same Redis layer minus all
of our work — and whether anything is lost (stored in the database, and delivered after a resync).

Reproduce (from the repository root; the embedded PostgreSQL and Redis are started or reused):

```sh
{command}
```

- **Run:** {meta["date"]}, Python {meta["python"]}, uvicorn {meta["uvicorn"]}
  ({_processes(meta["workers"])}, uvloop + httptools, `--lifespan off --no-access-log --log-level warning`),
  websockets {meta["websockets"]} on both sides.
- **Machine:** {meta["cpus"]} cores, {meta["mem_gb"]} GB RAM. The clients (one asyncio process), the server,
  PostgreSQL and Redis all run on this machine and share those cores, so **read the figures as chat/echo
  ratios first**; the absolute milliseconds include the clients' own CPU time.
- **Isolation:** its own database `{BENCH_DB_NAME}` (dropped and recreated each run) on the same PostgreSQL,
  Redis databases {BENCH_REDIS_DB}/{BENCH_CACHE_DB}/{BENCH_CHANNELS_DB} (URL / cache / channel layer) and a fixed
  bench `SECRET_KEY`; a running `make run` is not touched.
- **Workloads**, alternated for each N (echo then chat, then chat then echo), {args.repeats} runs each:
  - *chat*: N conversations, each with one customer socket (`ws/chat/<token>/`) and one agent socket
    (`ws/agent/tickets/<id>/`, a superuser's session cookie). Latency = customer send → the agent socket
    receives the fragment with that `data-client-id`. *Stored* = message rows after the opening one;
    *after resync* = distinct sequence numbers the agent gets back from `{{"type":"resync","after":0}}`.
  - *echo*: N rooms, each with one sender and one listener socket; latency = send → listener receives.
- **Pacing:** every sender sends {args.messages} messages, one every {args.interval:g} s, the first at a random
  offset within the first interval, so the offered load is about N/{args.interval:g} messages/s. Afterwards the bench
  waits up to {args.drain_timeout:g} s for deliveries. *msg/s* = messages delivered live ÷ (first send → last
  delivery or last send, whichever is later); at a server that keeps up it equals the offered load.
- **Rate limits overridden:** every bench client comes from 127.0.0.1, so `CHAT_RATE_PER_CONVERSATION`,
  `CHAT_RATE_PER_IP` and `CHAT_RATE_START_PER_IP` are set to `{RATE_OVERRIDE}` for the server (the limits are
  still checked on every message, in Redis, as in production: only the thresholds change).
- **Clients behave like the real ones:** a socket the server drops is reopened (bounded retries), the customer
  re-sends its unconfirmed messages with the same `client_id` (the server stores each once), and every agent
  socket resyncs at the end. Sockets are opened {args.connect_concurrency} at a time and all closed at once.
- **Reading the tables:** medians over the runs, spread = min–max over the runs, counts are totals over the runs.
  *Server CPU %* is the server's CPU time (all its processes) over the measured window (sends + drain wait) and
  its peak over 1 s slices, 100 % = one core (one Python process cannot use much more); *server CPU ms/msg* is that
  CPU time per message sent. *Layer inbox max* is the largest backlog seen in channels_redis's per-process
  inbox in Redis (capacity {meta["channel_layer_capacity"]}: beyond it group messages are dropped). The server
  runs with the default database pool (max {meta["db_pool"]["max_size"]} connections per process).

{tables_markdown(summary, sizes)}

### Targets

{chr(10).join(verdict_lines(result))}

### Notes from this run

{chr(10).join(notes)}

The full figures of every run (connection times, CPU, own-copy latency, close codes) are the JSON line
the script prints last.
"""


def _processes(workers: int) -> str:
    return "one process" if workers == 1 else f"`--workers {workers}`: {workers} processes sharing the port"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,500", help="comma-separated N (conversations / echo rooms)")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also run the store-first floor: the echo plus one INSERT per message (ws/bench/store-echo/)",
    )
    parser.add_argument("--messages", type=int, default=5, help="messages per sender (M)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a sender's messages")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each workload per size")
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file to update ('' to skip)")
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="max wait for deliveries after last send")
    parser.add_argument("--resync-timeout", type=float, default=30.0, help="max wait for resync replies")
    parser.add_argument("--connect-timeout", type=float, default=30.0, help="per-socket handshake timeout")
    parser.add_argument("--connect-concurrency", type=int, default=100, help="handshakes in flight at once")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the send offsets")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn --workers: server processes sharing the port (all cores)"
    )
    parser.add_argument(
        "--ablate",
        default="",
        metavar="PARTS",
        help="chat with parts of its required work switched off, to measure what each costs: comma-separated "
        "limits, render, languages, ai, events (bench/ablation_asgi.py; not the product: never a published "
        "chat figure)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the server only, for experiments (e.g. DB_POOL_MAX_SIZE=20); repeatable",
    )
    args = parser.parse_args(argv)
    args.sizes_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.ablate and args.out:
        parser.error("--ablate measures parts of the work, not the product: run it with --out ''")
    if any("=" not in item for item in args.server_env):
        parser.error("--server-env takes NAME=VALUE")
    if not args.sizes_list or min(args.sizes_list) < 1 or max(args.sizes_list) > 5000:
        parser.error("--sizes: 1..5000 each")
    if not 1 <= args.messages <= 1000 or not 1 <= args.repeats <= 20 or not 0.01 <= args.interval <= 60:
        parser.error("--messages 1..1000, --repeats 1..20, --interval 0.01..60")
    return args


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    random.seed(args.seed)
    signal.signal(signal.SIGTERM, _terminate)
    limits = raise_nofile_limit()
    env = bench_env(dict(os.environ))
    log(f"open files limit {limits[0]}; database {BENCH_DB_NAME}; redis dbs {BENCH_CACHE_DB}/{BENCH_CHANNELS_DB}")

    recreate_database(env["DATABASE_URL"])
    flush_bench_redis(env["REDIS_URL"])
    log("migrating the bench database")
    subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--noinput", "-v", "0"],
        env=env, cwd=BASE_DIR, check=True, timeout=300,
    )  # fmt: skip
    django_setup(env)
    from django.conf import settings

    layer_config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    channel_capacity = layer_config.get("capacity", 100)
    db_pool = settings.DATABASES["default"]["OPTIONS"]["pool"]
    session_id = make_agent_session()

    sizes = args.sizes_list
    log(f"creating {sum(sizes) * args.repeats} chat tickets")
    fixtures = {
        (size, rep): make_conversations(f"n{size}r{rep}", size) for size in sizes for rep in range(args.repeats)
    }
    close_django_connections()

    log_dir = Path(tempfile.mkdtemp(prefix="supportflow-chat-bench-"))
    server_env = {**env, **dict(item.split("=", 1) for item in args.server_env)}
    if args.server_env:
        log(f"server environment overrides: {', '.join(args.server_env)}")
    if args.ablate:
        server_env["SF_BENCH_ABLATE"] = args.ablate
        log(f"ABLATION: chat without {args.ablate} (bench/ablation_asgi.py)")
    server = Server(
        env=server_env,
        log_path=log_dir / "server.log",
        workers=args.workers,
        app="ablation_asgi:application" if args.ablate else "supportflow.asgi:application",
    )
    runs: list[dict] = []
    started = time.perf_counter()
    try:
        server.start()
        log(f"server on 127.0.0.1:{server.port} (pid {server.proc.pid}), log {server.log_path}")
        ctx = Context(
            args=args,
            server=server,
            base_ws=f"ws://127.0.0.1:{server.port}",
            origin=server.base,
            channels_url=with_path(env["REDIS_URL"], f"/{BENCH_CHANNELS_DB}"),
        )
        for size in sizes:
            for rep in range(args.repeats):
                order = ("echo", "chat") if rep % 2 == 0 else ("chat", "echo")
                if args.floor:
                    order = (*order, "store-echo") if rep % 2 == 0 else ("store-echo", *order)
                for workload in order:
                    if not server.alive():
                        raise RuntimeError(f"the server died:\n{server.log_tail()}")
                    if workload in ("echo", "store-echo"):
                        label = f"n{size}r{rep}{'s' if workload == 'store-echo' else ''}"
                        result = run_async(run_echo(ctx, size, rep, label, kind=workload))
                    else:
                        result, ticket_ids, client_ids = run_async(
                            run_chat(ctx, size, rep, fixtures[(size, rep)], session_id)
                        )
                        result.update(stored_counts(ticket_ids, client_ids))
                        close_django_connections()
                    runs.append(result)
                    extra = (
                        f" stored {result['stored']} after-resync {result['after_resync']}"
                        if workload == "chat"
                        else ""
                    )
                    log(
                        f"  {workload} N={size} #{rep + 1}: p50 {fmt(result['p50_ms'])} p95 {fmt(result['p95_ms'])} "
                        f"p99 {fmt(result['p99_ms'])} ms, {fmt(result['msgs_per_s'])} msg/s, sent {result['sent']} "
                        f"live {result['delivered_live']}{extra}, conn fail {result['conn_failures']}, "
                        f"dropped {result['unexpected_closes']}, server CPU {fmt(result['server_cpu_pct'], 0)}% "
                        f"(peak {fmt(result['server_cpu_peak_pct'], 0)}%), "
                        f"layer inbox max {result['layer_inbox_max']}"
                    )
                    time.sleep(1.0)  # let the server settle (disconnect handlers, group discards)
    finally:
        server.stop()
        close_django_connections()
    total = time.perf_counter() - started

    import uvicorn
    import websockets

    server_log = server.log_findings()
    summary = aggregate(runs, sizes)
    result = targets(summary, sizes)
    notes = observations(summary, sizes, server_log, runs, channel_capacity)
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "websockets": websockets.__version__,
        "cpus": os.cpu_count(),
        "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "bench_seconds": round(total, 1),
        "server_log": str(server.log_path),
        "channel_layer_capacity": channel_capacity,
        "channel_layer_expiry_s": layer_config.get("expiry"),
        "db_pool": db_pool,
        "workers": args.workers,
    }

    print(f"\nLive chat: websocket delivery ({meta['date']}, {meta['cpus']} cores, clients and server on one machine)")
    print(f"{args.messages} messages per sender every {args.interval:g}s; rate limits {RATE_OVERRIDE}\n")
    print(tables_markdown(summary, sizes))
    print("\nTargets:")
    print("\n".join(verdict_lines(result)))
    print("\nNotes:")
    print("\n".join(notes))
    print(f"\nserver log: {server.log_path}; benchmark took {total:.0f}s")
    if args.out:
        docs_update(args.out, SECTION_HEADING, docs_section(args, summary, sizes, result, notes, meta))
    payload = {
        "benchmark": "chat_websocket_delivery",
        "meta": meta,
        "params": {
            "sizes": sizes,
            "messages": args.messages,
            "interval_s": args.interval,
            "repeats": args.repeats,
            "drain_timeout_s": args.drain_timeout,
            "connect_concurrency": args.connect_concurrency,
            "rate_override": RATE_OVERRIDE,
            "server_env": args.server_env,
            "ablate": args.ablate,
        },
        "summary": summary,
        "targets": result,
        "server_log": server_log,
        "runs": runs,
    }
    print(json.dumps(payload, separators=(",", ":"), default=str))
    return 0


if __name__ == "__main__":
    run_main(main)
