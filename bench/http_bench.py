"""HTTP throughput and latency: a bare ASGI hello, a bare Django view, the ticket-list API and the chat
page's messages partial, on the ASGI server we ship (uvicorn) and on daphne.

Run from the repository root, with the embedded services up::

    python -m supportflow.devservices exec -- .venv/bin/python bench/http_bench.py \
        [--servers uvicorn,daphne] [--rounds 2] [--max-seconds 4] [--open-seconds 6] [--clients 16] \
        [--tickets 10000] [--out docs/benchmarks.md]

What it does, in order:

1. Drops and recreates its own database ``supportflow_httpbench``, migrates it, runs ``seed_demo`` (with
   ``SF_DATA_DIR`` in a temporary directory) and adds ``--tickets`` tickets of history with
   ``supportflow.demo.history``; creates an API key for the agent ``alice`` and picks a chat ticket with a few
   messages for the partial. Empties its own Redis databases (3, 4) before and after.
2. Starts, per server, one process serving ``bench/asgi_hello.py`` and one serving
   ``supportflow.asgi:application`` with ``BENCH_ENDPOINTS=1`` (the bare Django view at
   ``/bench/hello/``), each with the production worker count (one process: the Dockerfile's ``CMD`` and
   ``make run``). Each Django server connects with its own ``application_name``.
3. Phase 1, closed loop: ``--clients`` keep-alive connections each send the next request as soon as
   the last one is answered, ``--max-seconds`` per target; repeated ``--rounds`` times with the targets
   in a rotating order. Max throughput = the median over rounds.
4. Phase 2, open loop: requests are *scheduled* at a fixed rate of 50 % and 80 % of each target's max
   (one every 1/rate s, whatever happened to the earlier ones; a new connection is opened when none is
   idle), ``--open-seconds`` each, rounds and order as above. Latency runs from the scheduled time to
   the last byte of the response, so a stalled server or client cannot hide queueing
   (no coordinated omission).
5. Throughout, a thread samples ``pg_stat_activity`` of the bench database every 0.2 s per
   ``application_name``: the connections each Django server holds, against ``DB_POOL_MAX_SIZE``.
6. Prints tables and, as the very last stdout line, one JSON object; rewrites the
   ``## HTTP: throughput and latency by server`` section of ``docs/benchmarks.md``. ``--from-json FILE``
   only re-renders a saved run (a file whose last line is that JSON object).

The client is a minimal HTTP/1.1 keep-alive client on asyncio streams (uvloop), a few dozen
microseconds of CPU per request, so that it is not the bottleneck of the bare hello; it shares the two
cores with the servers, PostgreSQL and Redis, and other jobs ran on the machine: read ratios first.
"""

# ruff: noqa: S311 — random only orders the targets

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from _harness import (
    BASE_DIR,
    Server,
    close_django_connections,
    django_setup,
    flush_redis_dbs,
    fmt,
    free_port,
    log,
    machine_meta,
    manage,
    median_of,
    ms,
    out_path,
    percentile,
    raise_nofile_limit,
    recreate_database,
    run_async,
    run_main,
    spread_of,
    stop_on_sigterm,
    write_docs,
)
from _harness import (
    bench_env as _harness_env,
)

BENCH_DB_NAME = "supportflow_httpbench"
# The same Redis databases as api_bench.py (3/4): do not run the two at the same time on one Redis.
BENCH_REDIS_DB = 3
BENCH_CACHE_DB = 4
SECRET_KEY = "supportflow-http-bench-only-secret-key-never-used-outside-this-script-0123456789"  # noqa: S105
API_RATE = "100000000/min"
SECTION_HEADING = "## HTTP: throughput and latency by server"
AGENT = "alice"
POOL_MAX = 10  # settings.py default DB_POOL_MAX_SIZE, which the servers run with
REQUEST_TIMEOUT = 30.0
MAX_OPEN_CONNECTIONS = 512
SAMPLE_EVERY_S = 0.2
LAG_LIMIT_MS = 100


