"""What handing one chat message to the AI costs the web process: Celery's producer against the event loop's push.

A customer's chat message is handed to the ``ai`` queue from the chat's event loop
(``tickets.tasks.ai_enqueue_async``: Celery's task message in kombu's Redis envelope, one LPUSH). This script
pushes ``--messages`` messages one at a time to a real Redis (the bench's own database) in each of:

- *Celery's producer*: ``tasks.ai_enqueue`` (``send_task``), what the thread path and every other sender do;
- *loop push, message made whole*: ``ai_enqueue_async`` with Celery's message built from nothing for every
  message (``create_task_message``; the code before issue 15's sixth pass did this);
- *loop push*: ``ai_enqueue_async`` as it runs (the message's fixed parts made once per process and thread).

Alternated in each round (the order reversed every other round). Per message: this process's CPU and the wall
time; the queue must hold exactly what was pushed, and every message must be the same task with its own id::

    python -m supportflow.devservices exec -- .venv/bin/python bench/enqueue_bench.py [--messages 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import tempfile
import time
from pathlib import Path

import _harness
from _harness import bench_env, django_setup, run_main

BENCH_REDIS_DB, BENCH_CACHE_DB = 12, 13
SECRET_KEY = "enqueue-bench-not-secret"  # noqa: S105 — the bench's own throwaway key
VARIANTS = ("Celery's producer", "loop push, message made whole", "loop push")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args(argv)


def _push(variant: str, messages: int) -> tuple[float, float]:
    """CPU and wall seconds for ``messages`` pushes of ``variant``."""
    from tickets import tasks

    if variant == "Celery's producer":
        cpu, wall = time.process_time(), time.perf_counter()
        for message_id in range(1, messages + 1):
            tasks.ai_enqueue(message_id)
        return time.process_time() - cpu, time.perf_counter() - wall

    whole = variant == "loop push, message made whole"

    async def pushes() -> tuple[float, float]:
        await tasks.ai_enqueue_async(0)  # the loop's Redis client connected before the clock starts
        cpu, wall = time.process_time(), time.perf_counter()
        for message_id in range(1, messages + 1):
            if whole:
                tasks._ai_message_parts.cache_clear()
            if not await tasks.ai_enqueue_async(message_id):
                raise SystemExit(f"error: message {message_id} was not pushed")
        return time.process_time() - cpu, time.perf_counter() - wall

    return asyncio.run(pushes())


def _check_queue(client, queue: str, expected: int) -> None:
    """Exactly ``expected`` task messages (and the warm-up's), each ``process_message`` with its own id."""
    from tickets.tasks import AI_PROCESS_MESSAGE

    raw = client.lrange(queue, 0, -1)
    ids, task_ids = set(), set()
    for item in raw:
        envelope = json.loads(item)
        if envelope["headers"]["task"] != AI_PROCESS_MESSAGE:
            raise SystemExit(f"error: {queue} holds a {envelope['headers']['task']} message")
        ids.add(json.loads(base64.b64decode(envelope["body"]))[0][0])
        task_ids.add(envelope["headers"]["id"])
    wanted = set(range(1, expected + 1))
    if not wanted <= ids or len(task_ids) != len(raw):
        raise SystemExit(f"error: {queue} holds {len(raw)} messages, {len(ids & wanted)} of the {expected} pushed")
    client.delete(queue)


def main(argv=None) -> int:
    args = parse_args(argv)
    env = bench_env(
        dict(os.environ),
        Path(tempfile.mkdtemp(prefix="supportflow-enqueue-bench-")),
        script="enqueue_bench.py",
        db_name="supportflow_enqueuebench",  # never connected to: nothing here uses the database
        redis_db=BENCH_REDIS_DB,
        cache_db=BENCH_CACHE_DB,
        channels_db=BENCH_CACHE_DB,
        secret_key=SECRET_KEY,
        FEATURE_AI_PIPELINE="true",
    )
    django_setup(env)
    import redis
    from django.conf import settings

    from supportflow.celery import app
    from tickets import tasks

    app.tasks  # noqa: B018 - finalized, as in the server: the task's time limits go into its message
    queue, _envelope = tasks.ai_task_envelope(0)
    client = redis.Redis.from_url(settings.REDIS_BROKER_URL)
    client.delete(queue)
    _harness.log(f"{args.rounds} rounds of {args.messages} messages per variant to {queue!r} on the bench's Redis")

    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for round_no in range(args.rounds):
        for variant in VARIANTS if round_no % 2 == 0 else tuple(reversed(VARIANTS)):
            cpu, wall = _push(variant, args.messages)
            _check_queue(client, queue, args.messages)
            row = {"cpu_us": round(cpu / args.messages * 1e6, 1), "wall_us": round(wall / args.messages * 1e6, 1)}
            results[variant].append(row)
            _harness.log(f"{variant}: {json.dumps(row)}")
    client.close()

    print(f"\n{args.rounds} rounds × {args.messages} messages, one at a time; median of the rounds (min–max)\n")
    print("| variant | this process CPU µs/msg | wall µs/msg |")
    print("|---|--:|--:|")
    for variant in VARIANTS:
        cells = []
        for key in ("cpu_us", "wall_us"):
            values = [r[key] for r in results[variant]]
            cells.append(f"{_harness.median_of(values)} ({min(values)}–{max(values)})")
        print(f"| {variant} | " + " | ".join(cells) + " |")
    print(json.dumps({"meta": _harness.machine_meta(), "rounds": results}))
    return 0


if __name__ == "__main__":
    run_main(main)
