"""REST API latency under a modest load: ``/api/v1/`` endpoints next to ``/healthz``, same server, same clients.

Run from the repository root, with the embedded services up::

    python -m supportflow.devservices exec -- .venv/bin/python bench/api_bench.py \
        [--clients 10] [--duration 30] [--tickets 10000] [--out docs/benchmarks.md]

What it does, in order:

1. Drops and recreates its own database ``supportflow_apibench`` on the PostgreSQL of ``DATABASE_URL``
   (never another database), migrates it, runs ``seed_demo`` (queues, agents, the 39-article demo
   knowledge base, embedded) with ``SF_DATA_DIR`` in a temporary directory, adds ``--tickets`` tickets
   of history with ``supportflow.demo.history`` (365 days) and rebuilds the analytics rollups over them. It
   empties its own Redis databases (URL 3, cache and channel layer 4) before and after.
2. Creates two API keys in this process: the manager's (``maria``, every scope) and an agent's
   (``alice``, who sees her two queues, unrouted tickets and her own).
3. Starts, like ``make run`` does, ONE uvicorn (``supportflow.asgi:application``) with
   ``FEATURE_AI_PIPELINE=false`` (creating a ticket or a message must not run the AI in the measured
   process; nothing consumes the Celery queue, whose on-commit enqueues stay in the bench's Redis DB) and
   ``API_RATE=1000000/min`` (the throttle is still checked on every request, only its threshold changes).
4. One phase per endpoint, each ``--duration`` seconds: ``--clients`` closed-loop clients (one keep-alive
   HTTP/1.1 connection each, httpx), each sending its next request as soon as the last one is answered.
   The baseline, ``GET /healthz`` (no database, no authentication), runs first and last over the same
   connections; every endpoint's p95 is divided by the baseline's p95 (both baseline phases pooled).
   A short unmeasured warm-up per endpoint comes first (the embedding model loads on the first search).
5. Prints tables and, as the very last stdout line, one JSON object; rewrites the
   ``## REST API latency under load`` section of ``docs/benchmarks.md``.

Clients, server, PostgreSQL and Redis share the machine: read the figures as ratios to the baseline
first, with the load average printed next to them. Every wait is bounded in time and every loop in
count; the server is always stopped (try/finally, SIGINT, SIGTERM).
"""

# ruff: noqa: S311 — random only varies the requests

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from _harness import (
    Server,
    close_django_connections,
    django_setup,
    docs_update,
    flush_redis_dbs,
    fmt,
    log,
    machine_meta,
    manage,
    ms,
    percentile,
    recreate_database,
    run_async,
    run_main,
    stop_on_sigterm,
)
from _harness import (
    bench_env as _harness_env,
)

BENCH_DB_NAME = "supportflow_apibench"
# Redis databases of this bench only (app 0-2, chat bench 5-7, kb/analytics benches 8-9, tests 10-12,
# pipeline bench 13-15).
BENCH_REDIS_DB = 3  # REDIS_URL: the Celery queue the on-commit enqueues land in (nothing consumes it)
BENCH_CACHE_DB = 4  # cache (throttle counters, analytics freshness) and channel layer
SECRET_KEY = "supportflow-api-bench-only-secret-key-never-used-outside-this-script-0123456789"  # noqa: S105
API_RATE = "1000000/min"
SECTION_HEADING = "## REST API latency under load"
AGENT, MANAGER = "alice", "maria"  # seed_demo's agent (billing + technical) and manager
WARMUP_REQUESTS = 3  # per client and endpoint, unmeasured
REQUEST_TIMEOUT = 60.0
ERROR_SAMPLES = 5

