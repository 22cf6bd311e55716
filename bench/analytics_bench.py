"""Analytics pages benchmark: server time and SQL queries of every manager page at 10k and 100k tickets.

Run from the repository root, with the embedded services up::

    python -m supportflow.devservices exec -- .venv/bin/python bench/analytics_bench.py \
        [--sizes 10000,100000] [--repeats 20] [--days 365] [--seed 1] [--query 'days=365'] [--no-kb] \
        [--out docs/benchmarks.md]

What it does, in order:

1. Drops and recreates its own database ``supportflow_analyticsbench`` on the PostgreSQL of
   ``DATABASE_URL`` (never another database), migrates it and runs ``seed_demo`` (queues, SLA policies,
   agents, the demo knowledge base so answers cite real articles), with ``SF_DATA_DIR`` in a temporary
   directory. Its Redis databases (8 for ``REDIS_URL``, 9 for the cache, shared with ``kb_bench.py``,
   whose measured path does not use Redis) are emptied first.
2. For each size N of ``--sizes``, in increasing order: adds tickets with ``supportflow.demo.history`` until there
   are N (10k first, then 90k more: each step with its own seed, all over the same ``--days`` days up to
   the same end), timed (tickets/s); then ``manage.py analytics_rollup --since --until`` over the whole
   range (until that command exists, ``analytics.rollup.rebuild(since, until)`` if present: the pages
   read the rollups), timed; then ``analytics.gaps.refresh()`` if present (``--no-gaps`` skips it), timed,
   so the knowledge-gaps page shows what the nightly regrouping leaves.
3. Requests every page of the ``analytics`` URL namespace that takes no argument, and each CSV export
   when ``analytics`` publishes its export names (``EXPORTS``, ``EXPORT_TABLES`` or ``CSV_EXPORTS`` in
   ``analytics.views``, ``analytics.exports`` or ``analytics.selectors``) and a one-argument URL takes
   them, as a manager (a staff user of the ``Managers`` group, logged in with ``force_login``) through
   ``django.test.Client`` in this process: one warm-up request, then ``--repeats`` timed ones. Server
   time = the wall time around ``client.get`` (URL resolution, middleware, view, template, the whole
   response body), so there is no network or ASGI server in it. Queries are counted on every request
   (``CaptureQueriesContext``). When a page leaves anything in the cache, it is measured a second time
   with the cache emptied before each request ("cold"), so a cache cannot hide a slow query. A URL that
   answers GET with 405 is an action (a POST button), reported as not measured.
4. Prints tables and, as the very last stdout line, one JSON object; rewrites the
   ``## Analytics pages at 10k and 100k tickets`` section of ``docs/benchmarks.md``.

If the ``analytics`` namespace has no URL yet, it says so after the generation (and rollup) timings
and exits 0 without touching the docs. Target (issue 6): every page p95 ≤ 300 ms at 100k tickets, and
a query count that does not grow with the data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

from _harness import (
    bench_env as _harness_env,
)
from _harness import (
    close_django_connections,
    django_setup,
    docs_update,
    flush_redis_dbs,
    fmt,
    log,
    machine_meta,
    manage,
    percentile,
    recreate_database,
    run_main,
    stop_on_sigterm,
)

BENCH_DB_NAME = "supportflow_analyticsbench"
BENCH_REDIS_DB = 8  # REDIS_URL: nothing is enqueued (the AI pipeline is off); shared with kb_bench.py
BENCH_CACHE_DB = 9  # cache and channel layer
SECRET_KEY = "supportflow-analytics-bench-only-secret-key-never-used-outside-this-script-0123"  # noqa: S105
SECTION_HEADING = "## Analytics pages at 10k and 100k tickets"
NAMESPACE = "analytics"
TARGET_P95_MS = 300.0
EXPORT_NAMES = ("EXPORTS", "EXPORT_TABLES", "CSV_EXPORTS")
EXPORT_MODULES = ("analytics.views", "analytics.exports", "analytics.selectors")


# --- environment -----------------------------------------------------------------------------------


def bench_env(base: dict[str, str], data_dir: Path) -> dict[str, str]:
    return _harness_env(
        base, data_dir, script="analytics_bench.py", db_name=BENCH_DB_NAME, redis_db=BENCH_REDIS_DB,
        cache_db=BENCH_CACHE_DB, channels_db=BENCH_CACHE_DB, secret_key=SECRET_KEY,
        ALLOWED_HOSTS="testserver,127.0.0.1,localhost", FEATURE_AI_PIPELINE="false",
    )  # fmt: skip


# --- what to request -------------------------------------------------------------------------------


def _walk(patterns, prefix: str = ""):
    """(namespaced name, number of arguments) of every named URL pattern, nested includes too."""
    from django.urls import URLPattern, URLResolver

    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{prefix}{pattern.namespace}:" if pattern.namespace else prefix
            yield from _walk(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{prefix}{pattern.name}", pattern.pattern.regex.groups


def export_names() -> tuple[str, list[str]]:
    """Where analytics publishes its CSV export names, and the names ('' and [] when it does not)."""
    for module_name in EXPORT_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr in EXPORT_NAMES:
            value = getattr(module, attr, None)
            if isinstance(value, dict | list | tuple) and value:
                return f"{module_name}.{attr}", [str(v) for v in value]
    return "", []


def discover_pages() -> tuple[list[dict], list[str]]:
    """The pages to time: every ``analytics:`` URL without arguments, plus each export name through the
    one-argument URLs that accept it. Also returns what was skipped and why."""
    from django.urls import NoReverseMatch, get_resolver, reverse

    resolver = get_resolver()
    if NAMESPACE not in resolver.namespace_dict:
        return [], [f"no URL namespace {NAMESPACE!r} in the project's urls"]
    _prefix, sub = resolver.namespace_dict[NAMESPACE]
    pages, skipped = [], []
    one_arg = []
    for name, groups in _walk(sub.url_patterns, f"{NAMESPACE}:"):
        if groups == 0:
            try:
                pages.append({"name": name, "url": reverse(name)})
            except NoReverseMatch as exc:
                skipped.append(f"{name}: {exc}")
        elif groups == 1:
            one_arg.append(name)
        else:
            skipped.append(f"{name}: takes {groups} arguments")
    source, exports = export_names()
    for name in one_arg:
        matched = False
        for table in exports:
            try:
                url = reverse(name, args=[table])
            except NoReverseMatch:
                continue
            pages.append({"name": f"{name}[{table}]", "url": url, "export": table})
            matched = True
        if not matched:
            skipped.append(f"{name}: takes an argument" + ("" if exports else " (no export names published)"))
    if exports and not any("export" in p for p in pages):
        skipped.append(f"{source} lists {len(exports)} exports but no one-argument analytics URL takes them")
    seen, unique = set(), []
    for page in pages:
        if page["url"] not in seen:
            seen.add(page["url"])
            unique.append(page)
    return unique, skipped


def manager_user():
    from django.contrib.auth import get_user_model

    from tickets import roles

    user = (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True, is_superuser=False, groups__name=roles.MANAGERS)
        .order_by("pk")
        .first()
    )
    if user is None:
        raise SystemExit("error: no active staff user in the Managers group (seed_demo creates one)")
    return user


# --- measuring -------------------------------------------------------------------------------------


def cache_keys() -> int:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"], socket_timeout=5)
    try:
        return client.dbsize()
    finally:
        client.close()


def timed_get(client, url: str) -> tuple[float, int, int, int]:
    """(seconds, status, queries, body bytes) of one request. The query log is emptied first: it keeps
    at most 9,000 entries, and once full a capture would count nothing."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        elapsed = time.perf_counter() - started
    return elapsed, response.status_code, len(queries.captured_queries), len(body)


