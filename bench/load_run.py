"""Sustained load run: N concurrent chat conversations (customers and agents) for minutes, AI pipeline on.

Run from the repository root, with the embedded services up::

    python -m supportflow.devservices exec -- .venv/bin/python bench/load_run.py \
        [--conversations 200] [--duration 600] [--agents 16] [--out docs/reliability.md]

What it does, in order:

1. Like ``make run``: drops and recreates its own database ``supportflow_loadrun``, migrates it, runs
   ``setup_periodic_tasks`` and ``seed_demo`` (with ``SF_DATA_DIR`` in a temporary directory), empties its
   Redis databases (broker 13, cache 14, channel layer 15 — the same as ``pipeline_bench.py``: every one of
   the 16 default databases is claimed by the app, the tests or a bench, so never run the two against the
   same Redis server at once). Starts one uvicorn, one Celery worker (``--pool prefork -c 2``) and beat
   (the project's scheduler), with ``FEATURE_AI_PIPELINE=true`` and ``LLM_PROVIDER=local``, and warms the
   worker up as ``pipeline_bench.py`` does.
2. Staff: ``--agents`` agents (the Agents role, every department, room for every ticket) with a session
   each; the demo staff are set unavailable so the AI's hand-overs are assigned to them.
3. N chat conversations (a ticket opened with a greeting, nothing enqueued). Each has a customer socket
   (``/ws/chat/<token>/``) and the live thread of the agent console (``/ws/agent/tickets/<id>/``) open
   in the browser of one of the agents (conversation i → agent i mod K), as an agent keeps the tickets
   of their queue open. Every agent also polls the queue list's change counter every 10 s, as the
   console's list page does. Like ``static/supportflow/chat.js``, every socket resyncs from its last
   sequence number on (re)connect, and a customer re-sends unconfirmed messages with the same id.
4. For ``--duration`` seconds every customer sends a question every 20–40 s (uniform jitter; the first
   within the first 30 s), drawn from ``pipeline_bench.py``'s questions (20 % unanswerable or asking
   for a person). Once the AI hands a conversation over (the notice, or an AI draft for the agents),
   its agent answers each new customer message after 3–10 s of "reading and typing", through the
   console's reply box: the ticket page once (GET, for the CSRF token), then the htmx POST of the
   reply form — the path an agent's browser takes.
5. Then it waits (bounded) until the broker queue is empty, the worker idle and every agent reply
   made, sends a resync from 0 on every socket, and compares, per message kind, what was sent, what
   the database holds and what every socket received live or after the resync.

Measured: messages/s per kind, delivery latency (sent → the other side's socket), AI reply latency
(customer message stored → the AI's reply, the hand-over notice, or the AI draft reaching the agent),
errors (socket failures, HTTP errors, error notices, server/worker/beat log, failed tasks), the ledger
(sent = stored = delivered, duplicates), and every 5 s: CPU and RSS of the server, worker and beat,
the broker queue, PostgreSQL connections, load. Prints a table, the last stdout line is one JSON object,
and it rewrites the ``## Load: …`` section of ``docs/reliability.md``. Every wait is bounded; the
subprocesses are always stopped (try/finally, SIGINT, SIGTERM).
"""

# ruff: noqa: S311, S603 — random only paces the load; the subprocesses are this interpreter

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import _harness
import chat_bench
import pipeline_bench
from _harness import (
    BASE_DIR,
    Server,
    close_django_connections,
    dist,
    flush_redis_dbs,
    fmt,
    log,
    machine_meta,
    manage,
    raise_nofile_limit,
    recreate_database,
    run_async,
    run_main,
    stop_on_sigterm,
)

DB_NAME = "supportflow_loadrun"
SEED_TEMPLATE = "supportflow_loadrun_seed"  # the seeded database, kept for --reuse-seed
# Shared with pipeline_bench.py (never run both against one Redis server at once): 0-2 app, 3-12 tests,
# 5-7 chat bench, 8-9 kb bench, 13-15 pipeline bench — all 16 default databases are taken.
REDIS_DB, CACHE_DB, CHANNELS_DB = 13, 14, 15
SECRET_KEY = "supportflow-load-run-only-secret-key-never-used-outside-this-script-0123456789"  # noqa: S105
RATE_OVERRIDE = "1000000/60"
RATE_ENV = ("CHAT_RATE_PER_CONVERSATION", "CHAT_RATE_PER_IP", "CHAT_RATE_START_PER_IP")
HEADING_TEMPLATE = "## Load: {n} conversations for {minutes}"
RESYNC_BATCH = 200  # tickets.consumers.RESYNC_BATCH
QUEUE_KEYS = (*pipeline_bench.AI_QUEUE_KEYS, "celery", "housekeeping")
POLL_EVERY = 10.0  # the console's queue list: hx-trigger="every 10s"
SAMPLE_EVERY = 5.0

LI_START_RE = re.compile(r'<li id="msg-(\d+)" class="msg msg-(\w+)[^"]*"([^>]*)>')
CID_RE = re.compile(r'data-client-id="([^"]*)"')
TOKEN_RE = re.compile(r"\b(lr-[0-9a-f]{12})\b")
ERROR_TEXT_RE = re.compile(r'id="chat-error"[^>]*>([^<]*)<')
TASK_END_RE = re.compile(  # the app's log format (supportflow.logs), not Celery's default
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \w+ [\w.]+: Task tickets\.(?:ai\.)?tasks\.process_message\[[^\]]+\] "
    r"(?:succeeded in ([\d.]+)s: '?([\w ]+?)'?(?: \[|$)|raised unexpected: (\w+)|retry: (.{0,80}))"
)


def heading(args) -> str:
    minutes = args.duration / 60
    span = f"{minutes:g} minute{'s' if minutes != 1 else ''}" if minutes >= 1 else f"{args.duration:g} seconds"
    return HEADING_TEMPLATE.format(n=args.conversations, minutes=span)


# --- setup -----------------------------------------------------------------------------------------


def load_env(base: dict[str, str], data_dir: Path) -> dict[str, str]:
    return _harness.bench_env(
        base, data_dir, script="load_run.py", db_name=DB_NAME, redis_db=REDIS_DB, cache_db=CACHE_DB,
        channels_db=CHANNELS_DB, secret_key=SECRET_KEY, ALLOWED_HOSTS="127.0.0.1,localhost",
        FEATURE_AI_PIPELINE="true", FEATURE_AI_AUTO_REPLY="true", **dict.fromkeys(RATE_ENV, RATE_OVERRIDE),
    )  # fmt: skip