# Questions a help-centre integration might send to /kb/search/, about the demo articles' topics;
# combined with a context tail so that (almost) every query is new to the server's embedding cache.
QUESTIONS = [
    "How do I reset my password?",
    "I was charged twice this month",
    "How can I export a notebook as Markdown?",
    "Turn on two-factor authentication",
    "How do I cancel my subscription?",
    "Can I get a refund for the annual plan?",
    "Sync is stuck on my phone",
    "How do I share a notebook with my team?",
    "Where do I find my invoices?",
    "Change the billing email address",
    "The desktop app crashes on start",
    "How do I restore a deleted note?",
    "Is my data encrypted at rest?",
    "How many devices can I use?",
    "Upgrade from the free plan to Pro",
    "I lost my authenticator app",
    "How do I add a VAT number to invoices?",
    "Attachments fail to upload",
    "Can I import notes from Evernote?",
    "How do I delete my account?",
    "What happens when my card expires?",
    "Offline mode does not save my edits",
    "How do I change the language of the app?",
    "Set up single sign-on for my company",
    "Search does not find text in my PDFs",
    "Wie setze ich mein Passwort zurück?",
    "Keyboard shortcuts for formatting",
    "Is there a student discount?",
    "My account was locked after too many attempts",
    "How do I move notes between notebooks?",
]
TAILS = [
    "",
    " on Android",
    " on iPhone",
    " in the web app",
    " on Windows",
    " on macOS",
    " for my team",
    " please help",
    " urgently",
    " since yesterday",
    " on the Pro plan",
    " after the last update",
]
REPLIES = [
    "Thanks for the details. I've checked your account and everything looks right on our side now.",
    "Could you send us a screenshot of the error? That will help us find the cause quickly.",
    "I've issued the refund; it should appear on your statement within 5–10 business days.",
    "Please try signing out and back in; the sync should resume within a minute.",
]


# --- environment and fixtures -----------------------------------------------------------------------


def bench_env(base: dict[str, str], data_dir: Path) -> dict[str, str]:
    """The environment of both the bench process (Django, for fixtures) and the server."""
    return _harness_env(
        base, data_dir, script="api_bench.py", db_name=BENCH_DB_NAME, redis_db=BENCH_REDIS_DB,
        cache_db=BENCH_CACHE_DB, channels_db=BENCH_CACHE_DB, secret_key=SECRET_KEY, drop=("API_RATE",),
        ALLOWED_HOSTS="testserver,127.0.0.1,localhost", FEATURE_AI_PIPELINE="false", API_RATE=API_RATE,
        TOKENIZERS_PARALLELISM="false",
    )  # fmt: skip


def build_history(tickets: int, days: int, seed: int) -> dict:
    """``tickets`` tickets of history (``supportflow.demo.history``) and the analytics rollups over them."""
    from analytics import rollup
    from supportflow.demo import history

    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    generated = history.generate(tickets, days=days, seed=seed, end=end, progress=lambda text: log(text.strip()))
    log(f"generated {tickets:,} tickets in {generated['seconds']:.1f}s")
    started = time.perf_counter()
    rollup.rebuild((end - dt.timedelta(days=days)).date(), end.date())
    rollup_s = time.perf_counter() - started
    log(f"analytics rollups rebuilt over {days} days in {rollup_s:.1f}s")
    return {"seconds": generated["seconds"], "rollup_s": round(rollup_s, 1)}


def make_keys() -> dict[str, str]:
    """The secrets of a manager key (every scope) and an agent key (no analytics, no webhooks)."""
    from django.contrib.auth import get_user_model

    from supportflow.api.keys import api_key_create
    from supportflow.models import APIKey

    users = get_user_model().objects
    _, manager = api_key_create(name="api bench manager", user=users.get(username=MANAGER), scopes=APIKey.Scope.values)
    _, agent = api_key_create(
        name="api bench agent", user=users.get(username=AGENT), scopes=["tickets:read", "tickets:write", "kb:read"]
    )
    return {"manager": manager, "agent": agent}