# --- a minimal HTTP/1.1 keep-alive client ----------------------------------------------------------


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def get(self, request: bytes) -> int:
        """Send one prepared GET and read the whole response; returns the status (keep-alive kept)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        if close:
            raise ConnectionResetError("server closed the connection")
        return status

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def request_bytes(path: str, headers: dict[str, str]) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: sf-http-bench\r\n{extra}\r\n".encode()


# --- targets and servers ---------------------------------------------------------------------------


@dataclass
class Target:
    server: str  # uvicorn / daphne
    name: str  # hello / django / api / chat
    label: str
    proc: str  # key of the process serving it
    request: bytes
    max_rps: list[float] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.server}:{self.name}"


class Proc(Server):
    """A server process: ``Server`` with any command line (uvicorn or daphne, any app)."""

    def __init__(self, env: dict[str, str], log_path: Path, argv_for_port, health_path: str) -> None:
        super().__init__(env=env, log_path=log_path)
        self.argv_for_port = argv_for_port
        self.health_path = health_path

    def start(self, *, timeout: float = 120.0) -> None:
        self.port = free_port()
        self._spawn([sys.executable, *self.argv_for_port(self.port)])
        self._wait_ready(self.health_path, timeout=timeout, failure=f"server did not answer within {timeout:.0f}s")


def server_argv(server: str, app: str):
    def argv(port: int) -> list[str]:
        if server == "uvicorn":
            extra = ["--app-dir", "bench"] if app.startswith("asgi_hello") else []
            return [
                "-m", "uvicorn", app, *extra, "--host", "127.0.0.1", "--port", str(port),
                "--lifespan", "off", "--no-access-log", "--log-level", "warning",
            ]  # fmt: skip
        return ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "1", "--access-log", os.devnull, app]

    return argv


# --- database connection sampler --------------------------------------------------------------------


class ConnSampler(threading.Thread):
    """Counts the bench database's connections per ``application_name`` every 0.2 s (its own excluded):
    open (the pool's size) and busy (not ``idle``: a query or a transaction in progress)."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        self.database_url = database_url
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.window: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.overall: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.samples = 0
        self.error: str | None = None

    def run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.database_url, autocommit=True, connect_timeout=10) as conn:
                while not self.stop_event.wait(SAMPLE_EVERY_S):
                    rows = conn.execute(
                        "SELECT application_name, count(*), count(*) FILTER (WHERE state <> 'idle') "
                        "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() GROUP BY 1",
                        (BENCH_DB_NAME,),
                    ).fetchall()
                    with self.lock:
                        self.samples += 1
                        for name, count, busy in rows:
                            for seen in (self.window[name], self.overall[name]):
                                seen[0], seen[1] = max(seen[0], count), max(seen[1], busy)
        except Exception as exc:  # reported, never fatal
            self.error = f"{type(exc).__name__}: {exc}"

    def take_window(self) -> dict[str, list[int]]:
        with self.lock:
            window, self.window = dict(self.window), defaultdict(lambda: [0, 0])
        return window


# --- load -----------------------------------------------------------------------------------------


