"""Websockets under held idle connections: memory per connection, and round trip and fan-out of chat
against the bare Channels echo while up to 1,000 idle sockets are held.

Run from the repository root, with the embedded services up::

    python -m supportflow.devservices exec -- .venv/bin/python bench/ws_idle_bench.py \
        [--idle 250,500,1000] [--fanout 50] [--rtt 20] [--fan-messages 10] [--rounds 2] [--out docs/benchmarks.md]

What it does, in order:

1. Drops and recreates its own database ``supportflow_wsbench``, migrates it, creates one chat ticket
   per idle socket plus two (round trip, fan-out), and empties its own Redis databases (5/6/7, as
   ``chat_bench.py``: do not run the two at the same time on one Redis).
2. Starts two uvicorn servers (one process each, as in production) with ``BENCH_ENDPOINTS=1``: *chat*
   holds the idle customer chat sockets (``/ws/chat/<token>/``, one conversation each, what an open
   chat page keeps), *echo* holds as many idle bare-echo sockets (``/ws/bench/echo/idle-<i>/``, one room
   each). The measuring sockets are opened on the chat server before anything is counted.
3. At 0 idle sockets and then at each ``--idle`` level (sockets are added, never closed in between):
   the resident memory (VmRSS) of both servers after 3 s of quiet, their CPU while idle, and, in
   ``--rounds`` rounds with the four measurements in a rotating order, on the chat server:
   - *round trip*: one socket sends and waits for its own copy back, ``--rtt`` times — chat: a customer
     message (stored, broadcast on commit, the fragment back to the sender); echo: ``group_send`` to a
     room holding only the sender;
   - *fan-out*: ``--fanout`` sockets on one conversation (the same customer token in several tabs) / in
     one echo room; one of them sends, ``--fan-messages`` times, each after the last was delivered to all;
     latency per delivery and to the last socket.
4. Prints a table and, as the very last stdout line, one JSON object; rewrites the
   ``## Websockets: idle connections, round trip and fan-out`` section of ``docs/benchmarks.md``.

Memory per connection = (RSS at N − RSS at 0) ÷ N: what the server keeps per socket (the protocol,
the Channels consumer and its channel-layer membership), read once the server is quiet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from _harness import (
    Server,
    close_django_connections,
    django_setup,
    flush_redis_dbs,
    fmt,
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

BENCH_DB_NAME = "supportflow_wsbench"
BENCH_REDIS_DB, BENCH_CACHE_DB, BENCH_CHANNELS_DB = 5, 6, 7
SECRET_KEY = "supportflow-ws-bench-only-secret-key-never-used-outside-this-script-0123456789"  # noqa: S105
RATE_OVERRIDE = "1000000/60"
RATE_ENV = ("CHAT_RATE_PER_CONVERSATION", "CHAT_RATE_PER_IP", "CHAT_RATE_START_PER_IP")
SECTION_HEADING = "## Websockets: idle connections, round trip and fan-out"
WAIT_TIMEOUT = 20.0
CONNECT_CONCURRENCY = 50
QUIET_S = 3.0


class Sock:
    """One websocket and the task that always drains it; ``expect`` resolves on a frame containing a key."""

    def __init__(self, url: str, origin: str) -> None:
        self.url, self.origin = url, origin
        self.ws = None
        self.task: asyncio.Task | None = None
        self.waiting: dict[str, asyncio.Future] = {}
        self.closed_by_server = False
        self.closing = False

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(
            self.url, origin=self.origin, proxy=None, open_timeout=30, ping_interval=None, close_timeout=5,
            max_size=8 * 2**20, user_agent_header="supportflow-ws-idle-bench",
        )  # fmt: skip
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for frame in self.ws:
                if self.waiting:
                    now = time.perf_counter()
                    for key, fut in list(self.waiting.items()):
                        if key in frame and not fut.done():
                            fut.set_result(now)
        except ConnectionClosed:
            pass
        finally:
            if not self.closing:
                self.closed_by_server = True

    def expect(self, key: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.waiting[key] = fut
        return fut

    def done(self, key: str) -> None:
        self.waiting.pop(key, None)

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        if self.task is not None:
            self.task.cancel()


async def open_many(socks: list[Sock]) -> int:
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
    failures = 0

    async def one(s: Sock) -> None:
        nonlocal failures
        async with sem:
            try:
                await s.open()
            except Exception as exc:
                failures += 1
                log(f"  connect failed: {type(exc).__name__}: {str(exc)[:100]}")

    await asyncio.gather(*(one(s) for s in socks))
    return failures


def chat_payload(key: str) -> str:
    return json.dumps({"type": "message", "body": f"Benchmark message {key}", "client_id": key})


async def one_send(sender: Sock, listeners: list[Sock], payload: str, key: str) -> list[float] | None:
    """Send once; latency (s) to each listener's frame carrying ``key``; None on a timeout."""
    futs = [s.expect(key) for s in listeners]
    started = time.perf_counter()
    await sender.ws.send(payload)
    try:
        arrived = await asyncio.wait_for(asyncio.gather(*futs), WAIT_TIMEOUT)
    except TimeoutError:
        return None
    finally:
        for s in listeners:
            s.done(key)
    return [t - started for t in arrived]