def pick_tickets(count: int, seed: int) -> dict:
    """References the agent may see (for reads) and, of those, open ones she may reply to."""
    from django.contrib.auth import get_user_model

    from tickets import selectors
    from tickets.models import Ticket

    agent = get_user_model().objects.get(username=AGENT)
    visible = selectors.ticket_queryset_for_user(user=agent)
    refs = sorted(visible.values_list("reference", flat=True))
    open_refs = sorted(visible.exclude(status=Ticket.Status.CLOSED).values_list("reference", flat=True))
    rng = random.Random(seed)
    return {
        "visible": len(refs),
        "all": Ticket.objects.count(),
        "read": rng.sample(refs, min(count, len(refs))),
        "reply": rng.sample(open_refs, min(count, len(open_refs))),
    }


def data_counts() -> dict:
    from tickets.models import Customer, Message, Ticket

    return {
        "tickets": Ticket.objects.count(),
        "messages": Message.objects.count(),
        "customers": Customer.objects.count(),
    }


# --- the endpoints ----------------------------------------------------------------------------------


@dataclass
class Endpoint:
    name: str
    label: str
    key: str  # "manager", "agent" or "" (no credentials)
    make: object  # (rng, n) -> (method, path, json body or None)
    expect: int = 200


def endpoints(refs: dict) -> list[Endpoint]:
    read, reply = refs["read"], refs["reply"]
    if not read or not reply:
        raise SystemExit("error: the agent sees no tickets (or no open ones); did seed_demo and the demo history run?")
    used_queries: set[str] = set()

    def search(rng, n):
        question = f"{rng.choice(QUESTIONS)}{rng.choice(TAILS)}"
        if question in used_queries:
            question = f"{question} (case {n})"
        used_queries.add(question)
        return "GET", "/api/v1/kb/search/", None, {"q": question}

    def create(rng, n):
        customer = rng.randrange(2000)
        body = f"{rng.choice(QUESTIONS)} I tried the help centre first but it did not solve it. (bench {n})"
        return (
            "POST",
            "/api/v1/tickets/",
            {
                "subject": rng.choice(QUESTIONS),
                "body": body,
                "customer_email": f"api-bench-{customer}@bench.example.com",
                "customer_name": f"API Bench {customer}",
            },
            None,
        )

    def agent_reply(rng, n):
        return "POST", f"/api/v1/tickets/{rng.choice(reply)}/messages/", {"body": rng.choice(REPLIES)}, None

    return [
        Endpoint("healthz", "GET /healthz (baseline)", "", lambda rng, n: ("GET", "/healthz", None, None)),
        Endpoint(
            "tickets_list_agent",
            "GET /api/v1/tickets/ (agent)",
            "agent",
            lambda rng, n: ("GET", "/api/v1/tickets/", None, None),
        ),
        Endpoint(
            "tickets_list_manager",
            "GET /api/v1/tickets/ (manager)",
            "manager",
            lambda rng, n: ("GET", "/api/v1/tickets/", None, None),
        ),
        Endpoint(
            "ticket_detail",
            "GET /api/v1/tickets/{ref}/",
            "agent",
            lambda rng, n: ("GET", f"/api/v1/tickets/{rng.choice(read)}/", None, None),
        ),
        Endpoint(
            "ticket_messages",
            "GET /api/v1/tickets/{ref}/messages/",
            "agent",
            lambda rng, n: ("GET", f"/api/v1/tickets/{rng.choice(read)}/messages/", None, None),
        ),
        Endpoint("kb_search", "GET /api/v1/kb/search/?q=…", "agent", search),
        Endpoint(
            "analytics_summary",
            "GET /api/v1/analytics/summary/ (manager)",
            "manager",
            lambda rng, n: ("GET", "/api/v1/analytics/summary/", None, None),
        ),
        Endpoint("ticket_create", "POST /api/v1/tickets/", "agent", create, expect=201),
        Endpoint("message_create", "POST /api/v1/tickets/{ref}/messages/", "agent", agent_reply, expect=201),
    ]


# --- the load ---------------------------------------------------------------------------------------


