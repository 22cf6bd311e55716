"""What storing one customer chat message costs PostgreSQL and this process, statement by statement.

The chat's hot path stores a message with one statement on the event loop
(``tickets.services.conversations._customer_message_append_async``: the ticket's gap-free sequence and
timestamps under its row lock, the INSERT, the ticket and customer read back). This script runs that very
function in a loop against the bench's own database, one message at a time, beside:

- *floor*: one plain ``INSERT`` of the message's text into a table with no index but its key, on the same
  async connection pool (what ``chat_bench.py --floor``'s store-echo does per message);
- *append, unprepared*: the chat's statement parsed and planned on every run (``DB_ASYNC_PREPARE=0``, what
  every version before issue 15's fifth pass did);
- *append, prepared*: prepared once per connection and run on its generic plan (the default).

Alternated in each round (the order reversed every other round). Per message: wall latency, this process's
CPU, and the CPU of the PostgreSQL backend that ran it (``/proc``, so PostgreSQL on this machine)::

    python -m supportflow.devservices exec -- .venv/bin/python bench/store_bench.py [--messages 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _harness
from _harness import BASE_DIR, bench_env, django_setup, percentile, run_main

BENCH_DB_NAME = "supportflow_storebench"
BENCH_REDIS_DB, BENCH_CACHE_DB = 10, 11  # nothing on the measured path uses Redis
SECRET_KEY = "store-bench-not-secret"  # noqa: S105 — the bench's own throwaway key
CONVERSATIONS = 100
VARIANTS = ("floor", "append, unprepared", "append, prepared")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args(argv)


def _backend_cpu_s(pids: set[int]) -> float:
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def _measure(variant: str, tickets: list[int], messages: int, tag: str) -> dict:
    from supportflow import aio
    from tickets.services import conversations

    async def floor(i: int) -> int:
        async with aio.connection() as conn:
            await conn.execute("INSERT INTO store_bench_floor (room, body) VALUES (%s, %s)", [tickets[i % 100], "hi"])
            return conn.info.backend_pid

    async def append(i: int) -> int:
        stored = await conversations._customer_message_append_async(
            ticket_id=tickets[i % len(tickets)], body="Is there a way to export my notes?", client_msg_id=f"{tag}-{i}"
        )
        if stored is None:
            raise RuntimeError(f"message {tag}-{i} was not stored")
        async with aio.connection() as conn:  # the pool's most recent: the one that just ran it
            return conn.info.backend_pid

    run = floor if variant == "floor" else append
    pids = {await run(i) for i in range(50)}  # warm: connections open, statement prepared
    latencies = []
    cpu, backend = time.process_time(), _backend_cpu_s(pids)
    for i in range(50, 50 + messages):
        started = time.perf_counter()
        pids.add(await run(i))
        latencies.append(time.perf_counter() - started)
    cpu, backend = time.process_time() - cpu, _backend_cpu_s(pids) - backend
    return {
        "variant": variant,
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p95_ms": round(percentile(latencies, 95) * 1000, 3),
        "python_cpu_ms": round(cpu / messages * 1000, 3),
        "postgres_cpu_ms": round(backend / messages * 1000, 3),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    env = bench_env(
        dict(os.environ),
        Path(tempfile.mkdtemp(prefix="supportflow-store-bench-")),
        script="store_bench.py",
        db_name=BENCH_DB_NAME,
        redis_db=BENCH_REDIS_DB,
        cache_db=BENCH_CACHE_DB,
        channels_db=BENCH_CACHE_DB,
        secret_key=SECRET_KEY,
        FEATURE_AI_PIPELINE="false",
    )
    _harness.recreate_database(os.environ["DATABASE_URL"], BENCH_DB_NAME)
    subprocess.run(  # noqa: S603 — this interpreter, fixed arguments
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--noinput", "-v", "0"],
        env=env,
        cwd=BASE_DIR,
        check=True,
        timeout=300,
    )
    django_setup(env)
    from django.conf import settings
    from django.db import connection
    from django.db.models import Count, F, Max

    from tickets import services
    from tickets.models import Ticket

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE store_bench_floor (id bigserial PRIMARY KEY, room bigint, body text)")
    tickets = []
    for i in range(CONVERSATIONS):
        customer = services.customer_get_or_create(email=f"store-{i}@bench.example.com", name=f"Store {i}")
        ticket = services.ticket_create(customer=customer, subject=f"Store {i}", body="Hello", channel="chat")
        tickets.append(ticket.pk)
    connection.close()
    _harness.log(f"{CONVERSATIONS} conversations; {args.rounds} rounds of {args.messages} messages per variant")

    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for round_no in range(args.rounds):
        order = VARIANTS if round_no % 2 == 0 else tuple(reversed(VARIANTS))
        for variant in order:
            settings.DB_ASYNC_PREPARE = variant != "append, unprepared"
            # a new event loop each time: a new async pool, its connections made under the setting above
            tag = f"r{round_no}{variant[0]}{'u' if 'unprepared' in variant else 'p'}"
            row = asyncio.run(_measure(variant, tickets, args.messages, tag))
            results[variant].append(row)
            _harness.log(json.dumps(row))
    gaps = (
        Ticket.objects.filter(pk__in=tickets)
        .annotate(stored=Count("messages"), top=Max("messages__seq"))
        .exclude(stored=F("last_message_seq"), top=F("last_message_seq"))
        .count()
    )
    if gaps:
        raise SystemExit(f"error: {gaps} conversations' sequences have gaps or duplicates")

    print(f"\n{args.rounds} rounds × {args.messages} messages, one at a time; median of the rounds (min–max)\n")
    print("| variant | p50 ms | p95 ms | this process CPU ms/msg | PostgreSQL backend CPU ms/msg |")
    print("|---|--:|--:|--:|--:|")
    summary = {}
    for variant in VARIANTS:
        rows = results[variant]
        cells = []
        for key in ("p50_ms", "p95_ms", "python_cpu_ms", "postgres_cpu_ms"):
            values = [r[key] for r in rows]
            cells.append(f"{_harness.median_of(values)} ({min(values)}–{max(values)})")
        summary[variant] = rows
        print(f"| {variant} | " + " | ".join(cells) + " |")
    print(json.dumps({"meta": _harness.machine_meta(), "rounds": summary}))
    return 0


if __name__ == "__main__":
    run_main(main)