async def measure(kind: str, ctx: dict, count: int) -> dict:
    """``kind``: rtt_chat / rtt_echo / fan_chat / fan_echo; ``count`` sends, one after another."""
    per_delivery: list[float] = []
    last: list[float] = []
    timeouts = 0
    for _ in range(count):
        key = uuid.uuid4().hex
        if kind == "rtt_chat":
            sender, listeners, payload = ctx["rtt_chat"], [ctx["rtt_chat"]], chat_payload(key)
        elif kind == "rtt_echo":
            sender, listeners, payload = ctx["rtt_echo"], [ctx["rtt_echo"]], json.dumps({"id": key})
        elif kind == "fan_chat":
            sender, listeners, payload = ctx["fan_chat"][0], ctx["fan_chat"][1:], chat_payload(key)
        else:
            sender, listeners, payload = ctx["fan_echo"][0], ctx["fan_echo"][1:], json.dumps({"id": key})
        got = await one_send(sender, listeners, payload, key)
        if got is None:
            timeouts += 1
            continue
        per_delivery.extend(got)
        last.append(max(got))
    return {"deliveries": per_delivery, "last": last, "timeouts": timeouts}


def bench_env(base: dict[str, str], data_dir: Path) -> dict[str, str]:
    return _harness_env(
        base, data_dir, script="ws_idle_bench.py", db_name=BENCH_DB_NAME, redis_db=BENCH_REDIS_DB,
        cache_db=BENCH_CACHE_DB, channels_db=BENCH_CHANNELS_DB, secret_key=SECRET_KEY, drop=("BENCH_",),
        ALLOWED_HOSTS="127.0.0.1,localhost", FEATURE_AI_PIPELINE="false", FEATURE_AI_AUTO_REPLY="false",
        BENCH_ENDPOINTS="1", **dict.fromkeys(RATE_ENV, RATE_OVERRIDE),
    )  # fmt: skip


def make_tokens(count: int) -> list[str]:
    from tickets import selectors, services
    from tickets.models import Ticket

    tokens = []
    for i in range(count):
        customer = services.customer_get_or_create(email=f"ws-{i}@wsbench.example.com", name=f"WS Bench {i}")
        ticket = services.ticket_create(
            customer=customer, subject=f"WS bench {i}", body="Benchmark conversation", channel=Ticket.Channel.CHAT
        )
        tokens.append(selectors.ticket_customer_token(ticket=ticket))
    return tokens


def cpu_pct(server: Server, seconds: float, before: float | None) -> float | None:
    after = server.cpu_seconds()
    return None if before is None or after is None else round(100 * (after - before) / seconds, 1)