@dataclass
class Phase:
    endpoint: str
    label: str
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    statuses: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    wall: float = 0.0
    server_cpu_s: float | None = None
    client_cpu_s: float = 0.0

    def record(self, latency: float, status: int | None, detail: str = "") -> None:
        self.latencies.append(latency)
        self.statuses[str(status) if status is not None else "exception"] += 1
        if status is not None and 200 <= status < 300:
            self.ok += 1
            return
        self.errors += 1
        if len(self.samples) < ERROR_SAMPLES:
            self.samples.append(f"{status or 'no response'}: {detail[:200]}")


def http_module():
    import logging

    for name in ("httpx2", "httpcore2", "httpx", "httpcore"):  # one INFO line per request otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx
    return httpx


async def one_request(client, endpoint: Endpoint, headers: dict, rng, n: int, phase: Phase | None) -> None:
    method, path, body, params = endpoint.make(rng, n)
    started = time.perf_counter()
    try:
        response = await client.request(method, path, json=body, params=params, headers=headers)
        await response.aread()
        status, detail = response.status_code, response.text
    except Exception as exc:  # counted as an error, never fatal: the phase goes on
        status, detail = None, f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - started
    if phase is not None:
        phase.record(elapsed, status, detail)
    elif status is None or not 200 <= status < 300:
        log(f"  warm-up {endpoint.name}: {status} {detail[:200]}")


async def client_loop(client, endpoint, headers, rng, deadline: float, phase: Phase, counter: list[int]) -> None:
    for _ in range(10_000_000):  # bounded; the deadline ends it long before
        if time.perf_counter() >= deadline:
            return
        counter[0] += 1
        await one_request(client, endpoint, headers, rng, counter[0], phase)


async def run_phases(args, server: Server, plan: list[Endpoint], keys: dict[str, str]) -> list[Phase]:
    httpx = http_module()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=600)
    timeout = httpx.Timeout(REQUEST_TIMEOUT, connect=10.0)
    clients = [
        httpx.AsyncClient(base_url=server.base, limits=limits, timeout=timeout, trust_env=False)
        for _ in range(args.clients)
    ]
    rngs = [random.Random(args.seed * 1000 + i) for i in range(args.clients)]
    counter = [0]
    phases: list[Phase] = []
    try:
        for endpoint in plan:
            if not server.alive():
                raise RuntimeError(f"the server died:\n{server.log_tail()}")
            headers = {"Authorization": f"Bearer {keys[endpoint.key]}"} if endpoint.key else {}
            log(f"{endpoint.name}: warm-up ({WARMUP_REQUESTS} per client)")
            for _ in range(WARMUP_REQUESTS):
                await asyncio.wait_for(
                    asyncio.gather(
                        *(one_request(c, endpoint, headers, r, 0, None) for c, r in zip(clients, rngs, strict=True))
                    ),
                    timeout=REQUEST_TIMEOUT * 3,
                )
            phase = Phase(endpoint.name, endpoint.label)
            cpu_before, client_before = server.cpu_seconds(), time.process_time()
            started = time.perf_counter()
            deadline = started + args.duration
            await asyncio.wait_for(
                asyncio.gather(
                    *(
                        client_loop(c, endpoint, headers, r, deadline, phase, counter)
                        for c, r in zip(clients, rngs, strict=True)
                    )
                ),
                timeout=args.duration + REQUEST_TIMEOUT + 30,
            )
            phase.wall = time.perf_counter() - started
            cpu_after = server.cpu_seconds()
            if cpu_before is not None and cpu_after is not None:
                phase.server_cpu_s = cpu_after - cpu_before
            phase.client_cpu_s = time.process_time() - client_before
            phases.append(phase)
            row = phase_row(phase, None)
            log(
                f"  {endpoint.name}: {row['requests']} requests, {fmt(row['rps'])}/s, p50 {fmt(row['p50_ms'])} "
                f"p95 {fmt(row['p95_ms'])} ms, errors {row['errors']}, server CPU {fmt(row['server_cpu_pct'], 0)}%"
            )
            await asyncio.sleep(1.0)  # let on-commit work and the pool settle between phases
    finally:
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    return phases


