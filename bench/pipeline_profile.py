"""Where one message's CPU goes in ``tickets.ai.pipeline.process_message`` (local provider, warm process).

Opens ``--messages`` chat tickets in the current database (run ``manage seed_demo`` first) with
``pipeline_bench.py``'s questions, answers ``--warmup`` of them unmeasured, then runs the rest one by one in
this process under cProfile and prints, per message: wall and CPU milliseconds, database queries
(``CaptureQueriesContext``), embedding-model calls and texts encoded (all and distinct), and the
functions with the most cumulative and own time. The last stdout line is one JSON object.
Nothing is enqueued (``FEATURE_AI_PIPELINE=false``): the pipeline runs here, not in a worker.

    python -m supportflow.devservices exec -- .venv/bin/python bench/pipeline_profile.py \
        [--messages 200] [--warmup 10] [--top 30] [--sort cumulative]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import re
import statistics
import sys
import time
import traceback
from collections import Counter
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--no-profile", action="store_true", help="time only (cProfile adds its own overhead)")
    parser.add_argument(
        "--fresh-texts",
        action="store_true",
        help="forget the message texts' embeddings before each message and turn the AI cache off (the questions "
        "repeat; real ones do not)",
    )
    parser.add_argument(
        "--async-to-sync", action="store_true", help="send live updates as before worker processes had their own loop"
    )
    parser.add_argument("--dump", default="", help="also write the cProfile stats to this file")
    parser.add_argument("--sql", type=int, default=0, help="print the N most frequent query shapes")
    parser.add_argument(
        "--sql-origin", action="store_true", help="with --sql: under each shape, the lines of our code that sent it"
    )
    args = parser.parse_args(argv)

    os.environ["FEATURE_AI_PIPELINE"] = "false"
    if args.fresh_texts:
        os.environ["AI_CACHE_ENABLED"] = "false"  # shared vectors, retrievals and answers would serve the repeats
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportflow.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from pipeline_bench import OPENING, draw_questions

    from knowledge import embeddings
    from tickets import services
    from tickets.ai.pipeline import process_message
    from tickets.models import Message, Ticket

    rng = random.Random(args.seed)  # noqa: S311 — a reproducible draw, not a secret
    questions = draw_questions(args.warmup + args.messages, 0.2, rng)
    stamp = time.strftime("%Y%m%d%H%M%S")
    message_ids = []
    for i, (_kind, _topic, question) in enumerate(questions):
        customer = services.customer_get_or_create(email=f"prof-{stamp}-{i}@profile.example.com", name=f"Prof {i}")
        ticket = services.ticket_create(
            customer=customer, subject=f"Profile {stamp} {i}", body=OPENING, channel=Ticket.Channel.CHAT
        )
        message = services.message_create(ticket=ticket, author_kind=Message.AuthorKind.CUSTOMER, body=question)
        message_ids.append(message.pk)
    _harness.log(f"{len(message_ids)} tickets opened; warming up on {args.warmup}")

    from tickets import realtime

    if hasattr(realtime, "use_own_event_loop") and not args.async_to_sync:
        realtime.use_own_event_loop()  # what worker_process_init does in a Celery worker process
    model = embeddings.get_model()
    encoded: list[list[str]] = []
    original = model.encode

    def counting_encode(sentences, *a, **kw):
        encoded[-1].append(sentences if isinstance(sentences, str) else list(sentences))
        return original(sentences, *a, **kw)

    model.encode = counting_encode
    for message_id in message_ids[: args.warmup]:
        encoded.append([])
        process_message(message_id=message_id)

    profiler = cProfile.Profile()
    rows, outcomes, shapes = [], Counter(), Counter()
    origins: dict[str, Counter] = {}
    for message_id in message_ids[args.warmup :]:
        encoded.append([])
        if args.fresh_texts:
            _forget_message_texts(embeddings)
        connection.queries_log.clear()  # a bounded deque: a full one would miscount
        with (
            CaptureQueriesContext(connection) as queries,
            connection.execute_wrapper(partial(_note_origin, origins) if args.sql_origin else _pass_through),
        ):
            wall, cpu = time.perf_counter(), time.process_time()
            if not args.no_profile:
                profiler.enable()
            outcome = process_message(message_id=message_id)
            if not args.no_profile:
                profiler.disable()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        outcomes[outcome] += 1
        shapes.update(_shape(q["sql"]) for q in queries.captured_queries)
        texts = [t for call in encoded[-1] for t in ([call] if isinstance(call, str) else call)]
        rows.append(
            {
                "wall_ms": wall * 1000,
                "cpu_ms": cpu * 1000,
                "queries": len(queries),
                "encode_calls": len(encoded[-1]),
                "texts": len(texts),
                "distinct_texts": len(set(texts)),
            }
        )
    model.encode = original

    def stat(key: str) -> dict:
        values = [r[key] for r in rows]
        return {"mean": round(statistics.fmean(values), 2), "p50": round(statistics.median(values), 2)}

    summary = {key: stat(key) for key in rows[0]}
    summary["outcomes"] = dict(outcomes)
    summary["messages"] = len(rows)
    summary["profiled"] = not args.no_profile
    print(f"{len(rows)} messages (profiled: {not args.no_profile}), outcomes {dict(outcomes)}")
    for key, value in summary.items():
        if isinstance(value, dict) and "mean" in value:
            print(f"  {key:15s} mean {value['mean']:9.2f}  p50 {value['p50']:9.2f}")
    if not args.no_profile:
        for sort in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(sort).print_stats(args.top)
            print(out.getvalue())
    for shape, count in shapes.most_common(args.sql):
        print(f"{count / len(rows):6.2f}/msg  {shape[:220]}")
        for origin, n in origins.get(shape, Counter()).most_common(4):
            print(f"          {n / len(rows):5.2f}  {origin}")
    if args.dump and not args.no_profile:
        profiler.dump_stats(args.dump)
    print(json.dumps(summary))
    return 0


def _forget_message_texts(embeddings) -> None:
    """Empty the per-text embedding cache (older code: the query cache); passages' caches stay warm."""
    if hasattr(embeddings, "_cache"):
        with embeddings._cache_lock:
            embeddings._cache.clear()
    if hasattr(embeddings, "_embed_query_cached"):
        embeddings._embed_query_cached.cache_clear()


def _pass_through(execute, sql, params, many, context):
    return execute(sql, params, many, context)


def _note_origin(origins: dict[str, Counter], execute, sql, params, many, context):
    """Count which of our lines (the innermost two outside Django and the bench) sent this query's shape."""
    root = str(Path(__file__).resolve().parent.parent)
    ours = [
        f"{frame.filename[len(root) + 1 :]}:{frame.lineno} {frame.name}"
        for frame in traceback.extract_stack()
        if frame.filename.startswith(root) and "/bench/" not in frame.filename and "/.venv/" not in frame.filename
    ]
    origins.setdefault(_shape(sql.replace("%s", "?")), Counter())[" < ".join(reversed(ours[-2:]))] += 1
    return execute(sql, params, many, context)


def _shape(sql: str) -> str:
    """A query without its literals, so repeats of one statement count together."""
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+(?:\.\d+)?(?:e-?\d+)?\b", "?", sql)
    return re.sub(r"\[[^\]]*\]", "[?]", sql)


if __name__ == "__main__":
    raise SystemExit(main())