async def closed_loop(target: Target, port: int, clients: int, seconds: float) -> dict:
    conns = [await Conn.open(port) for _ in range(clients)]
    latencies: list[float] = []
    statuses: Counter = Counter()
    deadline = time.perf_counter() + seconds

    async def client(i: int) -> None:
        for _ in range(10_000_000):
            if time.perf_counter() >= deadline:
                return
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(conns[i].get(target.request), REQUEST_TIMEOUT)
            except Exception as exc:
                statuses[type(exc).__name__] += 1
                conns[i].close()
                conns[i] = await Conn.open(port)
                continue
            latencies.append(time.perf_counter() - started)
            statuses[str(status)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    wall = time.perf_counter() - started
    for conn in conns:
        conn.close()
    ok = statuses.get("200", 0)
    return {
        "requests": len(latencies),
        "ok": ok,
        "rps": ok / wall,
        "wall": wall,
        "p50_ms": ms(percentile(latencies, 50)),
        "statuses": dict(statuses),
    }


async def open_loop(target: Target, port: int, rate: float, seconds: float) -> dict:
    """Requests scheduled every 1/rate s; latency from the scheduled time to the response's end."""
    idle: list[Conn] = []
    opened = [0]
    slots = asyncio.Semaphore(MAX_OPEN_CONNECTIONS)
    latencies: list[float] = []
    lags: list[float] = []
    statuses: Counter = Counter()
    tasks: set[asyncio.Task] = set()

    async def one(scheduled: float) -> None:
        async with slots:
            lags.append(time.perf_counter() - scheduled)
            conn = idle.pop() if idle else None
            try:
                if conn is None:
                    conn = await Conn.open(port)
                    opened[0] += 1
                status = await asyncio.wait_for(conn.get(target.request), REQUEST_TIMEOUT)
            except Exception as exc:
                statuses[type(exc).__name__] += 1
                if conn is not None:
                    conn.close()
                latencies.append(time.perf_counter() - scheduled)
                return
            latencies.append(time.perf_counter() - scheduled)
            statuses[str(status)] += 1
            idle.append(conn)

    interval = 1.0 / rate
    total = max(1, round(rate * seconds))
    t0 = time.perf_counter() + 0.05
    for k in range(total):
        scheduled = t0 + k * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    send_end = time.perf_counter()
    if tasks:
        await asyncio.wait(set(tasks), timeout=REQUEST_TIMEOUT + 5)
    for task in list(tasks):
        task.cancel()
    done = time.perf_counter()
    for conn in idle:
        conn.close()
    ok = statuses.get("200", 0)
    return {
        "offered_rps": rate,
        "requests": total,
        "ok": ok,
        "rps": ok / (done - t0),
        "send_s": send_end - t0,
        "p50_ms": ms(percentile(latencies, 50)),
        "p95_ms": ms(percentile(latencies, 95)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(max(latencies, default=None)),
        "client_lag_p99_ms": ms(percentile(lags, 99)),
        "connections_opened": opened[0],
        "statuses": dict(statuses),
        "unfinished": total - len(latencies),
    }


async def warm(target: Target, port: int, count: int) -> Counter:
    conn = await Conn.open(port)
    statuses: Counter = Counter()
    try:
        for _ in range(count):
            statuses[str(await asyncio.wait_for(conn.get(target.request), REQUEST_TIMEOUT))] += 1
    finally:
        conn.close()
    return statuses


# --- fixtures -------------------------------------------------------------------------------------


def bench_env(base: dict[str, str], data_dir: Path) -> dict[str, str]:
    return _harness_env(
        base, data_dir, script="http_bench.py", db_name=BENCH_DB_NAME, redis_db=BENCH_REDIS_DB,
        cache_db=BENCH_CACHE_DB, channels_db=BENCH_CACHE_DB, secret_key=SECRET_KEY, drop=("API_RATE", "BENCH_"),
        ALLOWED_HOSTS="testserver,127.0.0.1,localhost", FEATURE_AI_PIPELINE="false", API_RATE=API_RATE,
        TOKENIZERS_PARALLELISM="false",
    )  # fmt: skip


def fixtures(tickets: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db.models import Count, Q

    from supportflow.api.keys import api_key_create
    from supportflow.demo import history
    from tickets import selectors
    from tickets.models import Ticket

    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    generated = history.generate(tickets, days=365, seed=1, end=end, progress=lambda text: log(text.strip()))
    log(f"generated {tickets:,} tickets in {generated['seconds']:.1f}s")
    agent = get_user_model().objects.get(username=AGENT)
    _, key = api_key_create(name="http bench agent", user=agent, scopes=["tickets:read"])
    visible = selectors.ticket_queryset_for_user(user=agent).count()
    chat = (
        Ticket.objects.filter(channel=Ticket.Channel.CHAT)
        .annotate(public=Count("messages", filter=Q(messages__is_internal=False)))
        .filter(public__gte=4, public__lte=8)
        .order_by("pk")
        .first()
    )
    if chat is None:
        raise SystemExit("error: no chat ticket with 4-8 public messages; did the demo history run?")
    return {
        "key": key,
        "visible": visible,
        "tickets": Ticket.objects.count(),
        "chat_token": selectors.ticket_customer_token(ticket=chat),
        "chat_messages": chat.public,
    }


# --- results --------------------------------------------------------------------------------------


def summarise(targets: list[Target]) -> list[dict]:
    rows = []
    for t in targets:
        row = {"target": t.key, "label": t.label, "server": t.server, "name": t.name}
        row["max_rps"] = median_of(t.max_rps)
        row["max_rps_spread"] = spread_of(t.max_rps)
        closed = [r for r in t.runs if r["kind"] == "max"]
        row["max_p50_ms"] = median_of([r.get("p50_ms") for r in closed])
        row["max_statuses"] = dict(sum((Counter(r["statuses"]) for r in closed), Counter()))
        for share in (50, 80):
            runs = [r for r in t.runs if r["kind"] == f"open{share}"]
            row[f"open{share}"] = {
                "offered_rps": median_of([r["offered_rps"] for r in runs]),
                "rps": median_of([r["rps"] for r in runs]),
                **{
                    f"{p}_ms": median_of([r[f"{p}_ms"] for r in runs])
                    for p in ("p50", "p95", "p99", "max", "client_lag_p99")
                },
                **{f"{p}_ms_spread": spread_of([r[f"{p}_ms"] for r in runs]) for p in ("p50", "p95", "p99")},
                "errors": sum(r["requests"] - r["ok"] for r in runs),
                "requests": sum(r["requests"] for r in runs),
                "connections_opened_max": max((r["connections_opened"] for r in runs), default=None),
                "statuses": dict(sum((Counter(r["statuses"]) for r in runs), Counter())),
            }
        row["server_cpu_ms_per_req"] = median_of([r.get("server_cpu_ms_per_req") for r in closed])
        conns = [r["db_conns"] for r in t.runs if r.get("db_conns")]
        row["db_conns_max"] = [max(c[0] for c in conns), max(c[1] for c in conns)] if conns else None
        rows.append(row)
    return rows


def spread(values: list[float] | None, digits: int = 1) -> str:
    return "–" if not values else f"{values[0]:.{digits}f}–{values[1]:.{digits}f}"


def tables_markdown(rows: list[dict]) -> str:
    base = {r["server"]: r for r in rows if r["name"] == "hello"}
    out = [
        "| server | target | max req/s (closed loop) | ÷ hello | server CPU ms/req "
        "| db connections max: open / busy | errors |\n|---|---|--:|--:|--:|--:|--:|"
    ]
    for r in rows:
        b = base.get(r["server"])
        ratio = r["max_rps"] / b["max_rps"] if b and b["max_rps"] and r["max_rps"] else None
        errors = sum(v for k, v in r["max_statuses"].items() if k != "200")
        out.append(
            f"| {r['server']} | {r['label']} | {fmt(r['max_rps'], 0)} ({spread(r['max_rps_spread'], 0)}) "
            f"| {fmt(ratio, 2)} | {fmt(r['server_cpu_ms_per_req'], 2)} "
            f"| {'–' if not r['db_conns_max'] else ' / '.join(map(str, r['db_conns_max']))} | {errors} |"
        )
    out.append(
        "\n| server | target | load | offered req/s | got req/s | p50 ms | p95 ms | p99 ms | max ms "
        "| errors | conns opened | client lag p99 ms |\n|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    for r in rows:
        for share in (50, 80):
            o = r[f"open{share}"]
            out.append(
                f"| {r['server']} | {r['label']} | {share} % | {fmt(o['offered_rps'], 0)} | {fmt(o['rps'], 0)} "
                f"| {fmt(o['p50_ms'], 1)} ({spread(o['p50_ms_spread'])}) "
                f"| {fmt(o['p95_ms'], 1)} ({spread(o['p95_ms_spread'])}) "
                f"| {fmt(o['p99_ms'], 1)} ({spread(o['p99_ms_spread'])}) | {fmt(o['max_ms'], 0)} "
                f"| {o['errors']} | {o['connections_opened_max']} | {fmt(o['client_lag_p99_ms'], 0)} |"
            )
    return "\n".join(out)


def observations(rows: list[dict], db: dict, logs: dict[str, dict], args) -> list[str]:
    notes = []
    by = {r["target"]: r for r in rows}
    for server in args.server_list:
        hello, django, api, chat = (by.get(f"{server}:{n}") for n in ("hello", "django", "api", "chat"))
        if hello and django and api and chat and hello["max_rps"] and django["max_rps"]:
            notes.append(
                f"- {server}: the bare Django view does {fmt(django['max_rps'], 0)} req/s, "
                f"{django['max_rps'] / hello['max_rps']:.2f}× the bare ASGI hello ({fmt(hello['max_rps'], 0)}); "
                f"the ticket-list API {fmt(api['max_rps'], 0)} ({api['max_rps'] / django['max_rps']:.2f}× the "
                f"bare view) and the chat partial {fmt(chat['max_rps'], 0)} "
                f"({chat['max_rps'] / django['max_rps']:.2f}×)."
            )
        floor = by.get(f"{server}:floor")
        if floor and django and api and floor["max_rps"] and django["max_rps"] and api["max_rps"]:
            notes.append(
                f"- {server}: the floor under the ticket list — the API's own first-page statement (scope, page and "
                f"bounded count), compiled once and run raw, rows dumped as JSON, no key lookup, roles, DRF or "
                f"formatting — does {fmt(floor['max_rps'], 0)} req/s, {floor['max_rps'] / django['max_rps']:.2f}× the "
                f"bare view ({fmt(floor['server_cpu_ms_per_req'], 2)} ms server CPU per request); the API does "
                f"{api['max_rps'] / floor['max_rps']:.2f}× the floor."
            )
        framework = by.get(f"{server}:api-floor")
        if framework and django and api and framework["max_rps"] and django["max_rps"] and api["max_rps"]:
            notes.append(
                f"- {server}: the API's framework alone — DRF with the key check, the scope permission, the rate "
                f"limit and the renderer, answering an empty page without a query — does "
                f"{fmt(framework['max_rps'], 0)} req/s, {framework['max_rps'] / django['max_rps']:.2f}× the bare "
                f"view ({fmt(framework['server_cpu_ms_per_req'], 2)} ms server CPU per request); the ticket list "
                f"does {api['max_rps'] / framework['max_rps']:.2f}× that."
            )
    if "uvicorn" in args.server_list and "daphne" in args.server_list:
        for name in ("hello", "django", "floor", "floor-prepared", "api-floor", "api", "chat"):
            u, d = by.get(f"uvicorn:{name}"), by.get(f"daphne:{name}")
            if u and d and u["max_rps"] and d["max_rps"]:
                notes.append(
                    f"- {u['label']}: uvicorn / daphne max throughput {u['max_rps'] / d['max_rps']:.2f}×; "
                    f"p99 at 80 %: uvicorn {fmt(u['open80']['p99_ms'], 1)} ms, daphne "
                    f"{fmt(d['open80']['p99_ms'], 1)} ms."
                )
    overall = db["max"]
    django_names = [n for n in overall if n.startswith("sf-http-")]
    worst = max((overall[n][0] for n in django_names), default=0)
    verdict = "never exceeded" if worst <= POOL_MAX else "**exceeded**"
    notes.append(
        "- Database connections per server process, sampled"
        + (f" {db['samples']} times" if db.get("samples") else "")
        + f" every {SAMPLE_EVERY_S:g} s from `pg_stat_activity`: at most "
        + ", ".join(
            f"{n.removeprefix('sf-http-')} {overall[n][0]} open / {overall[n][1]} busy" for n in sorted(django_names)
        )
        + f" — the pool (`DB_POOL_MAX_SIZE` {POOL_MAX}) was {verdict}."
        + (f" Sampler error: {db['error']}." if db.get("error") else "")
    )
    lagging = [
        f"{r['server']} {r['label']} at {share} % (client lag p99 {fmt(r[f'open{share}']['client_lag_p99_ms'], 0)} ms)"
        for r in rows
        for share in (50, 80)
        if (r[f"open{share}"]["client_lag_p99_ms"] or 0) > LAG_LIMIT_MS
    ]
    if lagging:
        notes.append(
            f"- The client fell behind its own schedule (a request started over {LAG_LIMIT_MS} ms after its slot) in: "
            + "; ".join(lagging)
            + ". There the latency is the client's and the machine's as much as the server's: one asyncio process "
            "sharing two busy cores cannot start requests that fast."
        )
    errors = sum(r[f"open{s}"]["errors"] for r in rows for s in (50, 80)) + sum(
        v for r in rows for k, v in r["max_statuses"].items() if k != "200"
    )
    notes.append(
        "- Errors: none — every request of every run answered 200."
        if not errors
        else f"- Errors: {errors} requests did not answer 200 (statuses per target in the JSON line)."
    )
    for name, found in logs.items():
        if found["tracebacks"] or found["other"]:
            notes.append(f"- Log of {name}: {found['tracebacks']} tracebacks; {found['other'][:3]}.")
    if all(not f["tracebacks"] and not f["other"] for f in logs.values()):
        notes.append("- Server logs: no errors, warnings or tracebacks.")
    return notes


def docs_section(args, rows, notes, meta, fx) -> str:
    command = (
        "python -m supportflow.devservices exec -- .venv/bin/python bench/http_bench.py "
        f"--servers {args.servers} --rounds {args.rounds} --max-seconds {args.max_seconds:g} "
        f"--open-seconds {args.open_seconds:g} --clients {args.clients} --tickets {args.tickets}"
    )
    return f"""{SECTION_HEADING}

What it measures: how many requests per second one server process answers, and how fast at a fixed
arrival rate below that, for four targets of rising weight — a bare ASGI hello (`bench/asgi_hello.py`, no
framework), a bare Django view (`/bench/hello/`, routed only with `BENCH_ENDPOINTS=1`: the whole middleware
stack, no database), the ticket-list API (`GET /api/v1/tickets/` with the agent's API key: authentication,
throttle, the scoped query and count, 25 tickets serialised) and the chat page's messages partial
(`GET /chat/c/<token>/messages/?after=0`, what the chat page loads to catch up: the token check, the messages,
the status block) — on the server we ship (uvicorn) and on daphne, the alternative already in
`requirements-dev.txt` (Channels' own server).

Reproduce (from the repository root; the embedded PostgreSQL and Redis are started or reused):

```sh
{command}
```

- **Run:** {meta["date"]}, Python {meta["python"]}, uvicorn {meta["uvicorn"]} (uvloop + httptools,
  `--lifespan off --no-access-log`), daphne {meta["daphne"]} (Twisted {meta["twisted"]}, access log to
  /dev/null). **One process per server** — the production worker count (the Dockerfile's `CMD`, `make run`).
  Whole run {meta["bench_seconds"]:.0f} s.
- **Machine:** {meta["cpus"]} cores, {meta["mem_gb"]} GB RAM, load average {meta["load"]} at the start and
  {meta["load_end"]} at the end. **The machine was shared** with other engineers' tests and benchmarks during
  the run, and the client, the servers, PostgreSQL and Redis share the same two cores: read ratios first, and
  the spread (min–max over rounds) next to every median.
- **Data:** its own database `{BENCH_DB_NAME}` (dropped and recreated): `seed_demo` plus {args.tickets:,}
  tickets of `supportflow.demo.history` — {fx["tickets"]:,} tickets, of which the agent's key (`{AGENT}`,
  `tickets:read`) sees {fx["visible"]:,}; the chat partial is of a chat ticket with {fx["chat_messages"]}
  public messages. `FEATURE_AI_PIPELINE=false`; `API_RATE={API_RATE}` (the throttle is still checked on every
  request). Redis databases {BENCH_REDIS_DB}/{BENCH_CACHE_DB}.
- **Client:** one asyncio process (uvloop), a minimal HTTP/1.1 keep-alive client on raw streams (a
  few dozen µs of CPU per request; httpx costs ~0.6 ms, more than a hello). *Closed loop*: {args.clients}
  connections, each sending as soon as its last answer arrived, {args.max_seconds:g} s per target →
  **max req/s** (median over {args.rounds} rounds, min–max in brackets). *Open loop*: requests scheduled at a
  fixed rate of 50 % and 80 % of that target's max, {args.open_seconds:g} s each; a request waits for an idle
  connection or opens a new one (at most {MAX_OPEN_CONNECTIONS}); latency = scheduled time → last byte, so
  queueing in the client or the server is counted. Rounds interleave every target and load in a rotating
  order, so the machine's noise hits them alike. *Server CPU ms/req* = the server process's CPU time over
  the closed-loop run ÷ its requests.
- **Database connections:** a thread counts the rows of `pg_stat_activity` for `datname =
  '{BENCH_DB_NAME}'`, grouped by `application_name`, every {SAMPLE_EVERY_S:g} s during every run; each Django
  server connects with its own `application_name` (`?application_name=` in `DATABASE_URL`). The most seen
  during a target's runs: *open* (idle ones included: the pool keeps what it opened) and *busy*
  (`state <> 'idle'`), against the pool's `DB_POOL_MAX_SIZE` ({POOL_MAX}, the default). Django runs each
  request's synchronous code in a thread of its own (a per-request `ThreadSensitiveContext` in its ASGI
  handler), so a process uses as many connections at once as it has requests in flight, up to the pool's
  size; past that a request waits for a connection (`DB_POOL_TIMEOUT`, 10 s).

{tables_markdown(rows)}

### Notes from this run

{chr(10).join(notes)}

What the numbers mean: the hello rows are the floor (server, loopback, client); the bare view adds Django and
our middleware stack; the API and the partial add our work. Each request's synchronous code runs in a thread
of its own, but one process runs Python on one core at a time (the GIL), so one process's max req/s is about
1 ÷ its CPU time per request (the *server CPU ms/req* column) when it gets a whole core, and the 80 % rows show
the queueing left at that rate; more throughput needs more processes (cores permitting), not a faster
server. Alternatives not measured: hypercorn and granian are not installed here and were left out to keep
the run short on a shared machine; daphne is the one already in `requirements-dev.txt`. Every
figure, per round, is in the JSON line the script prints last.
"""


# --- main -----------------------------------------------------------------------------------------


RUN_PARAMS = ("servers", "rounds", "max_seconds", "open_seconds", "clients", "tickets", "warmup", "seed")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="uvicorn,daphne", help="comma-separated: uvicorn, daphne")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per phase")
    parser.add_argument("--max-seconds", type=float, default=4.0, help="closed-loop seconds per target and round")
    parser.add_argument("--open-seconds", type=float, default=6.0, help="open-loop seconds per target, load, round")
    parser.add_argument("--clients", type=int, default=16, help="closed-loop connections")
    parser.add_argument("--tickets", type=int, default=10000, help="tickets of simulated history")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests per target")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file to update ('' to skip)")
    parser.add_argument("--from-json", default="", help="only report a saved run: a file ending with its JSON line")
    args = parser.parse_args(argv)
    args.server_list = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not args.server_list or set(args.server_list) - {"uvicorn", "daphne"}:
        parser.error("--servers: uvicorn and/or daphne")
    if not 1 <= args.rounds <= 20 or not 1 <= args.clients <= 256 or args.tickets < 100:
        parser.error("--rounds 1..20, --clients 1..256, --tickets >= 100")
    return args


def rotate(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


async def run_all(args, targets: list[Target], procs: dict[str, Proc], sampler: ConnSampler, rng) -> None:
    for t in targets:
        statuses = await warm(t, procs[t.proc].port, args.warmup)
        log(f"warm-up {t.key}: {dict(statuses)}")
        if set(statuses) != {"200"}:
            raise RuntimeError(f"{t.key} does not answer 200: {dict(statuses)}\n{procs[t.proc].log_tail()}")

    def db_window(t: Target) -> list[int] | None:
        """[open, busy] connections of the target's Django server during the run (None for the hello)."""
        window = sampler.take_window()
        return None if t.name == "hello" else window.get(f"sf-http-{t.server}", [0, 0])

    for rnd in range(args.rounds):
        order = rotate(targets, rnd * 3) if rnd % 2 == 0 else list(reversed(rotate(targets, rnd * 3)))
        for t in order:
            proc = procs[t.proc]
            sampler.take_window()
            cpu0 = proc.cpu_seconds()
            result = await closed_loop(t, proc.port, args.clients, args.max_seconds)
            cpu1 = proc.cpu_seconds()
            result.update(kind="max", round=rnd, db_conns=db_window(t))
            if cpu0 is not None and cpu1 is not None and result["requests"]:
                result["server_cpu_ms_per_req"] = round(1000 * (cpu1 - cpu0) / result["requests"], 3)
            t.max_rps.append(round(result["rps"], 1))
            t.runs.append(result)
            log(f"max {t.key} round {rnd + 1}: {result['rps']:.0f} req/s {result['statuses']}")
            await asyncio.sleep(0.5)
    for rnd in range(args.rounds):
        plan = [(t, share) for t in targets for share in (50, 80)]
        plan = rotate(plan, rnd * 5) if rnd % 2 == 0 else list(reversed(rotate(plan, rnd * 5)))
        for t, share in plan:
            proc = procs[t.proc]
            rate = max(1.0, statistics.median(t.max_rps) * share / 100)
            sampler.take_window()
            result = await open_loop(t, proc.port, rate, args.open_seconds)
            result.update(kind=f"open{share}", round=rnd, db_conns=db_window(t))
            t.runs.append(result)
            log(
                f"open {share}% {t.key} round {rnd + 1}: {rate:.0f}/s offered, {result['rps']:.0f} got, "
                f"p50 {result['p50_ms']} p99 {result['p99_ms']} ms {result['statuses']}"
            )
            await asyncio.sleep(0.5)


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    stop_on_sigterm()
    raise_nofile_limit()
    work_dir = Path(tempfile.mkdtemp(prefix="supportflow-http-bench-"))
    env = bench_env(dict(os.environ), work_dir / "data")
    dbs = (BENCH_REDIS_DB, BENCH_CACHE_DB)
    meta = machine_meta()
    log(f"database {BENCH_DB_NAME}; redis dbs {dbs}; logs in {work_dir}; load {meta['load']}")
    started = time.perf_counter()
    recreate_database(env["DATABASE_URL"], BENCH_DB_NAME)
    flush_redis_dbs(env["REDIS_URL"], dbs)
    manage(env, "migrate", "--noinput", "-v", "0", timeout=600)
    log("seed_demo")
    manage(env, "seed_demo", timeout=1200)
    django_setup(env)
    fx = fixtures(args.tickets)
    close_django_connections()

    headers = {"Authorization": f"Bearer {fx['key']}"}
    kinds = {
        "hello": ("bare ASGI hello", "/", {}),
        "django": ("bare Django view", "/bench/hello/", {}),
        "floor": ("the API's page statement, raw (floor)", f"/bench/ticket-floor/?user={AGENT}", {}),
        "floor-prepared": (
            "the API's page statement, prepared (floor)",
            f"/bench/ticket-floor/?user={AGENT}&prepared=1",
            {},
        ),
        "api-floor": ("the API's framework: key, scope, rate limit, no query (floor)", "/bench/api-floor/", headers),
        "api": ("ticket-list API", "/api/v1/tickets/", headers),
        "chat": ("chat messages partial", f"/chat/c/{fx['chat_token']}/messages/?after=0", {}),
    }
    procs: dict[str, Proc] = {}
    targets: list[Target] = []
    for server in args.server_list:
        hello_env = {**env, "PYTHONPATH": str(BASE_DIR / "bench")}
        procs[f"{server}-hello"] = Proc(
            hello_env, work_dir / f"{server}-hello.log", server_argv(server, "asgi_hello:app"), "/"
        )
        django_env = {
            **env,
            "BENCH_ENDPOINTS": "1",
            "DATABASE_URL": f"{env['DATABASE_URL']}?application_name=sf-http-{server}",
        }
        procs[f"{server}-django"] = Proc(
            django_env,
            work_dir / f"{server}-django.log",
            server_argv(server, "supportflow.asgi:application"),
            "/healthz",
        )
        for name, (label, path, extra) in kinds.items():
            proc = f"{server}-hello" if name == "hello" else f"{server}-django"
            targets.append(Target(server, name, label, proc, request_bytes(path, extra)))

    sampler = ConnSampler(env["DATABASE_URL"])
    try:
        for name, proc in procs.items():
            proc.start()
            log(f"{name} on 127.0.0.1:{proc.port} (pid {proc.proc.pid})")
        sampler.start()
        run_async(run_all(args, targets, procs, sampler, rng))
        rss = {name: proc.rss_mb() for name, proc in procs.items()}
    finally:
        sampler.stop_event.set()
        for proc in procs.values():
            proc.stop()
        flush_redis_dbs(env["REDIS_URL"], dbs)
    sampler.join(timeout=5)
    logs = {name: proc.log_findings() for name, proc in procs.items()}

    import daphne
    import twisted
    import uvicorn

    meta.update(
        uvicorn=uvicorn.__version__,
        daphne=daphne.__version__,
        twisted=twisted.__version__,
        load_end=[round(v, 2) for v in os.getloadavg()],
        bench_seconds=round(time.perf_counter() - started, 1),
        rss_mb=rss,
    )
    payload = {
        "benchmark": "http_throughput_latency",
        "meta": meta,
        "params": {k: v for k, v in vars(args).items() if k != "server_list"},
        "fixtures": {k: v for k, v in fx.items() if k not in ("key", "chat_token")},
        "db_connections": {"max": dict(sampler.overall), "samples": sampler.samples, "error": sampler.error},
        "summary": summarise(targets),
        "runs": {t.key: t.runs for t in targets},
        "logs": logs,
    }
    report(args, payload)
    print(json.dumps(payload, separators=(",", ":"), default=str))
    return 0


def report(args, payload: dict) -> None:
    """Print the tables and rewrite the docs section from one run's figures (also from a saved JSON line)."""
    rows, meta = payload["summary"], payload["meta"]
    notes = observations(rows, payload["db_connections"], payload["logs"], args)
    print(f"\nHTTP: throughput and latency by server ({meta['date']}, load {meta['load']})\n")
    print(tables_markdown(rows))
    print("\nNotes:\n" + "\n".join(notes))
    if args.out:
        out = out_path(args.out)
        write_docs(out, SECTION_HEADING, docs_section(args, rows, notes, meta, payload["fixtures"]))
        print(f"wrote {out}")


def report_from_json(argv=None) -> int:
    """``--from-json FILE``: the report of a saved run (its last stdout line), e.g. after the docs text changed."""
    args = parse_args(argv)
    payload = json.loads(Path(args.from_json).read_text().strip().splitlines()[-1])
    saved = parse_args([f"--{k.replace('_', '-')}={v}" for k, v in payload["params"].items() if k in RUN_PARAMS])
    saved.out = args.out
    report(saved, payload)
    return 0


if __name__ == "__main__":
    run_main(report_from_json if "--from-json" in " ".join(sys.argv) else main)