async def run(args, chat_srv: Server, echo_srv: Server, tokens: list[str]) -> list[dict]:
    ws_chat, ws_echo = f"ws://127.0.0.1:{chat_srv.port}", f"ws://127.0.0.1:{echo_srv.port}"
    origin = chat_srv.base
    rtt_token, fan_token, idle_tokens = tokens[0], tokens[1], tokens[2:]
    room = uuid.uuid4().hex[:8]
    ctx = {
        "rtt_chat": Sock(f"{ws_chat}/ws/chat/{rtt_token}/", origin),
        "rtt_echo": Sock(f"{ws_chat}/ws/bench/echo/rtt-{room}/", origin),
        "fan_chat": [Sock(f"{ws_chat}/ws/chat/{fan_token}/", origin) for _ in range(args.fanout + 1)],
        "fan_echo": [Sock(f"{ws_chat}/ws/bench/echo/fan-{room}/", origin) for _ in range(args.fanout + 1)],
    }
    active = [ctx["rtt_chat"], ctx["rtt_echo"], *ctx["fan_chat"], *ctx["fan_echo"]]
    if await open_many(active):
        raise RuntimeError("the measuring sockets could not all connect")
    for kind in ("rtt_chat", "rtt_echo", "fan_chat", "fan_echo"):  # warm-up, not counted
        await measure(kind, ctx, 3)
    idle_chat: list[Sock] = []
    idle_echo: list[Sock] = []
    levels = [0, *args.idle_levels]
    results = []
    try:
        for level in levels:
            add = level - len(idle_chat)
            failures = 0
            opened_s = None
            if add > 0:
                new_chat = [Sock(f"{ws_chat}/ws/chat/{t}/", origin) for t in idle_tokens[len(idle_chat) : level]]
                new_echo = [
                    Sock(f"{ws_echo}/ws/bench/echo/idle-{room}-{i}/", origin) for i in range(len(idle_echo), level)
                ]
                started = time.perf_counter()
                failures = await open_many(new_chat) + await open_many(new_echo)
                opened_s = time.perf_counter() - started
                idle_chat += new_chat
                idle_echo += new_echo
            cpu_chat0, cpu_echo0 = chat_srv.cpu_seconds(), echo_srv.cpu_seconds()
            await asyncio.sleep(QUIET_S)
            row = {
                "idle": level,
                "connect_failures": failures,
                "open_s": round(opened_s, 1) if opened_s else None,
                "rss_chat_mb": chat_srv.rss_mb(),
                "rss_echo_mb": echo_srv.rss_mb(),
                "idle_cpu_chat_pct": cpu_pct(chat_srv, QUIET_S, cpu_chat0),
                "idle_cpu_echo_pct": cpu_pct(echo_srv, QUIET_S, cpu_echo0),
            }
            kinds = ["rtt_chat", "rtt_echo", "fan_chat", "fan_echo"]
            collected = {k: {"deliveries": [], "last": [], "timeouts": 0, "rounds_p50": []} for k in kinds}
            for rnd in range(args.rounds):
                order = kinds[rnd % 4 :] + kinds[: rnd % 4]
                for kind in order:
                    count = args.rtt if kind.startswith("rtt") else args.fan_messages
                    got = await measure(kind, ctx, count)
                    c = collected[kind]
                    c["deliveries"] += got["deliveries"]
                    c["last"] += got["last"]
                    c["timeouts"] += got["timeouts"]
                    c["rounds_p50"].append(ms(percentile(got["deliveries"], 50)))
            for kind, c in collected.items():
                row[kind] = {
                    "n": len(c["deliveries"]),
                    "p50_ms": ms(percentile(c["deliveries"], 50)),
                    "p95_ms": ms(percentile(c["deliveries"], 95)),
                    "p99_ms": ms(percentile(c["deliveries"], 99)),
                    "last_p50_ms": ms(percentile(c["last"], 50)),
                    "last_p95_ms": ms(percentile(c["last"], 95)),
                    "rounds_p50_spread": spread_of(c["rounds_p50"]),
                    "timeouts": c["timeouts"],
                }
            row["idle_alive_chat"] = sum(1 for s in idle_chat if not s.closed_by_server)
            row["idle_alive_echo"] = sum(1 for s in idle_echo if not s.closed_by_server)
            row["active_dropped"] = sum(1 for s in active if s.closed_by_server)
            results.append(row)
            log(
                f"idle {level}: rss chat {row['rss_chat_mb']} / echo {row['rss_echo_mb']} MB; rtt p50 chat "
                f"{row['rtt_chat']['p50_ms']} echo {row['rtt_echo']['p50_ms']} ms; fan-out last p50 chat "
                f"{row['fan_chat']['last_p50_ms']} echo {row['fan_echo']['last_p50_ms']} ms; alive "
                f"{row['idle_alive_chat']}/{row['idle_alive_echo']}"
            )
        # Held a while longer: do the servers keep every idle socket (pings answered, nothing dropped)?
        await asyncio.sleep(args.hold)
        results[-1]["idle_alive_chat_after_hold"] = sum(1 for s in idle_chat if not s.closed_by_server)
        results[-1]["idle_alive_echo_after_hold"] = sum(1 for s in idle_echo if not s.closed_by_server)
    finally:
        await asyncio.gather(*(s.close() for s in [*active, *idle_chat, *idle_echo]), return_exceptions=True)
    return results