# --- results ----------------------------------------------------------------------------------------


def phase_row(phase: Phase, baseline_p95: float | None) -> dict:
    lat = phase.latencies
    p95 = percentile(lat, 95)
    return {
        "endpoint": phase.endpoint,
        "label": phase.label,
        "requests": len(lat),
        "ok": phase.ok,
        "errors": phase.errors,
        "statuses": dict(phase.statuses),
        "error_samples": phase.samples,
        "rps": round(len(lat) / phase.wall, 1) if phase.wall else None,
        "p50_ms": ms(percentile(lat, 50)),
        "p95_ms": ms(p95),
        "p99_ms": ms(percentile(lat, 99)),
        "max_ms": ms(max(lat)) if lat else None,
        "p95_ratio": round(p95 / baseline_p95, 1) if p95 is not None and baseline_p95 else None,
        "server_cpu_pct": round(100 * phase.server_cpu_s / phase.wall, 0)
        if phase.server_cpu_s is not None and phase.wall
        else None,
        "server_cpu_ms_per_req": round(1000 * phase.server_cpu_s / len(lat), 2)
        if phase.server_cpu_s is not None and lat
        else None,
        "client_cpu_ms_per_req": round(1000 * phase.client_cpu_s / len(lat), 2) if lat else None,
        "wall_s": round(phase.wall, 1),
    }


def summarize(phases: list[Phase]) -> tuple[list[dict], dict]:
    """Rows per endpoint (the two baseline phases pooled) and the baseline's own figures."""
    base_runs = [p for p in phases if p.endpoint == "healthz"]
    pooled = Phase("healthz", base_runs[0].label)
    for p in base_runs:
        pooled.latencies += p.latencies
        pooled.ok += p.ok
        pooled.errors += p.errors
        pooled.statuses.update(p.statuses)
        pooled.samples += p.samples[: ERROR_SAMPLES - len(pooled.samples)]
        pooled.wall += p.wall
        pooled.client_cpu_s += p.client_cpu_s
        if p.server_cpu_s is not None:
            pooled.server_cpu_s = (pooled.server_cpu_s or 0.0) + p.server_cpu_s
    base_p95 = percentile(pooled.latencies, 95)
    baseline = {
        **phase_row(pooled, base_p95),
        "runs": [
            {"p50_ms": ms(percentile(p.latencies, 50)), "p95_ms": ms(percentile(p.latencies, 95)), "rps": r["rps"]}
            for p in base_runs
            for r in [phase_row(p, None)]
        ],
    }
    rows = [baseline] + [phase_row(p, base_p95) for p in phases if p.endpoint != "healthz"]
    return rows, baseline


def table_markdown(rows: list[dict]) -> str:
    lines = [
        "| Endpoint | Key | Requests | req/s | p50 ms | p95 ms | p99 ms | p95 ÷ baseline p95 | Errors "
        "| Server CPU % | Server CPU ms/req |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r.get('key', '–')} | {r['requests']:,} | {fmt(r['rps'])} | {fmt(r['p50_ms'])} "
            f"| {fmt(r['p95_ms'])} | {fmt(r['p99_ms'])} | {fmt(r['p95_ratio'])}× | {r['errors']} "
            f"| {fmt(r['server_cpu_pct'], 0)} | {fmt(r['server_cpu_ms_per_req'], 2)} |"
        )
    return "\n".join(lines)