def measure(client, page: dict, repeats: int, query: str) -> dict:
    from django.core.cache import cache

    url = page["url"] + (("&" if "?" in page["url"] else "?") + query if query else "")
    cache.clear()
    warm = timed_get(client, url)
    if warm[1] == 405:
        return {"name": page["name"], "url": url, "skipped": "GET not allowed (405): an action, not a page"}
    uses_cache = cache_keys() > 0
    runs = [timed_get(client, url) for _ in range(repeats)]
    out = {
        "name": page["name"],
        "url": url,
        "warmup_ms": round(warm[0] * 1000, 1),
        "warmup_queries": warm[2],
        "status": sorted({warm[1], *(r[1] for r in runs)}),
        "bytes": runs[-1][3] if runs else warm[3],
        "uses_cache": uses_cache,
        **_stats([r[0] for r in runs], [r[2] for r in runs]),
    }
    if uses_cache:
        cold = []
        for _ in range(repeats):
            cache.clear()
            cold.append(timed_get(client, url))
        out["cold"] = _stats([r[0] for r in cold], [r[2] for r in cold])
        out["status"] = sorted({*out["status"], *(r[1] for r in cold)})
    return out


def _stats(seconds: list[float], queries: list[int]) -> dict:
    return {
        "p50_ms": _ms(percentile(seconds, 50)),
        "p95_ms": _ms(percentile(seconds, 95)),
        "max_ms": _ms(max(seconds, default=None)),
        "queries": [min(queries), max(queries)] if queries else None,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def rollup(since: dt.date, until: dt.date) -> dict | None:
    """``analytics_rollup`` over the whole range, timed. Until that command exists, ``analytics.rollup.
    rebuild(since, until)`` if there is one (the pages read the rollups); None when neither exists."""
    from django.core.management import call_command, get_commands

    out = io.StringIO()
    started = time.perf_counter()
    if "analytics_rollup" in get_commands():
        how = "manage.py analytics_rollup"
        call_command("analytics_rollup", "--since", since.isoformat(), "--until", until.isoformat(), stdout=out)
    else:
        try:
            from analytics.rollup import rebuild
        except ImportError:
            return None
        how = "analytics.rollup.rebuild()"
        out.write(f"{rebuild(since, until)}\n")
    seconds = time.perf_counter() - started
    for line in out.getvalue().splitlines():
        log(f"  rollup: {line}")
    return {"seconds": round(seconds, 2), "days": (until - since).days + 1, "how": how}


def gaps_refresh() -> dict | None:
    """Regroup the knowledge gaps (``analytics.gaps.refresh``: embeds the window's unanswered questions),
    timed, so the gaps page shows what a nightly run leaves; None when there is no such function."""
    try:
        from analytics.gaps import refresh
    except ImportError:
        return None
    started = time.perf_counter()
    groups = refresh()
    return {"seconds": round(time.perf_counter() - started, 2), "groups": groups}


def data_counts() -> dict:
    from django.db import connection

    tables = {
        "tickets": "tickets_ticket",
        "messages": "tickets_message",
        "events": "tickets_ticketevent",
        "ai_runs": "tickets_airun",
        "ai_drafts": "tickets_aidraft",
        "customers": "tickets_customer",
    }
    with connection.cursor() as cursor:
        out = {}
        for name, table in tables.items():
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 — fixed table names
            out[name] = cursor.fetchone()[0]
        cursor.execute("SELECT pg_database_size(current_database())")
        out["database_mb"] = round(cursor.fetchone()[0] / 2**20, 1)
    return out


# --- reporting -------------------------------------------------------------------------------------


def _size_label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def generation_table(steps: list[dict]) -> str:
    lines = [
        "| tickets | added | seconds | tickets/s | messages | events | AI runs | drafts | database | rollup | gaps |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in steps:
        g, c = s["generated"], s["data"]
        roll = f"{s['rollup']['seconds']:.1f} s ({s['rollup']['days']} days)" if s.get("rollup") else "–"
        gaps = f"{s['gaps']['seconds']:.1f} s ({s['gaps']['groups']} groups)" if s.get("gaps") else "–"
        lines.append(
            f"| {c['tickets']:,} | {g['tickets']:,} | {g['seconds']:.1f} | {g['tickets_per_s']:,.0f} | "
            f"{c['messages']:,} | {c['events']:,} | {c['ai_runs']:,} | {c['ai_drafts']:,} | "
            f"{c['database_mb']:,.0f} MB | {roll} | {gaps} |"
        )
    return "\n".join(lines)


def pages_table(steps: list[dict]) -> str:
    sizes = [s for s in steps if s.get("pages")]
    if not sizes:
        return ""
    head = "| page |" + "".join(
        f" {_size_label(s['size'])} p50 | {_size_label(s['size'])} p95 | queries |" for s in sizes
    )
    lines = [head + " status | target |", "|---|" + "---:|---:|---:|" * len(sizes) + "---|---|"]
    last = sizes[-1]
    for i, page in enumerate(last["pages"]):
        cells = []
        for s in sizes:
            p = s["pages"][i] if i < len(s["pages"]) else None
            if p is None:
                cells.append(" – | – | – |")
                continue
            q = (p.get("cold") or p)["queries"]
            queries = "–" if q is None else (str(q[0]) if q[0] == q[1] else f"{q[0]}–{q[1]}")
            cold = f" (cold {fmt(p['cold']['p95_ms'])})" if p.get("cold") else ""
            cells.append(f" {fmt(p['p50_ms'])} | {fmt(p['p95_ms'])}{cold} | {queries} |")
        status = ",".join(str(c) for c in page["status"])
        lines.append(f"| `{page['url']}` |" + "".join(cells) + f" {status} | {verdict(sizes, i)} |")
    return "\n".join(lines)


def verdict(sizes: list[dict], i: int) -> str:
    """p95 within the target at the largest size, and the same number of queries at every size; both
    taken cold when the page caches (a warm request's count depends on what the cache held)."""
    last = sizes[-1]["pages"][i]
    if any(c >= 400 for c in last["status"]):
        return f"HTTP {','.join(map(str, last['status']))}"
    p95 = (last.get("cold") or last)["p95_ms"]
    counts = {
        tuple((s["pages"][i].get("cold") or s["pages"][i])["queries"] or ()) for s in sizes if i < len(s["pages"])
    }
    ok_time = p95 is not None and p95 <= TARGET_P95_MS
    ok_queries = len(counts) == 1 and all(len(set(c)) == 1 for c in counts)
    return ("ok" if ok_time else f"p95 > {TARGET_P95_MS:.0f} ms") + ("" if ok_queries else ", queries vary")


def docs_section(args, steps: list[dict], meta: dict, skipped: list[str], exports_from: str) -> str:
    sizes = ",".join(str(s) for s in args.size_list)
    query = f" --query '{args.query}'" if args.query else ""
    rollup_how = next((f"`{s['rollup']['how']}`" for s in steps if s.get("rollup")), "no rollup command yet")
    return f"""{SECTION_HEADING}

Server time and SQL queries of every manager analytics page, on a year of generated tickets (issue 6:
p95 ≤ {TARGET_P95_MS:.0f} ms at 100k tickets, query count independent of the data). Measured by
`bench/analytics_bench.py` on {meta["date"]} ({meta["cpus"]} cores, {meta["mem_gb"]} GB, load average
{meta["load_start"]} at the start and {meta["load_end"]} at the end; other jobs shared the machine):

```sh
python -m supportflow.devservices exec -- .venv/bin/python bench/analytics_bench.py \\
    --sizes {sizes} --repeats {args.repeats} --days {args.days} --seed {args.seed}{query}
```

It drops and recreates its own database `{BENCH_DB_NAME}`, migrates it and runs `seed_demo`, then, for
each size, adds tickets with `supportflow.demo.history` (the `seed_demo --tickets N` generator: customers, threads
with AI answers, agent replies and internal notes, AI runs and drafts, escalations, SLA clocks and
breaches, triage corrections, reopenings, CSAT and knowledge-gap questions, over {args.days} days), builds
the daily rollups over the whole range ({rollup_how}) and regroups the knowledge gaps, and requests each
page of the
`analytics` URL namespace as a manager with `django.test.Client` in-process: one warm-up request, then
{args.repeats} timed ones (server time = wall time around `client.get`, whole body included; no network,
no ASGI server). Queries are counted on every request. A page that leaves anything in the cache is also
timed with the cache emptied before each request (*cold*, p95 in brackets); its query count and the
target are then taken cold, since a warm request's count depends on what the cache held.

**Generating the data**

{generation_table(steps)}

**Pages** (milliseconds)

{pages_table(steps)}

{("Not measured: " + "; ".join(skipped) + ".") if skipped else ""}
{f"CSV exports from `{exports_from}`." if exports_from else ""}
Every figure, per page and size, is in the JSON line the script prints last.
"""


# --- main ------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated ticket totals, increasing")
    parser.add_argument("--repeats", type=int, default=20, help="timed requests per page and size")
    parser.add_argument("--days", type=int, default=365, help="days the tickets are spread over")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first step (the next ones +1, +2…)")
    parser.add_argument("--query", default="", help="query string added to every page URL, e.g. 'days=365'")
    parser.add_argument("--no-kb", action="store_true", help="seed_demo --no-kb (answers then cite nothing)")
    parser.add_argument("--no-gaps", action="store_true", help="skip regrouping the knowledge gaps after each size")
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file to update ('' to skip)")
    args = parser.parse_args(argv)
    try:
        args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes comma-separated whole numbers")
    if not args.size_list or args.size_list != sorted(set(args.size_list)) or args.size_list[0] < 1:
        parser.error("--sizes: increasing positive numbers, e.g. 10000,100000")
    if not 1 <= args.repeats <= 1000 or not 1 <= args.days <= 3660:
        parser.error("--repeats 1..1000, --days 1..3660")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    work_dir = Path(tempfile.mkdtemp(prefix="supportflow-analytics-bench-"))
    env = bench_env(dict(os.environ), work_dir / "data")
    load_start = [round(v, 2) for v in os.getloadavg()]
    log(f"database {BENCH_DB_NAME}; redis dbs {BENCH_REDIS_DB}/{BENCH_CACHE_DB}; load average {load_start}")
    started = time.perf_counter()

    recreate_database(env["DATABASE_URL"], BENCH_DB_NAME)
    flush_redis_dbs(env["REDIS_URL"], (BENCH_REDIS_DB, BENCH_CACHE_DB))
    log("migrating")
    migrate_s = manage(env, "migrate", "--noinput", "-v", "0", timeout=600)
    log("seed_demo" + (" --no-kb" if args.no_kb else " (embeds the demo knowledge base)"))
    seed_s = manage(env, "seed_demo", *(["--no-kb"] if args.no_kb else []), timeout=1200)
    flush_redis_dbs(env["REDIS_URL"], (BENCH_REDIS_DB, BENCH_CACHE_DB))  # the passage scan it may have queued

    django_setup(env)
    from django.test import Client

    from supportflow.demo import history

    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    since, until = (end - dt.timedelta(days=args.days)).date(), end.date()
    pages, skipped = discover_pages()
    exports_from, _ = export_names()
    steps: list[dict] = []
    have = 0
    try:
        for step, size in enumerate(args.size_list):
            add = size - have
            log(f"generating {add:,} tickets (total {size:,}, seed {args.seed + step})")
            generated = history.generate(
                add, days=args.days, seed=args.seed + step, end=end, progress=lambda text: log(text.strip())
            )
            have = size
            record = {"size": size, "generated": generated, "data": data_counts()}
            log(f"generated {add:,} tickets in {generated['seconds']:.1f}s ({generated['tickets_per_s']:,.0f}/s)")
            record["rollup"] = rollup(since, until)
            if record["rollup"]:
                log(f"{record['rollup']['how']} {since}..{until}: {record['rollup']['seconds']:.1f}s")
            record["gaps"] = None if args.no_gaps else gaps_refresh()
            if record["gaps"]:
                log(f"knowledge gaps regrouped: {record['gaps']['groups']} groups in {record['gaps']['seconds']:.1f}s")
            if pages:
                client = Client()
                client.force_login(manager_user())
                record["pages"] = []
                for page in list(pages):
                    result = measure(client, page, args.repeats, args.query)
                    if "skipped" in result:
                        pages.remove(page)
                        skipped.append(f"{page['name']}: {result['skipped']}")
                        for earlier in steps:
                            earlier["pages"] = [p for p in earlier["pages"] if p["url"] != result["url"]]
                        continue
                    record["pages"].append(result)
                    log(
                        f"  {size:,} {page['url']}: p50 {fmt(result['p50_ms'])} p95 {fmt(result['p95_ms'])} ms, "
                        f"{result['queries']} queries, HTTP {result['status']}"
                    )
            steps.append(record)
    finally:
        close_django_connections()
    total = time.perf_counter() - started
    meta = {
        **machine_meta(),
        "load_start": load_start,
        "load_end": [round(v, 2) for v in os.getloadavg()],
        "migrate_s": round(migrate_s, 1),
        "seed_s": round(seed_s, 1),
        "bench_seconds": round(total, 1),
        "end": end.isoformat(),
    }
    meta.pop("load", None)

    print(f"\nAnalytics load data ({meta['date']}, {meta['cpus']} cores, load {load_start} → {meta['load_end']})\n")
    print(generation_table(steps))
    if not pages:
        print(
            f"\nNo analytics pages to measure: {'; '.join(skipped) or 'the analytics namespace has no URL'}. "
            "Only the data generation (and rollup, if any) was timed; docs not updated."
        )
    else:
        print(f"\nAnalytics pages, server time in ms ({args.repeats} requests after one warm-up)\n")
        print(pages_table(steps))
        if skipped:
            print("\nNot measured: " + "; ".join(skipped))
        if args.out:
            docs_update(args.out, SECTION_HEADING, docs_section(args, steps, meta, skipped, exports_from))
    print(f"benchmark took {total:.0f}s")
    payload = {
        "benchmark": "analytics_pages",
        "meta": meta,
        "params": {
            "sizes": args.size_list,
            "repeats": args.repeats,
            "days": args.days,
            "seed": args.seed,
            "query": args.query,
            "kb": not args.no_kb,
        },
        "pages_found": len(pages),
        "skipped": skipped,
        "exports_from": exports_from,
        "target_p95_ms": TARGET_P95_MS,
        "steps": steps,
    }
    print(json.dumps(payload, separators=(",", ":"), default=str))
    return 0


if __name__ == "__main__":
    run_main(main, ignore_broken_pipe=True)