def per_conn_kb(rows: list[dict], key: str) -> list[float | None]:
    base = rows[0][key]
    return [
        round(1024 * (r[key] - base) / r["idle"], 1) if r["idle"] and r[key] is not None and base else None
        for r in rows
    ]


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def tables_markdown(rows: list[dict], fanout: int) -> str:
    kb_chat, kb_echo = per_conn_kb(rows, "rss_chat_mb"), per_conn_kb(rows, "rss_echo_mb")
    out = [
        "| idle sockets | chat server RSS MB | KB per idle chat socket | echo server RSS MB | KB per idle echo socket "
        "| idle CPU % chat / echo | connect failures | still open (chat / echo) |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r, kc, ke in zip(rows, kb_chat, kb_echo, strict=True):
        out.append(
            f"| {r['idle']:,} | {fmt(r['rss_chat_mb'])} | {fmt(kc)} | {fmt(r['rss_echo_mb'])} | {fmt(ke)} "
            f"| {fmt(r['idle_cpu_chat_pct'])} / {fmt(r['idle_cpu_echo_pct'])} | {r['connect_failures']} "
            f"| {r['idle_alive_chat']:,} / {r['idle_alive_echo']:,} |"
        )
    out += [
        "",
        f"| idle sockets held | round trip p50 / p95 / p99 ms: chat | echo | chat ÷ echo p50 "
        f"| fan-out to {fanout}, per delivery p50 / p95 ms: chat | echo | to the last socket p50 / p95 ms: chat "
        "| echo | chat ÷ echo (last, p50) | timeouts |",
        "|--:|---|---|--:|---|---|---|---|--:|--:|",
    ]
    for r in rows:
        rc, re_, fc, fe = r["rtt_chat"], r["rtt_echo"], r["fan_chat"], r["fan_echo"]
        out.append(
            f"| {r['idle']:,} | {fmt(rc['p50_ms'])} / {fmt(rc['p95_ms'])} / {fmt(rc['p99_ms'])} "
            f"| {fmt(re_['p50_ms'])} / {fmt(re_['p95_ms'])} / {fmt(re_['p99_ms'])} "
            f"| {fmt(ratio(rc['p50_ms'], re_['p50_ms']), 2)} "
            f"| {fmt(fc['p50_ms'])} / {fmt(fc['p95_ms'])} | {fmt(fe['p50_ms'])} / {fmt(fe['p95_ms'])} "
            f"| {fmt(fc['last_p50_ms'])} / {fmt(fc['last_p95_ms'])} "
            f"| {fmt(fe['last_p50_ms'])} / {fmt(fe['last_p95_ms'])} "
            f"| {fmt(ratio(fc['last_p50_ms'], fe['last_p50_ms']), 2)} "
            f"| {rc['timeouts'] + re_['timeouts'] + fc['timeouts'] + fe['timeouts']} |"
        )
    return "\n".join(out)


def observations(rows: list[dict], args, logs: dict) -> list[str]:
    notes = []
    top = rows[-1]
    kb_chat, kb_echo = per_conn_kb(rows, "rss_chat_mb")[-1], per_conn_kb(rows, "rss_echo_mb")[-1]
    if kb_chat and kb_echo:
        notes.append(
            f"- Memory: {top['idle']:,} idle chat sockets added {top['rss_chat_mb'] - rows[0]['rss_chat_mb']:.1f} MB "
            f"to the server ({kb_chat:.0f} KB each), {top['idle']:,} idle echo sockets "
            f"{top['rss_echo_mb'] - rows[0]['rss_echo_mb']:.1f} MB ({kb_echo:.0f} KB each): "
            f"a chat socket costs {kb_chat / kb_echo:.1f}× a bare Channels socket."
        )
    b = rows[0]
    for key, label in (("rtt_chat", "chat round trip"), ("rtt_echo", "echo round trip")):
        notes.append(
            f"- {label} p50: {fmt(b[key]['p50_ms'])} ms with no idle sockets, {fmt(top[key]['p50_ms'])} ms with "
            f"{top['idle']:,} held (per-round p50s {top[key]['rounds_p50_spread']})."
        )
    for key, label in (("fan_chat", "chat fan-out"), ("fan_echo", "echo fan-out")):
        notes.append(
            f"- {label} to {args.fanout} sockets, last delivery p50: {fmt(b[key]['last_p50_ms'])} ms → "
            f"{fmt(top[key]['last_p50_ms'])} ms with {top['idle']:,} idle sockets held."
        )
    after = (top.get("idle_alive_chat_after_hold"), top.get("idle_alive_echo_after_hold"))
    notes.append(
        f"- After holding them {args.hold:g} s more: {after[0]:,} of {top['idle']:,} idle chat sockets and "
        f"{after[1]:,} of {top['idle']:,} echo sockets still open; measuring sockets dropped: {top['active_dropped']}."
    )
    for name, found in logs.items():
        if found["tracebacks"] or found["other"]:
            notes.append(f"- {name} server log: {found['tracebacks']} tracebacks; {found['other'][:3]}.")
    if all(not f["tracebacks"] and not f["other"] for f in logs.values()):
        notes.append("- Server logs: no errors, warnings or tracebacks.")
    return notes


def docs_section(args, rows, notes, meta) -> str:
    command = (
        "python -m supportflow.devservices exec -- .venv/bin/python bench/ws_idle_bench.py "
        f"--idle {args.idle} --fanout {args.fanout} --rtt {args.rtt} --fan-messages {args.fan_messages} "
        f"--rounds {args.rounds}"
    )
    return f"""{SECTION_HEADING}

What it measures: what an idle chat socket costs the server (memory, CPU), and whether holding up to
{max(args.idle_levels):,} of them slows the live path — round trip and fan-out of a chat message against the bare
Channels echo (`ws/bench/echo/<room>/`, routed only with `BENCH_ENDPOINTS=1`) on the same server and Redis
channel layer. The delivery latency of many *active* conversations is in *Live chat: websocket delivery* above.

Reproduce (from the repository root; the embedded PostgreSQL and Redis are started or reused):

```sh
{command}
```

- **Run:** {meta["date"]}, Python {meta["python"]}, uvicorn {meta["uvicorn"]} (one process per server, as in
  production), channels {meta["channels"]}, channels-redis {meta["channels_redis"]}, websockets {meta["websockets"]}
  (client). Whole run {meta["bench_seconds"]:.0f} s.
- **Machine:** {meta["cpus"]} cores, {meta["mem_gb"]} GB RAM, load average {meta["load"]} at the start and
  {meta["load_end"]} at the end; **shared** with other engineers' tests and benchmarks while it ran, and the client
  process, both servers, PostgreSQL and Redis share the two cores: compare chat with echo in the same row first.
- **Servers:** two uvicorn processes with the same settings: the *chat* server holds the idle customer chat
  sockets (`/ws/chat/<token>/`, one conversation each — an open chat page) and carries every measurement; the
  *echo* server holds as many idle bare-echo sockets (one room each), only for the memory comparison. Its own
  database `{BENCH_DB_NAME}`, Redis databases {BENCH_REDIS_DB}/{BENCH_CACHE_DB}/{BENCH_CHANNELS_DB}, chat rate limits
  raised (every client is 127.0.0.1), `FEATURE_AI_PIPELINE=false`.
- **Memory:** VmRSS of each server after {QUIET_S:g} s of quiet at each level; *KB per idle socket* = (RSS at N −
  RSS at 0) ÷ N. *Idle CPU* = the server's CPU over those {QUIET_S:g} s (100 % = one core).
- **Round trip:** one socket sends and waits for its own copy — chat: a customer message (rate limits, stored in
  PostgreSQL, broadcast on commit through the Redis layer, the rendered fragment back); echo: `group_send` to a room
  of one. {args.rtt} sends per round, one after another. **Fan-out:** {args.fanout} listening sockets plus the sender
  on one conversation (one customer's token in {args.fanout + 1} tabs) / in one echo room; {args.fan_messages} sends
  per round, each once the last reached everyone; latency per delivery and to the last socket. {args.rounds}
  rounds per level, the four measurements in a rotating order.

{tables_markdown(rows, args.fanout)}

### Notes from this run

{chr(10).join(notes)}

Every figure, per level and round, is in the JSON line the script prints last.
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", default="250,500,1000", help="idle socket counts to hold, rising")
    parser.add_argument("--fanout", type=int, default=50, help="listening sockets of the fan-out")
    parser.add_argument("--rtt", type=int, default=20, help="round trips per round")
    parser.add_argument("--fan-messages", type=int, default=10, help="fan-out sends per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold the idle sockets at the end")
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file to update ('' to skip)")
    args = parser.parse_args(argv)
    try:
        args.idle_levels = [int(x) for x in args.idle.split(",") if x.strip()]
    except ValueError:
        parser.error("--idle takes comma-separated numbers")
    if not args.idle_levels or args.idle_levels != sorted(args.idle_levels) or not 1 <= max(args.idle_levels) <= 5000:
        parser.error("--idle: rising counts, at most 5000")
    if not 1 <= args.fanout <= 1000 or not 1 <= args.rounds <= 20:
        parser.error("--fanout 1..1000, --rounds 1..20")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    limit = raise_nofile_limit()
    if limit[0] < 2 * max(args.idle_levels) + 2 * args.fanout + 100:
        raise SystemExit(f"error: open-files limit {limit} too low for {max(args.idle_levels)} idle sockets")
    work_dir = Path(tempfile.mkdtemp(prefix="supportflow-ws-bench-"))
    env = bench_env(dict(os.environ), work_dir / "data")
    dbs = (BENCH_REDIS_DB, BENCH_CACHE_DB, BENCH_CHANNELS_DB)
    meta = machine_meta()
    log(f"database {BENCH_DB_NAME}; redis dbs {dbs}; logs in {work_dir}; load {meta['load']}")
    started = time.perf_counter()
    recreate_database(env["DATABASE_URL"], BENCH_DB_NAME)
    flush_redis_dbs(env["REDIS_URL"], dbs)
    manage(env, "migrate", "--noinput", "-v", "0", timeout=600)
    django_setup(env)
    tokens = make_tokens(max(args.idle_levels) + 2)
    log(f"created {len(tokens)} chat tickets")
    close_django_connections()
    chat_srv = Server(env=env, log_path=work_dir / "chat-server.log")
    echo_srv = Server(env=env, log_path=work_dir / "echo-server.log")
    try:
        chat_srv.start()
        echo_srv.start()
        log(f"chat server :{chat_srv.port} (pid {chat_srv.proc.pid}), echo server :{echo_srv.port}")
        rows = run_async(run(args, chat_srv, echo_srv, tokens))
    finally:
        chat_srv.stop()
        echo_srv.stop()
        flush_redis_dbs(env["REDIS_URL"], dbs)
    logs = {"chat": chat_srv.log_findings(), "echo": echo_srv.log_findings()}

    import channels
    import channels_redis
    import uvicorn
    import websockets

    meta.update(
        uvicorn=uvicorn.__version__,
        channels=channels.__version__,
        channels_redis=getattr(channels_redis, "__version__", "?"),
        websockets=websockets.__version__,
        load_end=[round(v, 2) for v in os.getloadavg()],
        bench_seconds=round(time.perf_counter() - started, 1),
    )
    notes = observations(rows, args, logs)
    print(f"\nWebsockets: idle connections ({meta['date']}, load {meta['load']})\n")
    print(tables_markdown(rows, args.fanout))
    print("\nNotes:\n" + "\n".join(notes))
    if args.out:
        out = out_path(args.out)
        write_docs(out, SECTION_HEADING, docs_section(args, rows, notes, meta))
        print(f"wrote {out}")
    payload = {
        "benchmark": "ws_idle_rtt_fanout",
        "meta": meta,
        "params": {k: v for k, v in vars(args).items() if k != "idle_levels"},
        "levels": rows,
        "logs": logs,
        "median_rtt_chat_ms": median_of([r["rtt_chat"]["p50_ms"] for r in rows]),
    }
    print(json.dumps(payload, separators=(",", ":"), default=str))
    return 0


if __name__ == "__main__":
    run_main(main)