def notes_for(rows: list[dict], baseline: dict, server_log: dict, meta: dict) -> list[str]:
    notes = []
    runs = baseline["runs"]
    if len(runs) == 2:
        notes.append(
            f"- Baseline `/healthz`, first / last phase: p50 {fmt(runs[0]['p50_ms'])} / {fmt(runs[1]['p50_ms'])} ms, "
            f"p95 {fmt(runs[0]['p95_ms'])} / {fmt(runs[1]['p95_ms'])} ms, {fmt(runs[0]['rps'])} / "
            f"{fmt(runs[1]['rps'])} req/s (how much the machine moved during the run)."
        )
    errors = [r for r in rows if r["errors"]]
    if errors:
        for r in errors:
            notes.append(
                f"- {r['label']}: {r['errors']} errors of {r['requests']} ({r['statuses']}); e.g. "
                + "; ".join(f"`{s[:140]}`" for s in r["error_samples"][:2])
            )
    else:
        notes.append("- No errors: every request of every phase answered 2xx.")
    for r in rows[1:]:
        if r["server_cpu_pct"] is not None and r["server_cpu_pct"] < 60:
            notes.append(
                f"- {r['label']}: the server process was busy only {r['server_cpu_pct']:.0f} % of the phase "
                f"({fmt(r['server_cpu_ms_per_req'], 1)} ms CPU per request against a p50 of {fmt(r['p50_ms'], 0)} ms): "
                "the rest of the time went to waiting, mostly on PostgreSQL's queries."
            )
    client = [r for r in rows if r["client_cpu_ms_per_req"] is not None]
    if client:
        notes.append(
            "- The clients (one asyncio process, httpx) spent "
            + ", ".join(f"{r['endpoint']} {fmt(r['client_cpu_ms_per_req'], 2)}" for r in client[:3])
            + " … ms CPU per request on the same cores (all figures in the JSON line)."
        )
    if server_log["tracebacks"] or server_log["other"]:
        notes.append(
            f"- Server log: {server_log['tracebacks']} tracebacks; "
            + "; ".join(f"{n} × `{t}`" for t, n in server_log["other"][:3])
            + (
                "; raised in " + "; ".join(f"`{w}` ×{n}" for w, n in server_log["raised_in"][:3])
                if server_log["raised_in"]
                else ""
            )
            + "."
        )
    else:
        notes.append("- Server log: no errors, warnings or tracebacks.")
    return notes


