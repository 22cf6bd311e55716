"""CPU per request of one API endpoint, in-process (Django's test client, no server), and its profile.

For finding where an endpoint's time goes, not for headline figures (those are ``http_bench.py`` and
``api_bench.py``, through a real server). It reads the database ``http_bench.py`` leaves behind
(``supportflow_httpbench``: run that first), creates a throwaway API key for ``--user`` and deletes it at
the end, and prints the CPU and wall milliseconds per request over ``--requests`` requests after 20 warm-up
ones, the number of SQL queries of one request, and with ``--profile`` the cProfile table (wall-clock, so
database waits show too)::

    python -m supportflow.devservices exec -- .venv/bin/python bench/api_profile.py \\
        [--path /api/v1/tickets/] [--user alice] [--requests 300] [--profile] [--sort tottime] [--lines 40]

A ``--path`` under ``/bench/`` turns ``BENCH_ENDPOINTS`` on (``/bench/api-floor/``: the API's framework
alone). ``{ref}`` in ``--path`` becomes a ticket the user may see with at least 5 messages. ``--parts`` also times
the ticket list's own stages one by one, each in a loop of ``--requests`` (CPU ms per run): the key's
check, building the scoped queryset, compiling it, running the compiled SQL alone, the ORM's rows, and
the rows formatted as the API's JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

from _harness import django_setup, run_main
from http_bench import bench_env


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", default="/api/v1/tickets/")
    parser.add_argument("--user", default="alice", help="alice: an agent (scoped); maria: a manager")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--lines", type=int, default=40)
    parser.add_argument("--parts", action="store_true", help="time the ticket list's stages one by one")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    env = bench_env(dict(os.environ), Path(tempfile.mkdtemp(prefix="supportflow-api-profile-")))
    if args.path.startswith("/bench/"):  # the benchmarks' own floors (/bench/api-floor/, …)
        env["BENCH_ENDPOINTS"] = "1"
    django_setup(env)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from supportflow.api.keys import api_key_create, api_key_revoke
    from tickets import selectors

    user = get_user_model().objects.get(username=args.user)
    key, secret = api_key_create(name="api_profile", user=user, scopes=["tickets:read"])
    try:
        path = args.path
        if "{ref}" in path:
            ticket = selectors.ticket_queryset_for_user(user=user).filter(last_message_seq__gte=5).first()
            path = path.replace("{ref}", ticket.reference)
        client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {secret}")
        for _ in range(20):
            response = client.get(path)
            if response.status_code != 200:
                raise SystemExit(f"error: {path} answered {response.status_code}: {response.content[:300]!r}")
        queries: list[str] = []

        def count(execute, sql, params, many, context):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            client.get(path)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.requests):
            client.get(path)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"{path} as {args.user}: {1000 * cpu / args.requests:.2f} ms CPU/request, "
            f"{1000 * wall / args.requests:.2f} ms wall/request, {len(queries)} queries"
        )
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.requests):
                client.get(path)
            profile.disable()
            pstats.Stats(profile).sort_stats(args.sort).print_stats(args.lines)
        if args.parts:
            _time_parts(user, secret, args.requests)
    finally:
        api_key_revoke(key=key)
        key.delete()
    return 0


def _time_parts(user, secret: str, runs: int) -> None:
    """The first page of ``/api/v1/tickets/`` stage by stage, as ``TicketViewSet.list`` and
    ``KeysetPagination`` run it (the default ordering, no filters)."""
    import json

    from django.db import connection

    from supportflow.api import serializers as s
    from supportflow.api.keys import api_key_check
    from supportflow.api.pagination import COUNT_COLUMN, COUNT_LIMIT, BoundedCount
    from tickets import selectors

    def page():
        scoped = selectors.ticket_queryset_for_user(user=user)
        bounded = scoped.order_by().values("pk")[: COUNT_LIMIT + 1]
        rows = scoped.order_by("-created_at", "-pk").values(*s.TICKET_COLUMNS)
        return rows.annotate(**{COUNT_COLUMN: BoundedCount(bounded)})[:26]

    sql, params = page().query.sql_with_params()

    def raw():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    stages = (
        ("the key checked, its user and roles loaded", lambda: api_key_check(secret)),
        ("the scoped page's queryset built", page),
        ("… and compiled to SQL", lambda: page().query.sql_with_params()),
        ("the compiled SQL run alone, rows as tuples", raw),
        ("the ORM's page: built, compiled, run, rows as dicts", lambda: list(page())),
        ("… and formatted as the API's rows", lambda: s.ticket_rows(list(page()))),
        ("… and dumped as JSON", lambda: json.dumps(s.ticket_rows(list(page())))),
    )
    for label, stage in stages:
        for _ in range(20):
            stage()
        cpu = time.process_time()
        for _ in range(runs):
            stage()
        print(f"  {label}: {1000 * (time.process_time() - cpu) / runs:.2f} ms CPU")


if __name__ == "__main__":
    run_main(main)
