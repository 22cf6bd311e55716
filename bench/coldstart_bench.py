"""Cold start as a new user meets it: ``make run`` on a fresh data directory, then a customer's first chat
message and the time until the AI's first reply shows on their page; then warm replies one after the other.

For each layout asked for (``--layouts split,single``: the ``ai`` queue on its own worker, as ``make run``
starts it now, and one worker on every queue, as before) it launches ``python -m supportflow.devservices
run`` exactly as ``make run`` does, in a new temporary data directory (new PostgreSQL cluster, migrations,
demo data, models loaded by the workers), on free loopback ports, and measures:

- **launch → web ready**: ``/readyz`` answers 200; **launch → ai ready**: ``/readyz`` reports a warm ``ai``
  worker (``info.ai_workers_ready`` > 0), which is when ``make run`` prints "SupportFlow is ready";
- **first reply (cold)**: from the moment "ai ready" is seen, a customer opens ``/chat/``, posts their
  question with the start form (CSRF cookie and token as a browser sends them) and polls the page's
  catch-up URL (``/chat/c/<token>/messages/``, every 50 ms) until an AI reply or a handover notice is
  there: the time from pressing send to seeing it;
- **warm replies**: ``--warm`` more questions, each a new conversation started ``--gap`` seconds after the
  previous reply, the same way; p50/p95.

The layouts run one after the other (the machine's load changes between them: compare within a run).
The last stdout line is one JSON object; ``--out`` rewrites the ``## Cold start: first AI reply after make
run`` section of ``docs/benchmarks.md``.

    python bench/coldstart_bench.py [--layouts split,single] [--warm 20] [--gap 0.5] [--out docs/benchmarks.md]
"""

# ruff: noqa: E501 — the docs table's header is one line

from __future__ import annotations

import argparse
import json
import time

from _harness import Customer, MakeRun, dist, docs_update, fmt, log

QUESTIONS = [
    "How do I reset my password?",
    "Can I use the app without internet?",
    "How do I export my notes as Markdown?",
    "Why was I charged twice this month?",
    "How do I set up two-factor authentication?",
    "How big can an attachment be?",
    "How do I share a notebook with a colleague?",
    "How long is the free trial?",
    "My notes won't sync on my Android phone",
    "How do I restore a note I deleted?",
    "Do you have a discount for nonprofits?",
    "How do I add our VAT number to invoices?",
]
HEADING = "## Cold start: first AI reply after make run"


def run_layout(layout: str, args) -> dict:
    result: dict = {"layout": layout}
    with MakeRun(layout=layout, env={"LLM_PROVIDER": "local"}, start_timeout=args.start_timeout) as app:
        result.update(web_ready_s=app.web_ready_s, ai_ready_s=app.ai_ready_s, log=str(app.log_path))
        if app.ai_ready_s is None:
            result["error"] = "no ai worker became ready"
            return result
        customer = Customer(app.base)
        first = customer.ask(QUESTIONS[0], timeout=args.reply_timeout)
        log(
            f"[{layout}] ready after {app.ai_ready_s:.1f} s; first reply {fmt(first['reply_s'], 2)} s ({first['kind']})"
        )
        warm = []
        for i in range(args.warm):
            time.sleep(args.gap)
            warm.append(customer.ask(QUESTIONS[(i + 1) % len(QUESTIONS)], timeout=args.reply_timeout))
        replies = [1000 * w["reply_s"] for w in warm if w["reply_s"] is not None]  # ms: dist rounds to 0.1
        result.update(
            first=first,
            warm=warm,
            warm_reply_ms=dist(replies),
            warm_timeouts=sum(w["reply_s"] is None for w in warm),
        )
        warm_ms = result["warm_reply_ms"]
        log(f"[{layout}] warm p50 {fmt(warm_ms.get('p50'), 0)} ms, p95 {fmt(warm_ms.get('p95'), 0)} ms")
    return result


def section(results: list[dict], args) -> str:
    rows = []
    for r in results:
        first = r.get("first") or {}
        warm = r.get("warm_reply_ms") or {}
        rows.append(
            f"| {r['layout']} | {fmt(r.get('web_ready_s'))} | {fmt(r.get('ai_ready_s'))} | "
            f"**{fmt(first.get('reply_s'), 2)}** ({first.get('kind', '–')}) | {fmt(warm.get('p50'), 0)} ms | "
            f"**{fmt(warm.get('p95'), 0)} ms** | {len(r.get('warm') or [])} ({r.get('warm_timeouts', '–')} timed out) |"
        )
    return f"""{HEADING}

`bench/coldstart_bench.py` ({time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}; 2 shared cores):
`make run` on a fresh data directory, then a customer's first question through the chat start form and the
time until the AI's reply (or a handover notice) shows on their page. `split`: the `ai` queue on its own
worker (2 processes) and housekeeping on another (1), as `make run` starts it now; `single`: one worker
(2 processes) on every queue, as before. Seconds.

```sh
python -m supportflow.devservices exec -- .venv/bin/python bench/coldstart_bench.py \\
    --layouts {",".join(r["layout"] for r in results)} --warm {args.warm} --gap {args.gap} --out docs/benchmarks.md
```

| layout | launch → web ready | launch → ai worker ready ("SupportFlow is ready") | first reply after ready (cold) | warm reply p50 | warm reply p95 | warm replies |
|---|---:|---:|---:|---:|---:|---|
{chr(10).join(rows)}

Targets: first reply after ready ≤ 5 s; warm p95 ≤ 1 s. "Launch → ready" includes creating the PostgreSQL
cluster, migrating, loading the demo data and the workers loading their models; it is not part of the
target (a customer cannot reach the page before the web is up).
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layouts", default="split,single")
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.5)
    parser.add_argument("--start-timeout", type=float, default=600)
    parser.add_argument("--reply-timeout", type=float, default=120)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    results = [run_layout(layout, args) for layout in args.layouts.split(",") if layout]
    text = section(results, args)
    print(text)
    if args.out:
        docs_update(args.out, HEADING, text)
    print(json.dumps(results, default=str))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