def docs_section(args, rows, notes, meta) -> str:
    command = (
        "python -m supportflow.devservices exec -- .venv/bin/python bench/api_bench.py "
        f"--clients {args.clients} --duration {args.duration:g} --tickets {args.tickets}"
    )
    data = meta["data"]
    return f"""{SECTION_HEADING}

What it measures: how long the REST API (`/api/v1/`) takes to answer under a modest, steady load —
{args.clients} clients each sending its next request as soon as the last one is answered — per endpoint,
next to `GET /healthz` on the same server over the same connections (no database, no authentication: what
the server, the clients and the machine cost on their own). Every API request authenticates with an API
key (`Authorization: Bearer sf_…`: a hash lookup in PostgreSQL), is throttled (a counter in Redis) and
goes through the same selectors and services as the console.

Reproduce (from the repository root; the embedded PostgreSQL and Redis are started or reused):

```sh
{command}
```

- **Run:** {meta["date"]}, Python {meta["python"]}, uvicorn {meta["uvicorn"]} (one process, like `make run`:
  uvloop + httptools, `--lifespan off --no-access-log --log-level warning`), clients: {meta["http_client"]}.
- **Machine:** {meta["cpus"]} cores, {meta["mem_gb"]} GB RAM, load average {meta["load_start"]} before and
  {meta["load_end"]} after (1, 5, 15 min). The clients (one asyncio process), the server, PostgreSQL and Redis
  share those cores, and other jobs ran on the machine: **read the figures as ratios to the baseline first**.
- **Data:** its own database `{BENCH_DB_NAME}` (dropped and recreated each run): `seed_demo` (queues, agents,
  the 39 demo articles, embedded) plus {args.tickets:,} tickets of history from `supportflow.demo.history` over
  365 days, analytics rollups rebuilt — {data["tickets"]:,} tickets, {data["messages"]:,} messages and
  {data["customers"]:,} customers at the start; the agent's key sees {meta["agent_visible"]:,} of the tickets.
  Redis databases {BENCH_REDIS_DB}/{BENCH_CACHE_DB} (emptied before and after).
- **Server settings:** `FEATURE_AI_PIPELINE=false`, so creating a ticket or a message only enqueues its
  on-commit tasks to Redis (nothing consumes them here) and the AI never runs in the measured process — these
  are the API's own costs, not the AI's. `API_RATE={API_RATE}`: the throttle is checked on every request as in
  production, only its threshold is out of the way (every client is one key from 127.0.0.1). The project's
  logging config writes uvicorn's access line for every request (as in production) despite `--no-access-log`.
- **Phases:** {args.duration:g} s each, one endpoint at a time, after {WARMUP_REQUESTS} unmeasured requests per client;
  the baseline runs first and last and its two phases are pooled for the ratio. *Keys*: the manager's (`maria`,
  every scope, sees all tickets) or the agent's (`alice`, her two queues, unrouted and her own tickets — the
  scoped query). Detail/messages pick a random one of {meta["read_refs"]} tickets the agent sees; replies a random
  one of {meta["reply_refs"]} of hers that are not closed; create uses 2,000 customer emails (new or existing
  customer); the search varies the question (30 questions × 12 context tails, made unique: a new text for the server's
  embedding cache each time, so every search embeds its query on the CPU). Lists use the default page (25).
- **Columns:** latency = request sent → whole response read, at the client. *p95 ÷ baseline p95* is the endpoint's
  p95 over the pooled `/healthz` p95. *Errors* = any non-2xx or no response (samples in the JSON line).
  *Server CPU %* = the server process's CPU time over the phase, 100 % = one core; *ms/req* the same per request.
  With a closed loop, *req/s* is what {args.clients} clients get through, not a capacity limit of the server alone.

{table_markdown(rows)}

### Notes from this run

{chr(10).join(notes)}

What the numbers mean: the baseline row is the floor this machine and client set impose on any request
(the event loop, HTTP parsing, the clients' own CPU). The ratio is the part our code adds: authentication,
throttle, the scoped queries, serialisation and, for writes, the transaction with its audit rows and on-commit
enqueues. Under ASGI each request's synchronous code runs in its own thread (asgiref's per-request
`ThreadSensitiveContext`; up to 6 database connections were seen busy at once in one process), but the
Python work holds the GIL, so with {args.clients} clients the p95 is mostly waiting for the one core a process
can use: p50 ≈ {args.clients} × server CPU per request when the server is the bottleneck. More uvicorn workers
(or processes) divide that, cores permitting.
Every figure, with status counts and error samples, is in the JSON line the script prints last.
"""