def make_agents(count: int) -> list[tuple[int, str, str]]:
    """``count`` agents in every department with a session each: (user id, username, session key).
    The demo staff are set unavailable, so automatic assignment picks these."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from tickets import roles
    from tickets.models import AgentProfile, Department

    AgentProfile.objects.update(is_available=False)
    departments = list(Department.objects.all())
    group = Group.objects.get(name=roles.AGENTS)
    made = []
    for i in range(count):
        user = get_user_model().objects.create_user(
            f"load-agent-{i:02d}", f"load-agent-{i:02d}@example.com", None, first_name=f"Agent{i:02d}", is_staff=True
        )
        user.groups.add(group)
        profile = AgentProfile.objects.create(user=user, max_open_tickets=1000)
        profile.departments.set(departments)
        browser = Client()
        browser.force_login(user)
        made.append((user.pk, user.username, browser.cookies["sessionid"].value))
    return made


def make_conversations(count: int) -> list[tuple[int, str]]:
    from tickets import selectors, services
    from tickets.models import Ticket

    made = []
    for i in range(count):
        customer = services.customer_get_or_create(email=f"load-{i}@loadrun.example.com", name=f"Load customer {i}")
        ticket = services.ticket_create(
            customer=customer, subject=f"Load run {i}", body=pipeline_bench.OPENING, channel=Ticket.Channel.CHAT
        )
        made.append((ticket.pk, selectors.ticket_customer_token(ticket=ticket)))
    return made


def clone_seeded(database_url: str) -> bool:
    """``--reuse-seed``: the database as the last full setup left it (migrated, seeded, passages scanned),
    copied from its template in seconds instead of minutes. False when there is no template yet."""
    import psycopg

    with psycopg.connect(_harness.with_path(database_url, "/postgres"), autocommit=True, connect_timeout=10) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SEED_TEMPLATE,)).fetchone() is None:
            return False
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}" TEMPLATE "{SEED_TEMPLATE}"')
    log(f"database {DB_NAME} cloned from {SEED_TEMPLATE} (--reuse-seed)")
    return True


def save_seeded(database_url: str) -> None:
    """Keep the freshly seeded database as the template a later ``--reuse-seed`` run starts from."""
    import psycopg

    with psycopg.connect(_harness.with_path(database_url, "/postgres"), autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SEED_TEMPLATE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SEED_TEMPLATE}" TEMPLATE "{DB_NAME}"')


class Beat(_harness.Subprocess):
    """``celery beat`` with the project's scheduler (``supportflow.beat``), as ``make run`` starts it."""

    def __init__(self, env: dict[str, str], log_path: Path, work_dir: Path) -> None:
        self.env, self.log_path, self.work_dir = env, log_path, work_dir
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    def start(self) -> None:
        cmd = [
            sys.executable, "-m", "celery", "-A", "supportflow", "beat", "--loglevel", "INFO",
            "--scheduler", "supportflow.beat:SingleBeatScheduler",
            "--pidfile", str(self.work_dir / "beat.pid"),
        ]  # fmt: skip
        self._log_file = open(self.log_path, "w")  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen(
            cmd, env=self.env, cwd=BASE_DIR, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log_findings(self) -> dict:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        kinds = Counter()
        for line in lines:
            if re.search(r"\b(ERROR|CRITICAL|WARNING)\b", line) and not any(
                n in line for n in pipeline_bench.LOG_NOISE
            ):
                kinds[re.sub(r"\d+", "N", line.split("] ", 1)[-1])[:140]] += 1
        sent = Counter(
            m.group(1) for line in lines for m in [re.search(r"Sending due task .+ \(([\w.]+)\)\s*$", line)] if m
        )
        return {
            "lines": len(lines),
            "tracebacks": sum(1 for line in lines if line.startswith("Traceback")),
            "warnings_errors": kinds.most_common(5),
            "tasks_sent": dict(sent),
        }


# --- the load ---------------------------------------------------------------------------------------


@dataclass
class Conv:
    index: int
    ticket_id: int
    token: str
    agent: int
    questions: list[tuple[str, str, str]]
    sent: dict[str, float] = field(default_factory=dict)  # client id -> wall time of the send
    payloads: dict[str, str] = field(default_factory=dict)
    confirmed: set[str] = field(default_factory=set)
    cust_at: dict[int, float] = field(default_factory=dict)  # seq -> first receipt on the customer socket
    agent_at: dict[int, float] = field(default_factory=dict)  # seq -> first receipt on the agent socket
    cid_at_agent: dict[str, float] = field(default_factory=dict)
    token_at_customer: dict[str, float] = field(default_factory=dict)
    token_at_agent: dict[str, float] = field(default_factory=dict)
    panel_at: list[float] = field(default_factory=list)  # the AI panel placeholder on the agent socket
    cust_last: int = 1
    agent_last: int = 1
    handed_over: bool = False
    customer_seqs: set[int] = field(default_factory=set)  # customer messages the agent socket has seen
    answered_upto: int = 1
    reply_task: asyncio.Task | None = None
    replies: dict[str, dict] = field(default_factory=dict)  # token -> {at, status, ok}
    page_loaded: bool = False
    resync: dict[str, set[int] | None] = field(default_factory=lambda: {"customer": None, "agent": None})
    resync_done: dict[str, bool] = field(default_factory=lambda: {"customer": False, "agent": False})


@dataclass
class Load:
    args: argparse.Namespace
    server: Server
    worker: pipeline_bench.Worker
    beat: Beat | None
    agents: list[tuple[int, str, str]]
    convs: list[Conv]
    base_ws: str
    origin: str
    broker_url: str
    database_url: str
    stats: chat_bench.RunStats = field(default_factory=lambda: chat_bench.RunStats("load", 0, 0))
    live_duplicates: Counter = field(default_factory=Counter)
    error_frames: Counter = field(default_factory=Counter)
    http: Counter = field(default_factory=Counter)  # (endpoint, status or exception) -> count
    http_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    samples: list[dict] = field(default_factory=list)
    sampler_errors: Counter = field(default_factory=Counter)
    http_clients: list = field(default_factory=list)  # one httpx client (cookie jar) per agent
    clients: list[chat_bench.Client] = field(default_factory=list)
    replying: bool = True
    t0: float = 0.0
    t_end: float = 0.0


def parse_frame(frame: str) -> list[tuple[int, str, str, str]]:
    """(seq, author kind, client id, the message's own HTML) of every message in a fragment."""
    found = list(LI_START_RE.finditer(frame))
    out = []
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(frame)
        cid = CID_RE.search(match.group(3))
        out.append((int(match.group(1)), match.group(2), cid.group(1) if cid else "", frame[match.end() : end]))
    return out


def note_error(load: Load, frame: str) -> None:
    if 'id="chat-error"' in frame:
        found = ERROR_TEXT_RE.search(frame)
        text = (found.group(1).strip() if found else "") or "(empty)"
        if text:
            load.error_frames[text[:120]] += 1


def resync_collect(load: Load, conv: Conv, side: str, items) -> bool:
    """During the final resync every message on the socket counts as delivered after the resync."""
    got = conv.resync[side]
    if got is None:
        return False
    got.update(seq for seq, *_ in items if seq > 1)
    if any(seq == 1 for seq, *_ in items) and len(items) < RESYNC_BATCH:
        conv.resync_done[side] = True
    return True


def customer_handler(load: Load, conv: Conv):
    def on_frame(_perf: float, frame) -> None:
        now = time.time()
        frame = frame if isinstance(frame, str) else frame.decode()
        note_error(load, frame)
        items = parse_frame(frame)
        if not items or resync_collect(load, conv, "customer", items):
            return
        for seq, kind, cid, html in items:
            if seq in conv.cust_at:
                if seq > 1:
                    load.live_duplicates[f"customer socket: {kind}"] += 1
                continue
            conv.cust_at[seq] = now
            conv.cust_last = max(conv.cust_last, seq)
            if kind == "customer" and cid in conv.sent:
                conv.confirmed.add(cid)
            elif kind == "agent":
                token = TOKEN_RE.search(html)
                if token:
                    conv.token_at_customer.setdefault(token.group(1), now)

    return on_frame


def agent_handler(load: Load, conv: Conv):
    def on_frame(_perf: float, frame) -> None:
        now = time.time()
        frame = frame if isinstance(frame, str) else frame.decode()
        note_error(load, frame)
        if 'id="sf-ai"' in frame:
            conv.panel_at.append(now)
            conv.handed_over = True
        items = parse_frame(frame)
        if items and not resync_collect(load, conv, "agent", items):
            for seq, kind, cid, html in items:
                if seq in conv.agent_at:
                    if seq > 1:
                        load.live_duplicates[f"agent socket: {kind}"] += 1
                    continue
                conv.agent_at[seq] = now
                conv.agent_last = max(conv.agent_last, seq)
                if kind == "customer":
                    conv.customer_seqs.add(seq)
                    if cid in conv.sent:
                        conv.cid_at_agent.setdefault(cid, now)
                elif kind == "system" and seq > 1:
                    conv.handed_over = True
                elif kind == "agent":
                    token = TOKEN_RE.search(html)
                    if token:
                        conv.token_at_agent.setdefault(token.group(1), now)
        maybe_reply(load, conv)

    return on_frame


def maybe_reply(load: Load, conv: Conv) -> None:
    """A handed-over conversation with a customer message newer than the agent's last reply: reply."""
    if not (load.replying and conv.handed_over) or (conv.reply_task is not None and not conv.reply_task.done()):
        return
    if max(conv.customer_seqs, default=0) > conv.answered_upto:
        conv.reply_task = asyncio.get_running_loop().create_task(agent_reply(load, conv))


async def http_call(load: Load, client, endpoint: str, method: str, url: str, **kwargs):
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except Exception as exc:
        load.http[(endpoint, type(exc).__name__)] += 1
        return None
    load.http_ms[endpoint].append(1000 * (time.perf_counter() - started))
    load.http[(endpoint, str(response.status_code))] += 1
    return response


async def agent_reply(load: Load, conv: Conv) -> None:
    args = load.args
    target = max(conv.customer_seqs)
    await asyncio.sleep(random.uniform(args.think_min, args.think_max))
    client = load.http_clients[conv.agent]
    path = f"/admin/tickets/ticket/{conv.ticket_id}/change/"
    if not conv.page_loaded:
        page = await http_call(load, client, "ticket page (GET)", "GET", path)
        if page is None or page.status_code != 200:
            conv.answered_upto = target  # counted as an error; the next customer message retries
            return
        conv.page_loaded = True
    token = f"lr-{random.getrandbits(48):012x}"
    body = f"Thanks for your patience — I'm looking into this now and will update you shortly. ({token})"
    csrf = client.cookies.get("csrftoken", "")
    data = {"csrfmiddlewaretoken": csrf, "_reply": "1", "body": body, "then_status": ""}
    headers = {"HX-Request": "true", "X-CSRFToken": csrf, "Origin": load.origin, "Referer": load.origin + path}
    at = time.time()
    response = await http_call(load, client, "reply (htmx POST)", "POST", path, data=data, headers=headers)
    ok = response is not None and response.status_code == 200 and "Reply sent." in response.text
    conv.replies[token] = {"at": at, "status": None if response is None else response.status_code, "ok": ok}
    conv.answered_upto = target
    maybe_reply(load, conv)


async def queue_poller(load: Load, agent: int, stop: asyncio.Event) -> None:
    """The console's list page: GET changes/?since=<loaded at> every 10 s."""
    import datetime as dt

    client = load.http_clients[agent]
    since = dt.datetime.now(dt.UTC).isoformat()
    await asyncio.sleep(random.uniform(0, POLL_EVERY))
    for _ in range(1_000_000):  # bounded; stopped by the event long before
        if stop.is_set():
            return
        await http_call(
            load, client, "queue poll (GET)", "GET", "/admin/tickets/ticket/changes/", params={"since": since}
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_EVERY)


async def customer_loop(load: Load, conv: Conv, customer: chat_bench.Client) -> None:
    args = load.args
    at = load.t0 + random.uniform(0, args.first_within)
    for k in range(10_000):  # bounded by the duration long before
        if at >= load.t_end:
            return
        await asyncio.sleep(max(0.0, at - time.time()))
        _kind, _topic, question = conv.questions[k % len(conv.questions)]
        cid = f"lr{conv.index}m{k}-{random.getrandbits(32):08x}"
        payload = json.dumps({"type": "message", "body": question, "client_id": cid})
        conv.sent[cid] = time.time()
        conv.payloads[cid] = payload
        if not await customer.send(payload):
            load.stats.sends_while_down += 1  # re-sent with the same id when the socket is back
        at += random.uniform(args.interval_min, args.interval_max)


def task_runs(log_path: Path) -> list[tuple[float, float | None, str]]:
    """(ended at, runtime s, outcome) of each ``process_message`` run in the worker log; a failed run
    has no runtime and the outcome ``failed: <exception>`` (or ``retry``)."""
    import calendar

    runs = []
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return runs
    for line in lines:
        found = TASK_END_RE.match(line)
        if found:
            stamp, millis, runtime, outcome, failed, _retry = found.groups()
            at = calendar.timegm(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
            if runtime is not None:
                runs.append((at, float(runtime), outcome))
            else:
                runs.append((at, None, f"failed: {failed}" if failed else "retry"))
    return runs


def sweep_requeues(log_path: Path) -> list[int]:
    """What each stalled-message sweep returned (messages it re-enqueued), from the log of the worker that
    runs it (the task was ``tickets.tasks.ai_recover_stalled`` before the AI wing moved to ``tickets/ai``)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return []
    sweep = r"tickets\.(?:ai\.tasks\.recover_stalled|tasks\.ai_recover_stalled)\[[^\]]+\] succeeded in [\d.]+s: (\d+)"
    return [int(n) for n in re.findall(sweep, text)]


def process_tree(pid: int):
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_usage(pid: int | None) -> tuple[float | None, float | None]:
    """(CPU seconds, RSS MB) of a process and its children."""
    import psutil

    if pid is None:
        return None, None
    cpu = rss = 0.0
    for proc in process_tree(pid):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            cpu += times.user + times.system
            rss += proc.memory_info().rss
    return cpu, round(rss / 2**20, 1)


async def sampler(load: Load, stop: asyncio.Event) -> None:
    """Every 5 s: CPU % and RSS of server, worker (+ pool) and beat, broker queue, PostgreSQL
    connections by state, machine busy %, load, unanswered customer messages."""
    import psycopg
    import redis.asyncio as aioredis

    broker = aioredis.Redis.from_url(load.broker_url, socket_timeout=2, socket_connect_timeout=2)
    pg = await psycopg.AsyncConnection.connect(_harness.with_path(load.database_url, "/postgres"), autocommit=True)
    procs = {"server": load.server, "worker": load.worker, "beat": load.beat}

    def usage() -> dict:
        return {name: tree_usage(p.proc.pid if p is not None and p.alive() else None) for name, p in procs.items()}

    last_at, last_use, last_busy = time.perf_counter(), usage(), pipeline_bench.machine_busy()
    started = time.time()
    try:
        for _ in range(1_000_000):  # bounded; stopped by the event long before
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)
            if stop.is_set():
                return
            now, use, busy = time.perf_counter(), usage(), pipeline_bench.machine_busy()
            wall = now - last_at
            sample: dict = {"t": round(time.time() - started, 1), "load1": round(os.getloadavg()[0], 2)}
            for name in procs:
                cpu, rss = use[name]
                before = last_use[name][0]
                sample[f"{name}_cpu_pct"] = round(100 * (cpu - before) / wall, 1) if None not in (cpu, before) else None
                sample[f"{name}_rss_mb"] = rss
            total = busy[1] - last_busy[1]
            sample["machine_busy_pct"] = round(100 * (busy[0] - last_busy[0]) / total, 1) if total > 0 else None
            last_at, last_use, last_busy = now, use, busy
            try:
                sample["queued"] = sum([await broker.llen(key) for key in QUEUE_KEYS])
            except Exception as exc:
                load.sampler_errors[f"redis {type(exc).__name__}"] += 1
            try:
                cur = await pg.execute(
                    "SELECT coalesce(state, '?'), count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND pid <> pg_backend_pid() GROUP BY 1",
                    (DB_NAME,),
                )
                by_state = dict(await cur.fetchall())
                sample["db_conns"] = sum(by_state.values())
                sample["db_active"] = by_state.get("active", 0)
            except Exception as exc:
                load.sampler_errors[f"postgres {type(exc).__name__}"] += 1
            sample["sent"] = sum(len(c.sent) for c in load.convs)
            sample["agent_replies"] = sum(len(c.replies) for c in load.convs)
            sample["sockets_open"] = sum(1 for c in load.clients if c.alive)
            lag = load.stats.loop_lag[-200:]
            sample["client_lag_max_ms"] = round(1000 * max(lag), 1) if lag else None
            load.samples.append(sample)
    finally:
        await broker.aclose()
        await pg.close()


def settle_after_beat(sweeper_log: Path, broker_url: str, *, timeout: float) -> tuple[int | None, float]:
    """Beat's first ``ai_recover_stalled`` sweep picks up ``seed_demo``'s simulated history (customer
    messages without an AI decision): wait for it and for the worker to work it off, so it does not
    land on the load. Returns (messages it re-enqueued, seconds waited); bounded by ``timeout``."""
    import redis

    broker = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            time.sleep(2.0)
            sweeps = sweep_requeues(sweeper_log)
            if not sweeps:
                continue
            if sum(broker.llen(key) for key in pipeline_bench.AI_QUEUE_KEYS) == 0 and worker_idle():
                return sweeps[0], time.monotonic() - started
        log(f"the queue was not empty {timeout:.0f}s after beat started; starting the load anyway")
        sweeps = sweep_requeues(sweeper_log)
        return (sweeps[0] if sweeps else None), time.monotonic() - started
    finally:
        broker.close()


def worker_idle() -> bool | None:
    from supportflow.celery import app

    inspect = app.control.inspect(timeout=2.0)
    active, reserved = inspect.active(), inspect.reserved()
    if active is None or reserved is None:
        return None
    return not any(active.values()) and not any(reserved.values())


async def drain(load: Load) -> tuple[float, bool]:
    """After the last send: until the broker queue is empty, the worker idle and every due agent reply
    made, twice in a row 2 s apart (bounded by --drain-timeout)."""
    import redis.asyncio as aioredis

    broker = aioredis.Redis.from_url(load.broker_url, socket_timeout=2, socket_connect_timeout=2)
    started = time.time()
    calm = 0
    try:
        while time.time() - started < load.args.drain_timeout:
            await asyncio.sleep(2.0)
            queued = sum([await broker.llen(key) for key in pipeline_bench.AI_QUEUE_KEYS])
            idle = await asyncio.to_thread(worker_idle) if queued == 0 else False
            replies_due = any(
                (c.reply_task is not None and not c.reply_task.done())
                or (c.handed_over and max(c.customer_seqs, default=0) > c.answered_upto)
                for c in load.convs
            )
            calm = calm + 1 if (queued == 0 and idle and not replies_due) else 0
            if calm >= 2:
                return time.time() - started, False
    finally:
        await broker.aclose()
    return time.time() - started, True


async def run_load(load: Load) -> dict:
    import httpx2 as httpx

    args = load.args
    load.http_clients = [
        httpx.AsyncClient(
            base_url=load.server.base,
            cookies={"sessionid": session},
            timeout=httpx.Timeout(30.0, connect=10.0),
            trust_env=False,
        )
        for _uid, _name, session in load.agents
    ]
    customers: list[chat_bench.Client] = []
    agents: list[chat_bench.Client] = []
    for conv in load.convs:
        cookie = [("Cookie", f"sessionid={load.agents[conv.agent][2]}")]
        agent = chat_bench.Client(
            load.stats, agent_handler(load, conv), f"{load.base_ws}/ws/agent/tickets/{conv.ticket_id}/", cookie
        )
        customer = chat_bench.Client(
            load.stats, customer_handler(load, conv), f"{load.base_ws}/ws/chat/{conv.token}/", []
        )
        agent.on_reopen = reopen_agent(conv, agent)
        customer.on_reopen = reopen_customer(load, conv, customer)
        agents.append(agent)
        customers.append(customer)
    load.clients = customers + agents
    sem = asyncio.Semaphore(50)
    log(f"opening {len(load.clients)} sockets ({len(load.convs)} customers, {len(load.convs)} agent threads)")
    connect_started = time.perf_counter()
    await asyncio.gather(*(c.open(load.origin, sem, args.connect_timeout) for c in load.clients))
    connect_s = time.perf_counter() - connect_started
    for conv, customer, agent in zip(load.convs, customers, agents, strict=True):  # chat.js: resync on connect
        await customer.send(json.dumps({"type": "resync", "after": conv.cust_last}))
        await agent.send(json.dumps({"type": "resync", "after": conv.agent_last}))
    log(f"{sum(1 for c in load.clients if c.alive)} of {len(load.clients)} sockets open in {connect_s:.1f}s")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    background = [
        loop.create_task(sampler(load, stop)),
        loop.create_task(chat_bench.loop_lag_probe(load.stats, stop)),
        *(loop.create_task(queue_poller(load, i, stop)) for i in range(len(load.agents))),
    ]
    cpu0 = {"client": time.process_time()}
    load.t0 = time.time() + 1.0
    load.t_end = load.t0 + args.duration
    log(
        f"load: {len(load.convs)} conversations for {args.duration:g}s, "
        f"a question every {args.interval_min:g}–{args.interval_max:g}s"
    )
    progress = loop.create_task(report_progress(load, stop))
    await asyncio.gather(*(customer_loop(load, conv, cust) for conv, cust in zip(load.convs, customers, strict=True)))
    sending_s = time.time() - load.t0
    queued_at_end = load.samples[-1].get("queued") if load.samples else None
    log("sending done; draining (AI queue, worker, agent replies)")
    drain_s, drain_timed_out = await drain(load)
    load.replying = False
    pending_replies = [c.reply_task for c in load.convs if c.reply_task is not None and not c.reply_task.done()]
    if pending_replies:
        await asyncio.wait(pending_replies, timeout=args.think_max + 35)
    window_s = time.time() - load.t0
    client_cpu = time.process_time() - cpu0["client"]
    stop.set()
    await asyncio.wait([*background, progress], timeout=10)

    log("final resync from 0 on every socket")
    for conv in load.convs:
        conv.resync = {"customer": set(), "agent": set()}

    deadline = time.time() + args.resync_timeout
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.resync() for c in load.clients)), args.resync_timeout)
    while time.time() < deadline and not all(all(c.resync_done.values()) for c in load.convs):
        await asyncio.sleep(0.05)
    resync_incomplete = sum(1 for c in load.convs for done in c.resync_done.values() if not done)
    await chat_bench.close_all(load.clients, load.stats)
    for client in load.http_clients:
        await client.aclose()
    return {
        "connect_s": round(connect_s, 1),
        "sending_s": round(sending_s, 1),
        "drain_s": round(drain_s, 1),
        "drain_timed_out": drain_timed_out,
        "queued_at_end_of_sending": queued_at_end,
        "window_s": round(window_s, 1),
        "client_cpu_pct": round(100 * client_cpu / window_s, 1) if window_s > 0 else None,
        "resync_incomplete": resync_incomplete,
        "replies_unfinished": sum(1 for t in pending_replies if not t.done()),
    }


def reopen_customer(load: Load, conv: Conv, customer: chat_bench.Client):
    async def on_reopen() -> None:  # chat.js: resync from the last seq, then re-send what is unconfirmed
        await customer.send(json.dumps({"type": "resync", "after": conv.cust_last}))
        for cid, payload in list(conv.payloads.items()):
            if cid not in conv.confirmed and await customer.send(payload):
                load.stats.resent += 1

    return on_reopen


def reopen_agent(conv: Conv, agent: chat_bench.Client):
    async def on_reopen() -> None:
        await agent.send(json.dumps({"type": "resync", "after": conv.agent_last}))

    return on_reopen


async def report_progress(load: Load, stop: asyncio.Event, every: float = 60.0) -> None:
    for _ in range(100_000):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return
        last = load.samples[-1] if load.samples else {}
        log(
            f"  t={time.time() - load.t0:.0f}s sent {sum(len(c.sent) for c in load.convs)} customer, "
            f"{sum(len(c.replies) for c in load.convs)} agent replies; handed over "
            f"{sum(1 for c in load.convs if c.handed_over)}; queue {last.get('queued')}; server CPU "
            f"{last.get('server_cpu_pct')}% worker {last.get('worker_cpu_pct')}%; load {last.get('load1')}; "
            f"sockets open {last.get('sockets_open')}; dropped {load.stats.unexpected_closes}"
        )


# --- figures ----------------------------------------------------------------------------------------


def read_back(load: Load, run: dict) -> dict:
    """The ledger, the latencies and the AI outcomes, from the database joined with what the sockets saw."""
    from tickets.models import AIDraft, Message

    convs = {c.ticket_id: c for c in load.convs}
    rows = list(
        Message.objects.filter(ticket_id__in=convs, seq__gt=1)
        .order_by("ticket_id", "seq")
        .values("pk", "ticket_id", "seq", "author_kind", "client_msg_id", "created_at", "body", "is_internal")
    )
    drafts = {d["in_reply_to_id"]: d for d in AIDraft.objects.filter(ticket_id__in=convs).values()}
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_kind[row["author_kind"]].append(row)

    ledger = {}
    for kind in ("customer", "agent", "ai", "system"):
        mine = by_kind.get(kind, [])
        to_customer = [r for r in mine if not r["is_internal"]]

        def delivered(side: str, items: list[dict]) -> tuple[int, int]:
            live = after = 0
            for r in items:
                conv = convs[r["ticket_id"]]
                seen = conv.cust_at if side == "customer" else conv.agent_at
                resynced = conv.resync[side] or set()
                live += r["seq"] in seen
                after += r["seq"] in seen or r["seq"] in resynced
            return live, after

        entry = {"stored": len(mine)}
        entry["to_customer_live"], entry["to_customer_after_resync"] = delivered("customer", to_customer)
        entry["to_agent_live"], entry["to_agent_after_resync"] = delivered("agent", mine)
        entry["public"] = len(to_customer)
        ledger[kind] = entry
    sent_cids = {cid for c in load.convs for cid in c.sent}
    stored_cids = Counter(r["client_msg_id"] for r in by_kind.get("customer", []))
    ledger["customer"]["sent"] = len(sent_cids)
    ledger["customer"]["stored_of_sent"] = sum(1 for cid in sent_cids if cid in stored_cids)
    ledger["customer"]["stored_duplicates"] = sum(n - 1 for n in stored_cids.values() if n > 1)
    replies = {token: r for c in load.convs for token, r in c.replies.items()}
    stored_tokens = Counter(
        m.group(1) for r in by_kind.get("agent", []) for m in [TOKEN_RE.search(r["body"])] if m is not None
    )
    ledger["agent"]["sent"] = sum(1 for r in replies.values() if r["ok"])
    ledger["agent"]["attempted"] = len(replies)
    ledger["agent"]["stored_of_sent"] = sum(1 for t, r in replies.items() if r["ok"] and t in stored_tokens)
    ledger["agent"]["stored_duplicates"] = sum(n - 1 for n in stored_tokens.values() if n > 1)
    ai_sent = [d for d in drafts.values() if d["sent_message_id"] is not None and d["status"] == "sent"]
    ledger["ai"]["sent"] = len(ai_sent)
    ledger["system"]["sent"] = None  # made by the server (the hand-over notice); stored is where it starts
    for entry in ledger.values():
        sent = entry.get("sent")
        public = entry["public"]
        entry["zero_loss"] = (
            (sent is None or sent == entry["stored"])
            and entry["to_agent_after_resync"] == entry["stored"]
            and entry["to_customer_after_resync"] == public
            and not entry.get("stored_duplicates")
        )
        entry["all_live"] = entry["to_agent_live"] == entry["stored"] and entry["to_customer_live"] == public

    # Delivery latency: sent -> the other side's socket (live only).
    delivery: dict[str, list[float]] = defaultdict(list)
    for conv in load.convs:
        for cid, at in conv.sent.items():
            if cid in conv.cid_at_agent:
                delivery["customer → agent"].append(1000 * (conv.cid_at_agent[cid] - at))
        for token, r in conv.replies.items():
            if token in conv.token_at_customer:
                delivery["agent → customer"].append(1000 * (conv.token_at_customer[token] - r["at"]))
    for kind, label in (("ai", "AI → customer"), ("system", "hand-over notice → customer")):
        for r in by_kind.get(kind, []):
            at = convs[r["ticket_id"]].cust_at.get(r["seq"])
            if at is not None:
                delivery[label].append(1000 * (at - r["created_at"].timestamp()))
    delivery_all = [v for values in delivery.values() for v in values]

    # AI reply latency: customer message stored -> the AI's outcome reaching a socket.
    outcome_ms: dict[str, list[float]] = defaultdict(list)
    outcomes = Counter()
    seqs_by_ticket = defaultdict(list)
    for r in by_kind.get("customer", []):
        seqs_by_ticket[r["ticket_id"]].append(r["seq"])
    notices = defaultdict(list)
    for r in by_kind.get("system", []):
        notices[r["ticket_id"]].append(r)
    seq_of = {r["pk"]: r["seq"] for r in rows}
    for r in by_kind.get("customer", []):
        conv, stored = convs[r["ticket_id"]], r["created_at"].timestamp()
        draft = drafts.get(r["pk"])
        if draft is None:
            later = any(s > r["seq"] for s in seqs_by_ticket[r["ticket_id"]])
            unanswered = "no AI decision" + (
                " (still queued when the drain timed out)" if run["drain_timed_out"] else ""
            )
            outcomes["superseded by the next message" if later else unanswered] += 1
            continue
        if (draft.get("gate") or {}).get("acknowledged"):
            outcomes["acknowledged (no reply needed)"] += 1
            continue
        if draft["status"] == "sent" and draft["sent_message_id"] is not None:
            outcomes["answered by the AI"] += 1
            at = conv.cust_at.get(seq_of.get(draft["sent_message_id"]))
            if at is not None:
                outcome_ms["answered by the AI"].append(1000 * (at - stored))
            continue
        drafted = draft["created_at"].timestamp()
        notice = next((n for n in notices[r["ticket_id"]] if n["seq"] > r["seq"]), None)
        if notice is not None and abs(notice["created_at"].timestamp() - drafted) < 5.0:
            outcomes["handed over (notice)"] += 1
            at = conv.cust_at.get(notice["seq"])
            if at is not None:
                outcome_ms["handed over (notice)"].append(1000 * (at - stored))
            continue
        outcomes["draft for the agent (already handed over)"] += 1
        at = next((t for t in conv.panel_at if t >= drafted - 0.5), None)
        if at is not None:
            outcome_ms["draft for the agent (already handed over)"].append(1000 * (at - stored))
    ai_all = [v for values in outcome_ms.values() for v in values]

    window = run["sending_s"] or 1.0
    t0, t_end = load.t0, load.t_end
    in_window = Counter(r["author_kind"] for r in rows if t0 <= r["created_at"].timestamp() <= t_end)
    rates = {kind: round(in_window.get(kind, 0) / window, 2) for kind in ("customer", "agent", "ai", "system")}
    rates["all"] = round(sum(in_window.values()) / window, 2)
    from tickets.models import Ticket

    reasons = Counter(Ticket.objects.filter(pk__in=convs, escalated=True).values_list("escalation_reason", flat=True))
    return {
        "escalation_reasons": reasons.most_common(8),
        "ledger": ledger,
        "delivery_ms": {k: dist(v) for k, v in delivery.items()},
        "delivery_all_ms": dist(delivery_all),
        "ai_reply_ms": {k: dist(v) for k, v in outcome_ms.items()},
        "ai_reply_all_ms": dist(ai_all),
        "ai_outcomes": dict(outcomes),
        "rates_per_s": rates,
        "stored_total": len(rows),
        "handed_over_conversations": sum(1 for c in load.convs if c.handed_over),
    }


def resources(samples: list[dict]) -> dict:
    def series(key: str) -> list[float]:
        return [s[key] for s in samples if s.get(key) is not None]

    def trend(key: str) -> dict:
        values = series(key)
        if not values:
            return {}
        k = max(1, len(values) // 10)
        return {
            "first": round(sum(values[:k]) / k, 1),
            "last": round(sum(values[-k:]) / k, 1),
            "max": max(values),
            "mean": round(sum(values) / len(values), 1),
        }

    keys = (
        "server_cpu_pct", "server_rss_mb", "worker_cpu_pct", "worker_rss_mb", "beat_cpu_pct", "beat_rss_mb",
        "queued", "db_conns", "db_active", "machine_busy_pct", "load1", "client_lag_max_ms", "sockets_open",
    )  # fmt: skip
    return {key: trend(key) for key in keys}


def tables(fig: dict, res: dict, run: dict, errors: dict) -> str:
    r, led = fig["rates_per_s"], fig["ledger"]
    lines = [
        "| messages/s (stored during the sending window) | customer | agent | AI | hand-over notices | all |",
        "|---|---:|---:|---:|---:|---:|",
        f"| | {r['customer']} | {r['agent']} | {r['ai']} | {r['system']} | {r['all']} |",
        "",
        "| latency (ms) | n | p50 | p95 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    d = fig["delivery_all_ms"]
    lines.append(f"| **delivery, all kinds** (sent → other side's socket) | {d['n']} | {fmt(d['p50'])} "
                 f"| **{fmt(d['p95'])}** | {fmt(d['p99'])} | {fmt(d['max'])} |")  # fmt: skip
    for label, d in fig["delivery_ms"].items():
        lines.append(
            f"| delivery: {label} | {d['n']} | {fmt(d['p50'])} | {fmt(d['p95'])} | {fmt(d['p99'])} | {fmt(d['max'])} |"
        )
    d = fig["ai_reply_all_ms"]
    lines.append(f"| **AI reply, all outcomes** (customer message stored → outcome on a socket) | {d['n']} "
                 f"| {fmt(d['p50'])} | **{fmt(d['p95'])}** | {fmt(d['p99'])} | {fmt(d['max'])} |")  # fmt: skip
    for label, d in fig["ai_reply_ms"].items():
        lines.append(
            f"| AI reply: {label} | {d['n']} | {fmt(d['p50'])} | {fmt(d['p95'])} | {fmt(d['p99'])} | {fmt(d['max'])} |"
        )
    lines += [
        "",
        "| kind | sent | stored | to the customer socket: live / after resync (of public) | to the agent socket: "
        "live / after resync | duplicates (DB / live frames) | zero loss |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    dup_frames = errors["live_duplicates"]
    for kind, label in (
        ("customer", "customer"),
        ("agent", "agent reply"),
        ("ai", "AI answer"),
        ("system", "hand-over notice"),
    ):
        e = led[kind]
        frames = sum(n for k, n in dup_frames.items() if k.endswith(f": {kind}"))
        sent = "–" if e.get("sent") is None else e["sent"]
        lines.append(
            f"| {label} | {sent} | {e['stored']} | {e['to_customer_live']} / {e['to_customer_after_resync']} "
            f"(of {e['public']}) | {e['to_agent_live']} / {e['to_agent_after_resync']} "
            f"| {e.get('stored_duplicates', 0)} / {frames} | {'**yes**' if e['zero_loss'] else '**NO**'} |"
        )
    lines += [
        "",
        "| resource | first minute | last minute | mean | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("server_cpu_pct", "server (uvicorn) CPU %"),
        ("server_rss_mb", "server RSS MB"),
        ("worker_cpu_pct", "worker (main + pool) CPU %"),
        ("worker_rss_mb", "worker RSS MB"),
        ("beat_cpu_pct", "beat CPU %"),
        ("beat_rss_mb", "beat RSS MB"),
        ("queued", "broker queue length"),
        ("db_conns", "PostgreSQL connections (all / active)"),
        ("machine_busy_pct", "machine busy % (both cores)"),
        ("load1", "load average (1 min)"),
        ("client_lag_max_ms", "client event-loop lag ms (max per 5 s)"),
    ):
        t = res.get(key) or {}
        extra = ""
        if key == "db_conns" and res.get("db_active"):
            a = res["db_active"]
            extra = f" / {a.get('max')} active"
        lines.append(
            f"| {label} | {fmt(t.get('first'))} | {fmt(t.get('last'))} | {fmt(t.get('mean'))} "
            f"| {fmt(t.get('max'))}{extra} |"
        )
    return "\n".join(lines)


def error_lines(errors: dict, fig: dict) -> list[str]:
    out = []
    http = errors["http"]
    bad = {k: n for k, n in http.items() if not k.split(" → ")[-1].startswith("2")}
    total = sum(http.values())
    out.append(
        f"- HTTP: {total} requests ({', '.join(f'{k} ×{n}' for k, n in sorted(http.items()))}); "
        f"failures: {sum(bad.values()) if bad else 0}."
    )
    s = errors["sockets"]
    out.append(
        f"- Websockets: {s['planned']} opened, {s['conn_failures']} failed to open, {s['unexpected_closes']} dropped "
        f"by the server mid-run (reopened {s['reconnects']}, failed to reopen {s['reconnect_failures']}), "
        f"{s['sends_while_down']} customer sends while down, {s['resent']} re-sent; close codes "
        f"{s['close_codes'] or 'none'}; {s['handler_errors']} client handler errors."
    )
    out.append(
        f"- Error notices on the sockets: {sum(errors['error_frames'].values())}"
        + (f" ({dict(errors['error_frames'])})" if errors["error_frames"] else "")
        + f"; duplicate live frames: {sum(errors['live_duplicates'].values())}"
        + (f" ({dict(errors['live_duplicates'])})" if errors["live_duplicates"] else "")
        + "."
    )
    sl = errors["server_log"]
    out.append(
        f"- Server log: {sl['tracebacks']} tracebacks, {sl['asgi_exception']} × `Exception in ASGI application`, "
        f"5xx responses logged: {errors['server_5xx']}"
        + (f"; {sl['other']}" if sl["other"] else "")
        + (f"; raised in {sl['raised_in']}" if sl["raised_in"] else "")
        + "."
    )
    wl = errors["worker_log"]
    out.append(
        f"- Worker: {errors['tasks']['total']} `process_message` runs ({fmt(errors['tasks']['per_s'], 2)}/s, runtime "
        f"p50 {fmt(errors['tasks']['runtime_ms']['p50'], 0)} / p95 {fmt(errors['tasks']['runtime_ms']['p95'], 0)} ms), "
        f"outcomes {errors['tasks']['outcomes']}; "
        f"{wl['tracebacks']} tracebacks"
        + (f"; {wl['warnings_errors']}" if wl["warnings_errors"] else "; no warnings or errors")
        + "."
    )
    bl = errors.get("beat_log")
    if bl is not None:
        out.append(
            f"- Beat: sent {bl['tasks_sent'] or 'nothing'}; {bl['tracebacks']} tracebacks"
            + (f"; {bl['warnings_errors']}" if bl["warnings_errors"] else "")
            + "."
        )
    sweeps = errors["stalled_sweep_requeued"]
    out.append(
        f"- Stalled-message sweep (`ai_recover_stalled`, beat, every minute): {len(sweeps)} runs, "
        f"{sum(sweeps)} messages re-enqueued."
    )
    none = sum(n for k, n in fig["ai_outcomes"].items() if k.startswith("no AI decision"))
    if none:
        out.append(f"- {none} customer messages had no AI decision when the run stopped.")
    return out


def docs_section(args, fig, res, run, errors, meta, notes) -> str:
    reasons = ", ".join(f"{r or '?'} ×{n}" for r, n in fig["escalation_reasons"])
    also_ran = f", and {args.machine_note}" if getattr(args, "machine_note", "") else ""
    layout_text = (
        f"one Celery worker on every queue (`--pool prefork -c {args.concurrency}`)"
        if getattr(args, "layout", "single") == "single"
        else f"a Celery worker on the `ai` queue only (`--pool prefork -c {args.concurrency}`), one on "
        "`housekeeping,celery` (`-c 1`)"
    )
    setup = (
        f"recreated from `{SEED_TEMPLATE}`, which this script's last full setup left: `--reuse-seed`"
        if getattr(args, "reuse_seed", False)
        else "recreated"
    )
    command = (
        "SF_DATA_DIR=/tmp/sf-load SF_PG_PORT=54405 SF_REDIS_PORT=63405 python -m supportflow.devservices exec -- "
        f".venv/bin/python bench/load_run.py --conversations {args.conversations} --duration {args.duration:g} "
        f"--agents {args.agents}"
        + (f" --drain-timeout {args.drain_timeout:g}" if args.drain_timeout != 300 else "")
        + (" --reuse-seed" if args.reuse_seed else "")
    )
    return f"""{heading(args)}

What it measures: the whole helpdesk under a sustained, realistic load — {args.conversations} chat
conversations at once for {args.duration:g} s, customers and agents on websockets, the AI pipeline on —
and whether anything is lost: messages/s, delivery latency, AI reply latency, errors, and the ledger
sent = stored = delivered per kind of message.

Reproduce (from the repository root; the `SF_*` variables give it its own embedded PostgreSQL and Redis,
leave them out to use the default ones):

```sh
{command}
```

- **Run:** {meta["date"]}, Python {meta["python"]}; like `make run`: one uvicorn, {layout_text}
  and beat (the project's scheduler, `setup_periodic_tasks`),
  `FEATURE_AI_PIPELINE=true`, `LLM_PROVIDER=local` (no API key), `seed_demo` (39 articles), its own
  database `{DB_NAME}` ({setup}) and Redis databases {REDIS_DB}/{CACHE_DB}/{CHANNELS_DB} (shared with
  `pipeline_bench.py`: do not run both against one Redis at once). Chat rate limits raised (every client is
  127.0.0.1). Worker warmed up first ({meta["warmup"]}).
- **Machine:** {meta["cpus"]} cores, {meta["mem_gb"]} GB RAM, **shared**: the clients (one asyncio
  process), uvicorn, the worker, beat, PostgreSQL and Redis all run on it{also_ran}
  (load average {meta["load"]} at the start, mean
  {fmt((res.get("load1") or {}).get("mean"))} / max {fmt((res.get("load1") or {}).get("max"))} during the run;
  the machine was {fmt((res.get("machine_busy_pct") or {}).get("mean"), 0)} % busy on average). Read the
  milliseconds as this machine's at that load, not as a capacity limit.
- **Load:** {args.conversations} conversations, each a customer socket (`/ws/chat/<token>/`) and the agent
  console's live thread of that ticket (`/ws/agent/tickets/<id>/`), open in one of {args.agents} agents'
  sessions (≈{args.conversations / args.agents:.0f} tickets each; every agent also polls the queue list's
  change counter every 10 s). Every customer sends a question every {args.interval_min:g}–{args.interval_max:g} s
  (uniform), {round(100 * args.off_share)} % of them ones the knowledge base cannot answer or asking for a
  person (the questions of `pipeline_bench.py`). After the AI hands a conversation over, its agent answers
  every new customer message after {args.think_min:g}–{args.think_max:g} s, through the ticket page (GET once)
  and the reply box's htmx POST. Sockets behave like `chat.js`: resync from the last sequence number on every
  (re)connect, unconfirmed customer messages re-sent with the same id. At the end: wait until the AI queue
  is empty, the worker idle and every due reply sent (took {run["drain_s"]:g} s), then every socket resyncs
  from 0.
- **Definitions:** *delivery* = sent (customer: the websocket send; agent: the POST; AI and notices: stored,
  `created_at`) → the frame on the other side's socket, live only. *AI reply* = customer message stored →
  the AI's answer or the hand-over notice on the customer's socket, or — once a conversation is handed over,
  when the AI only drafts for the agent — the AI panel refresh on the agent's socket. *Stored* = rows in
  `tickets_message` after the greeting. *After resync* = delivered live or in the final resync.
  Messages/s = rows stored during the sending window ÷ its length.

{tables(fig, res, run, errors)}

AI outcomes per customer message: {", ".join(f"{k} {n}" for k, n in sorted(fig["ai_outcomes"].items()))}
(*superseded*: the customer wrote again before the AI got to the message; the task for the newer one
answers the conversation, both questions included). {fig["handed_over_conversations"]} of {args.conversations}
conversations were handed over to an agent; reasons: {reasons}.

### Errors

{chr(10).join(error_lines(errors, fig))}

### Notes from this run

{chr(10).join(notes)}

The 5-second samples (CPU, RSS, queue, connections, load) and every figure are in the JSON line the
script prints last.
"""


def observations(args, fig, res, run, errors, samples) -> list[str]:
    notes = []
    lost = [k for k, e in fig["ledger"].items() if not e["zero_loss"]]
    if lost:
        notes.append(f"- **Loss or duplicates** in: {', '.join(lost)} (see the ledger).")
    else:
        notes.append(
            "- Zero loss: for every kind, sent = stored = delivered to both sides (after the resync), no duplicates."
        )
    not_live = [k for k, e in fig["ledger"].items() if not e["all_live"]]
    if not_live:
        notes.append(f"- Not everything arrived live ({', '.join(not_live)}); the resync filled the gap.")
    sending = [x["queued"] for x in samples if x.get("queued") is not None and x["t"] <= run["sending_s"] + 1]
    if sending and max(sending):
        k = max(1, len(sending) // 10)
        first, last = sum(sending[:k]) / k, sum(sending[-k:]) / k
        trend = "**growing**" if last > 1.5 * first + 10 else "flat (a standing backlog, not growing)"
        notes.append(
            f"- AI queue while customers were sending: {first:.0f} tasks in the first tenth, {last:.0f} in the last "
            f"(max {max(sending)}): {trend}; after the last send it drained in {run['drain_s']:g} s"
            + (" (**the drain timed out**)." if run.get("drain_timed_out") else ".")
        )
    sweeps = errors.get("stalled_sweep_requeued") or []
    if run.get("pre_load_sweep") is not None:
        notes.append(
            f"- Beat's first stalled-message sweep re-enqueued {run['pre_load_sweep']} customer messages of "
            "`seed_demo`'s simulated history (tickets outside the load, without an AI decision); the load started "
            f"once the worker had worked them off ({run['pre_load_settle_s']:.0f} s). The sweeps during the load "
            f"re-enqueued {sum(sweeps[1:])}."
        )
    elif sweeps and sweeps[0]:
        notes.append(
            f"- Beat's first stalled-message sweep, as beat started just before the load, re-enqueued {sweeps[0]} "
            "customer messages of `seed_demo`'s simulated history (tickets outside the load, without an AI "
            f"decision): they joined the AI queue at the start. The other {len(sweeps) - 1} sweeps re-enqueued "
            f"{sum(sweeps[1:])}."
        )
    reasons = dict(fig.get("escalation_reasons") or [])
    superseded = fig["ai_outcomes"].get("superseded by the next message", 0)
    if superseded:
        notes.append(
            f"- {superseded} customer messages were superseded: the queue wait exceeded the 20–40 s between a "
            "customer's messages, so the pipeline answered each conversation once for several questions. Once a "
            "conversation is handed over the AI only drafts for the agent, so few AI answers reach customers "
            "in a 10-minute conversation of unrelated questions (this workload's questions are independent, not "
            "follow-ups)"
            + (
                f"; {reasons['Customer wrote several times without resolution']} hand-overs were the rule "
                "*customer wrote several times without resolution*, which the queue wait itself provokes"
                if reasons.get("Customer wrote several times without resolution")
                else ""
            )
            + "."
        )
    notice = fig["delivery_ms"].get("hand-over notice → customer") or {}
    if notice.get("p50"):
        notes.append(
            f"- The hand-over notice's delivery (p50 {notice['p50']:.0f} ms) starts at its `created_at`, which is "
            "set before the rest of its transaction (escalate, auto-assign, the AI draft event) commits; the "
            "broadcast goes out on commit."
        )
    tasks, rates = errors["tasks"], fig["rates_per_s"]
    backlog = max(sending, default=0)
    if tasks["per_s"] is not None and rates["customer"] and backlog >= max(10, 0.25 * args.conversations):
        wcpu = (res.get("worker_cpu_pct") or {}).get("mean")
        notes.append(
            f"- The AI pipeline fell behind (up to {backlog} tasks queued): customers sent {rates['customer']:.2f} "
            "messages/s, the worker "
            f"finished {tasks['per_s']:.2f} tasks/s (runtime p50 {fmt(tasks['runtime_ms']['p50'], 0)} ms, p95 "
            f"{fmt(tasks['runtime_ms']['p95'], 0)} ms) while its {args.concurrency} processes got {fmt(wcpu, 0)} % of "
            f"one core on average — the machine was {fmt((res.get('machine_busy_pct') or {}).get('mean'), 0)} % busy "
            f"at a load average of {fmt((res.get('load1') or {}).get('mean'))}. The AI reply latency above is "
            "mostly time waiting in the queue (most tasks were quick *superseded* ones); the backlog at the end "
            "of sending was "
            f"{run['queued_at_end_of_sending']} tasks."
        )
    for name in ("server", "worker"):
        rss = res.get(f"{name}_rss_mb") or {}
        if rss:
            grew = rss["last"] - rss["first"]
            notes.append(
                f"- {name.capitalize()} RSS {rss['first']:.0f} → {rss['last']:.0f} MB "
                f"(first → last minute, max {rss['max']:.0f})"
                + (
                    "; **grew by more than 20 %**, worth watching over a longer run."
                    if grew > 0.2 * rss["first"]
                    else "; flat."
                )
            )
    lag = res.get("client_lag_max_ms") or {}
    if (lag.get("max") or 0) > 100:
        notes.append(
            f"- The clients' own event loop lagged up to {lag['max']:.0f} ms (mean of the 5 s maxima "
            f"{lag['mean']:.0f} ms): part of the latencies is the load generator's, on the same cores."
        )
    notes.append(f"- Client process CPU: {fmt(run['client_cpu_pct'])} % of one core over the run.")
    if run["resync_incomplete"]:
        notes.append(f"- {run['resync_incomplete']} sockets did not finish the final resync in time.")
    return notes


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds customers keep sending")
    parser.add_argument("--agents", type=int, default=16, help="agents (sessions) sharing the conversations")
    parser.add_argument("--interval-min", type=float, default=20.0)
    parser.add_argument("--interval-max", type=float, default=40.0)
    parser.add_argument("--first-within", type=float, default=30.0, help="each customer's first question within")
    parser.add_argument("--think-min", type=float, default=3.0, help="agent's reading/typing time, min seconds")
    parser.add_argument("--think-max", type=float, default=10.0)
    parser.add_argument(
        "--off-share", type=float, default=0.2, help="share of unanswerable / ask-for-a-human questions"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="Celery prefork processes (-c) of the ai worker")
    parser.add_argument(
        "--layout", choices=("split", "single"), default="split",
        help="split (make run's): the ai queue on its own worker, housekeeping on a second (-c 1); single: one worker",
    )  # fmt: skip
    parser.add_argument("--warmup", type=int, default=6, help="max warm-up messages (pipeline_bench's warm-up)")
    parser.add_argument("--warmup-timeout", type=float, default=300.0)
    parser.add_argument("--no-beat", action="store_true", help="do not start celery beat")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument(
        "--machine-note",
        default="",
        help="What else ran on the machine meanwhile, for the docs (e.g. 'a test run overlapped').",
    )
    parser.add_argument("--settle-timeout", type=float, default=300.0, help="max wait for beat's first sweep's work")
    parser.add_argument("--resync-timeout", type=float, default=60.0)
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--reuse-seed",
        action="store_true",
        help=f"start from {SEED_TEMPLATE} (kept by the last full setup) instead of migrate + seed_demo",
    )
    parser.add_argument("--out", default="docs/reliability.md", help="markdown file to update ('' to skip)")
    parser.add_argument("--render", default="", metavar="FILE", help="only rewrite --out from a run's saved stdout")
    args = parser.parse_args(argv)
    if not 1 <= args.conversations <= 2000 or not 1 <= args.agents <= 200 or not 5 <= args.duration <= 7200:
        parser.error("--conversations 1..2000, --agents 1..200, --duration 5..7200")
    if not 0 < args.interval_min <= args.interval_max or not 0 <= args.think_min <= args.think_max:
        parser.error("--interval-min <= --interval-max, --think-min <= --think-max")
    return args


def write_section(out: Path, title: str, section: str) -> None:
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            "# Reliability\n\nHow SupportFlow holds up under sustained load and faults; every figure comes from a "
            "script in `bench/` (see `bench/README.md`).\n"
        )
    _harness.write_docs(out, title, section)


def render(path: Path, out_arg: str) -> int:
    """``--render FILE``: rewrite the section from a run's saved stdout (its last line, the JSON)."""
    payload = json.loads(path.read_text().strip().splitlines()[-1])
    args = argparse.Namespace(**payload["params"])
    fig, res, run, errors, meta = (payload[k] for k in ("figures", "resources", "run", "errors", "meta"))
    notes = observations(args, fig, res, run, errors, payload["samples"])
    out = _harness.out_path(out_arg)
    write_section(out, heading(args), docs_section(args, fig, res, run, errors, meta, notes))
    print("\n".join(notes))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(Path(args.render), args.out)
    import logging

    for name in ("httpx2", "httpcore2", "httpx", "httpcore"):  # one INFO line per request otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
    rng = random.Random(args.seed)
    random.seed(args.seed)
    stop_on_sigterm()
    raise_nofile_limit()
    work_dir = Path(tempfile.mkdtemp(prefix="supportflow-load-run-"))
    env = load_env(dict(os.environ), work_dir / "data")
    dbs = (REDIS_DB, CACHE_DB, CHANNELS_DB)
    meta = machine_meta()
    log(f"database {DB_NAME}; redis dbs {'/'.join(map(str, dbs))}; logs in {work_dir}; load {meta['load']}")

    flush_redis_dbs(env["REDIS_URL"], dbs)
    cloned = args.reuse_seed and clone_seeded(env["DATABASE_URL"])
    if not cloned:
        recreate_database(env["DATABASE_URL"], DB_NAME)
        log("migrate, setup_periodic_tasks, seed_demo")
        manage(env, "migrate", "--noinput", "-v", "0", timeout=600)
        manage(env, "setup_periodic_tasks", timeout=120)
        manage({**env, "FEATURE_AI_PIPELINE": "false"}, "seed_demo", timeout=1200)
        flush_redis_dbs(env["REDIS_URL"], dbs)
    pipeline_bench.django_setup(env)  # the pipeline flag off in this process: fixtures enqueue nothing
    from tickets.ai.tasks import scan_kb_passages  # the AI wing's door, run in this process

    scanned = scan_kb_passages(limit=None)
    log(f"injection guard scanned {scanned} passages")
    if not cloned:
        close_django_connections()
        save_seeded(env["DATABASE_URL"])
    agents = make_agents(args.agents)
    fixtures = make_conversations(args.conversations)
    per_conv = int(args.duration / args.interval_min) + 3
    drawn = pipeline_bench.draw_questions(per_conv * args.conversations, args.off_share, rng)
    convs = [
        Conv(i, ticket_id, token, i % args.agents, drawn[i * per_conv : (i + 1) * per_conv])
        for i, (ticket_id, token) in enumerate(fixtures)
    ]
    warm = pipeline_bench.make_probes("warmup", pipeline_bench.draw_questions(args.warmup, 0.0, rng))
    close_django_connections()
    log(f"{len(agents)} agents, {len(convs)} conversations, {len(warm)} warm-up tickets")

    server = Server(env=env, log_path=work_dir / "server.log")
    split = args.layout == "split"  # as make run starts it: the ai queue on its own worker, housekeeping on another
    worker = pipeline_bench.Worker(
        env=env, log_path=work_dir / "worker.log", concurrency=args.concurrency, queues="ai" if split else ""
    )
    housekeeping = (
        pipeline_bench.Worker(
            env=env, log_path=work_dir / "housekeeping.log", concurrency=1, queues="housekeeping,celery"
        )
        if split
        else None
    )
    sweeper_log = housekeeping.log_path if housekeeping is not None else worker.log_path
    beat = None if args.no_beat else Beat(env, work_dir / "beat.log", work_dir)
    started = time.perf_counter()
    try:
        ctx = pipeline_bench.start_server_and_worker(server, worker, args, broker_url=env["REDIS_URL"])
        if housekeeping is not None:
            housekeeping.start()
        rounds = pipeline_bench.warm_up(ctx, warm, args.warmup_timeout) if warm else []
        meta["warmup"] = (
            f"{sum(r['answered'] for r in rounds)} of {sum(r['sent'] for r in rounds)} warm-up messages answered"
        )
        pre_load = None
        if beat is not None:
            beat.start()
            log(f"beat started (pid {beat.proc.pid}); waiting for its first stalled-message sweep to be worked off")
            pre_load = settle_after_beat(sweeper_log, env["REDIS_URL"], timeout=args.settle_timeout)
            log(f"first sweep re-enqueued {pre_load[0]} messages; queue empty after {pre_load[1]:.0f}s")
        load = Load(
            args=args, server=server, worker=worker, beat=beat, agents=agents, convs=convs,
            base_ws=ctx["base_ws"], origin=server.base, broker_url=env["REDIS_URL"], database_url=env["DATABASE_URL"],
        )  # fmt: skip
        run = run_async(run_load(load))
        if not server.alive() or not worker.alive():
            log("a subprocess died during the run")
        run["server_alive"], run["worker_alive"] = server.alive(), worker.alive()
        run["pre_load_sweep"], run["pre_load_settle_s"] = pre_load or (None, None)
        run["beat_alive"] = None if beat is None else beat.alive()
    finally:
        if beat is not None:
            beat.stop()
        if housekeeping is not None:
            housekeeping.stop()
        worker.stop()
        server.stop()
    total = time.perf_counter() - started

    fig = read_back(load, run)
    close_django_connections()
    res = resources(load.samples)
    server_log = server.log_findings()
    server_text = server.log_tail(chars=50_000_000)
    in_run = [t for t in task_runs(worker.log_path) if t[0] >= load.t0 - 1]
    runtimes = [t[1] for t in in_run if t[1] is not None]
    st = load.stats
    errors = {
        "http": {f"{endpoint} → {status}": n for (endpoint, status), n in load.http.items()},
        "http_ms": {k: dist(v) for k, v in load.http_ms.items()},
        "sockets": {
            "planned": len(load.clients),
            "conn_failures": st.conn_failures,
            "conn_errors": dict(st.conn_errors.most_common(5)),
            "unexpected_closes": st.unexpected_closes,
            "reconnects": st.reconnects,
            "reconnect_failures": st.reconnect_failures,
            "close_codes": dict(st.close_codes),
            "handler_errors": st.handler_errors,
            "sends_while_down": st.sends_while_down,
            "resent": st.resent,
        },
        "error_frames": dict(load.error_frames),
        "live_duplicates": dict(load.live_duplicates),
        "server_log": server_log,
        "server_5xx": server_text.count("Internal Server Error"),
        "worker_log": {k: v for k, v in worker.log_findings().items() if k != "first_traceback"},
        "beat_log": beat.log_findings() if beat is not None else None,
        "tasks": {
            "total": len(in_run),
            "outcomes": dict(Counter(t[2] for t in in_run)),
            "runtime_ms": dist([1000 * v for v in runtimes]),
            "per_s": round(len(in_run) / load.samples[-1]["t"], 2) if load.samples else None,
        },
        "sampler_errors": dict(load.sampler_errors),
        "stalled_sweep_requeued": sweep_requeues(sweeper_log),
    }
    notes = observations(args, fig, res, run, errors, load.samples)
    meta.update(bench_seconds=round(total, 1), load_end=[round(v, 2) for v in os.getloadavg()])
    meta.update(logs=str(work_dir))

    print(f"\n{heading(args)[3:]} ({meta['date']}, {meta['cpus']} cores shared, load {meta['load']} at start)\n")
    print(tables(fig, res, run, errors))
    print(
        f"\nAI outcomes: {fig['ai_outcomes']}; handed over: {fig['handed_over_conversations']} of {args.conversations}"
    )
    print("\nErrors:\n" + "\n".join(error_lines(errors, fig)))
    print("\nNotes:\n" + "\n".join(notes))
    print(f"\nlogs in {work_dir}; the run took {total:.0f}s")
    if args.out:
        out = _harness.out_path(args.out)
        write_section(out, heading(args), docs_section(args, fig, res, run, errors, meta, notes))
        print(f"wrote {out.relative_to(BASE_DIR) if out.is_relative_to(BASE_DIR) else out}")
    payload = {
        "benchmark": "load_run",
        "meta": meta,
        "params": dict(vars(args)),
        "run": run,
        "figures": fig,
        "resources": res,
        "errors": errors,
        "samples": load.samples,
    }
    print(json.dumps(payload, separators=(",", ":"), default=str))
    return 0


if __name__ == "__main__":
    run_main(main)