# --- main -------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10, help="concurrent closed-loop clients")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase (endpoint)")
    parser.add_argument("--tickets", type=int, default=10000, help="tickets of simulated history added")
    parser.add_argument("--days", type=int, default=365, help="days the history is spread over")
    parser.add_argument("--refs", type=int, default=500, help="tickets the detail/messages/reply requests pick from")
    parser.add_argument("--seed", type=int, default=1, help="seed of the history and of the request mix")
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file to update ('' to skip)")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 200 or not 1 <= args.duration <= 600:
        parser.error("--clients 1..200, --duration 1..600")
    if not 1 <= args.tickets <= 1_000_000 or not 1 <= args.days <= 3660 or not 1 <= args.refs <= 100_000:
        parser.error("--tickets 1..1000000, --days 1..3660, --refs 1..100000")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    work_dir = Path(tempfile.mkdtemp(prefix="supportflow-api-bench-"))
    env = bench_env(dict(os.environ), work_dir / "data")
    load_start = [round(v, 2) for v in os.getloadavg()]
    log(f"database {BENCH_DB_NAME}; redis dbs {BENCH_REDIS_DB}/{BENCH_CACHE_DB}; load average {load_start}")
    started = time.perf_counter()

    recreate_database(env["DATABASE_URL"], BENCH_DB_NAME)
    flush_redis_dbs(env["REDIS_URL"], (BENCH_REDIS_DB, BENCH_CACHE_DB))
    server = Server(env=env, log_path=work_dir / "server.log")
    phases: list[Phase] = []
    try:
        log("migrating")
        migrate_s = manage(env, "migrate", "--noinput", "-v", "0", timeout=600)
        log("seed_demo (embeds the demo knowledge base)")
        seed_s = manage(env, "seed_demo", timeout=1200)
        django_setup(env)
        history = build_history(args.tickets, args.days, args.seed)
        keys = make_keys()
        refs = pick_tickets(args.refs, args.seed)
        data = data_counts()
        close_django_connections()
        plan = endpoints(refs)
        plan.append(plan[0])  # the baseline again, last
        flush_redis_dbs(env["REDIS_URL"], (BENCH_REDIS_DB, BENCH_CACHE_DB))  # what seeding enqueued or cached

        load_bench = [round(v, 2) for v in os.getloadavg()]
        server.start()
        log(f"server on 127.0.0.1:{server.port} (pid {server.proc.pid}), log {server.log_path}; load {load_bench}")
        phases = run_async(run_phases(args, server, plan, keys))
    finally:
        server.stop()
        close_django_connections()
        with contextlib.suppress(Exception):  # best effort: the next run empties them too
            flush_redis_dbs(env["REDIS_URL"], (BENCH_REDIS_DB, BENCH_CACHE_DB))
    total = time.perf_counter() - started

    import uvicorn

    httpx = http_module()
    key_of = {e.name: e.key or "–" for e in endpoints(refs)}
    rows, baseline = summarize(phases)
    for row in rows:
        row["key"] = key_of.get(row["endpoint"], "–")
    server_log = server.log_findings()
    meta = {
        **machine_meta(),
        "load_start": load_start,
        "load_bench_start": load_bench,
        "load_end": [round(v, 2) for v in os.getloadavg()],
        "uvicorn": uvicorn.__version__,
        "http_client": f"{httpx.__name__} {httpx.__version__}, one keep-alive HTTP/1.1 connection per client",
        "migrate_s": round(migrate_s, 1),
        "seed_s": round(seed_s, 1),
        "history": history,
        "data": data,
        "agent_visible": refs["visible"],
        "read_refs": len(refs["read"]),
        "reply_refs": len(refs["reply"]),
        "bench_seconds": round(total, 1),
        "server_log": str(server.log_path),
    }
    meta.pop("load", None)
    notes = notes_for(rows, baseline, server_log, meta)

    print(
        f"\nREST API latency under load ({meta['date']}, {meta['cpus']} cores, load {load_start} → {meta['load_end']})"
    )
    print(f"{args.clients} closed-loop clients, {args.duration:g}s per endpoint, {data['tickets']:,} tickets\n")
    print(table_markdown(rows))
    print("\nNotes:")
    print("\n".join(notes))
    print(f"\nserver log: {server.log_path}; benchmark took {total:.0f}s")
    if args.out:
        docs_update(args.out, SECTION_HEADING, docs_section(args, rows, notes, meta))
    payload = {
        "benchmark": "api_latency",
        "meta": meta,
        "params": {
            "clients": args.clients,
            "duration_s": args.duration,
            "tickets": args.tickets,
            "days": args.days,
            "refs": args.refs,
            "seed": args.seed,
            "api_rate": API_RATE,
            "warmup_per_client": WARMUP_REQUESTS,
        },
        "baseline": baseline,
        "endpoints": rows[1:],
        "server_log": server_log,
    }
    print(json.dumps(payload, separators=(",", ":"), default=str))
    return 0


if __name__ == "__main__":
    run_main(main, ignore_broken_pipe=True)
