"""AI pipeline benchmark: a customer's chat message stored -> the AI's reply on the customer's websocket.

Run from the repository root, with the embedded services up::

    python -m supportflow.devservices exec -- .venv/bin/python bench/pipeline_bench.py \
        [--rates 1,5] [--messages 60,150 | --duration 60] [--concurrency 2] [--warmup 6] [--out docs/benchmarks.md]
        [--provider local|openai] [--llm-delay 0.3]

What it does, in order:

1. Drops and recreates its own database ``supportflow_pipebench`` on the PostgreSQL of ``DATABASE_URL``
   (never another database), migrates it and runs ``seed_demo`` (departments, agents, the 39-article demo
   knowledge base, embedded), with ``SF_DATA_DIR`` in a temporary directory so the demo logins of a real
   install are not overwritten. It empties its own Redis databases (broker 13, cache 14, channel layer 15).
2. Starts, like ``make run`` does, one uvicorn (``supportflow.asgi:application``) and one Celery worker
   (``--pool prefork -c 2`` by default) as subprocesses, with ``FEATURE_AI_PIPELINE=true``,
   ``LLM_PROVIDER=local`` and no OpenAI key: every AI step runs on this machine. With ``--provider openai``
   the server and the worker use ``LLM_PROVIDER=openai`` against a fake OpenAI-compatible server in this
   process (``supportflow.tests.fake_openai.FakeOpenAI``) that answers every call after exactly
   ``--llm-delay`` seconds — a triage JSON, and an answer quoting the first passage it was given — so the
   share of the wait that is ours (everything but the model) is visible; that mode writes its own section,
   ``## AI pipeline with an OpenAI-compatible endpoint``.
3. Warm-up: a few messages, one per second, until every worker process has paid its one-time costs.
4. For each rate R (messages/s), N conversations, each a fresh chat ticket (opened with a greeting) and
   one customer socket (``/ws/chat/<token>/``). Message k is sent on conversation k at t0 + k/R (a fixed,
   open-loop arrival rate: a slow reply never delays the next message). Questions are drawn from ~40
   written about the demo knowledge base's topics plus a share (20 %) that it cannot answer or that
   ask for a person.
5. Per message, from the database afterwards (``Message``, ``AIDraft.gate``) and the frames received:
   stored -> delivered (the ``msg-ai`` reply or the ``msg-system`` hand-over notice on the socket) and its
   parts: queue wait (stored -> pipeline started = draft.created_at - gate.total_ms), the pipeline's
   stages (``gate.stages_ms``), record (draft -> reply stored) and delivery (reply stored -> frame).
   All timestamps come from the one machine's clock.
6. Prints tables, the AI cache's hits and misses per phase (retrieval; with ``--provider openai`` also
   LLM answers: ``supportflow.metrics.ai_cache_totals`` read before and after each phase) and, as the very
   last stdout line, one JSON object; rewrites the
   ``## AI pipeline: message to AI reply`` section of ``docs/benchmarks.md``.

Clients, server, worker, PostgreSQL and Redis share the machine (and, when this was written, with
other jobs): read the figures with the load average printed next to them. Every wait is bounded in
time and every loop in count; the subprocesses are always stopped (try/finally, SIGINT, SIGTERM).
"""

# ruff: noqa: S311, S603 — random only shuffles the questions; the subprocesses are this interpreter

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from _harness import (
    BASE_DIR,
    Server,
    close_django_connections,
    docs_update,
    flush_redis_dbs,
    fmt,
    log,
    manage,
    raise_nofile_limit,
    recreate_database,
    run_async,
    run_main,
    stop_on_sigterm,
)
from _harness import (
    bench_env as _harness_env,
)
from _harness import (
    dist as _harness_dist,
)
from _harness import (
    django_setup as _harness_django_setup,
)

BENCH_DB_NAME = "supportflow_pipebench"
# Redis databases of this bench only (app 0-2, chat bench 5-7, kb bench 8-9, tests 10-12).
BENCH_REDIS_DB = 13  # REDIS_URL: the Celery broker and result backend
BENCH_CACHE_DB = 14  # cache: rate limits, the pipeline's per-message lock, the LLM circuit breaker
BENCH_CHANNELS_DB = 15  # channel layer
SECRET_KEY = "supportflow-pipeline-bench-only-secret-key-never-used-outside-this-script-0123"  # noqa: S105
RATE_OVERRIDE = "1000000/60"
RATE_ENV = ("CHAT_RATE_PER_CONVERSATION", "CHAT_RATE_PER_IP", "CHAT_RATE_START_PER_IP")
SECTION_HEADING = "## AI pipeline: message to AI reply"
SECTION_HEADING_OPENAI = "## AI pipeline with an OpenAI-compatible endpoint"
FAKE_KEY = "sk-pipeline-bench-fake-key"  # the fake server accepts any key
BILLING_WORDS = ("charg", "refund", "invoice", "plan", "pay", "price", "pricing", "seat", "discount", "billing", "card")
OPENING = "Hi, I have a question about Nimbus Notes."
STAGES = ("guard_ms", "triage_ms", "retrieve_ms", "answer_ms")
AI_QUEUE_KEYS = ("ai", "ai\x06\x163", "ai\x06\x166", "ai\x06\x169")  # kombu's Redis lists, one per priority step

LI_RE = re.compile(r'<li id="msg-(\d+)" class="msg msg-(\w+)[^"]*"([^>]*)>')
CID_RE = re.compile(r'data-client-id="([^"]*)"')
STATUS_RE = re.compile(r'id="ai-status"[^>]*>([^<]*)<')
ERROR_TEXT_RE = re.compile(r'id="chat-error"[^>]*>([^<]*)<')
LOG_NOISE = ("superuser privileges", "_warn_or_raise_security_error")  # the bench runs as root in containers
# Celery's own format ("[date: LEVEL/ForkPoolWorker-1] Task ...") or the project's plain logging format
# ("date LEVEL celery.app.trace: Task ..."), which does not name the pool process.
TASK_END_RE = re.compile(
    r"^(?:\[)?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})(?:: \w+/([\w-]+)\]| \w+ celery\.app\.trace:) "
    r"Task tickets\.(?:ai\.)?tasks\.process_message\[[^\]]+\] "
    r"(?:succeeded in ([\d.]+)s: '?(\w+)'?|raised unexpected: (\w+)|retry: (.{0,80}))"
)

# Questions a customer of the fictional Nimbus Notes might type, each with the demo article (file stem)
# that answers it. Written for this bench; none is copied from the articles.
KB_QUESTIONS: list[tuple[str, str]] = [
    ("reset-sync-on-android", "My Android phone keeps saying Syncing... forever and half my notebooks are missing"),
    ("reset-sync-on-android", "How do I clear the local cache on the Android app without losing unsynced notes?"),
    ("sync-stuck-or-paused", "Notes I edit on my laptop never show up on my iPad, sync looks paused"),
    ("sync-stuck-or-paused", "The sync icon has a red exclamation mark, what does that mean?"),
    ("resolve-sync-conflicts", "I got a 'conflicting copy' of a note after editing it offline, how do I merge them?"),
    ("offline-mode", "Can I edit my notes on a plane without internet on the free plan?"),
    ("offline-mode", "Which notebooks are available offline on my phone?"),
    ("search-not-finding-notes", "Search doesn't find a note I know exists, what can I check?"),
    ("restore-deleted-notes", "I deleted a notebook by accident last week, can I get it back?"),
    ("restore-deleted-notes", "How long do deleted notes stay in the trash?"),
    ("version-history", "A colleague overwrote half of our meeting note, can I restore yesterday's version?"),
    ("export-notes", "How can I export all my notes to Markdown?"),
    ("export-notes", "Is it possible to save a notebook as PDF?"),
    ("import-from-evernote-onenote-markdown", "How do I move my notes over from Evernote?"),
    ("import-from-evernote-onenote-markdown", "Can I import a OneNote notebook on the mobile app?"),
    ("attachment-size-limits", "I get 'file too large' when attaching a 300 MB video, what is the limit?"),
    ("desktop-crash-on-paste", "The Windows desktop app crashes every time I paste a table from Excel"),
    ("share-notes-and-notebooks", "How do I share a notebook with my team so we can edit it together?"),
    ("share-notes-and-notebooks", "Can I share a single note with a link that is read-only?"),
    ("reset-your-password", "I forgot my password, how do I reset it?"),
    ("set-up-two-factor-authentication", "How do I turn on two-factor authentication with an authenticator app?"),
    ("lost-two-factor-device", "I lost my phone with the authenticator app and can't sign in"),
    ("sign-in-with-passkeys", "Can I sign in with a passkey instead of a password on my iPhone?"),
    ("suspicious-sign-in-alerts", "I got an email about a new sign-in from a device I don't recognise"),
    ("troubleshoot-sign-in-problems", "It says incorrect email or password but I'm sure the password is right"),
    ("change-email-address", "How can I change the email address on my account?"),
    ("delete-account-and-export-data", "How do I delete my account and get a copy of my data under GDPR?"),
    ("choose-data-region", "Can I move my account from the US to the EU data region?"),
    ("set-up-saml-sso", "How do we set up SAML single sign-on with Okta for our Teams workspace?"),
    ("teams-admin-console-overview", "Where in the admin console do I remove a member from our workspace?"),
    ("teams-billing-seats-and-renewals", "If I add five seats in the middle of our annual Teams term, what do we pay?"),
    ("move-pro-users-to-teams", "Three of us pay for Pro separately, can we move into one Teams workspace?"),
    ("compare-plans", "What's the difference between Free, Pro and Teams?"),
    ("free-trial", "Do I need a credit card for the 14-day Pro trial?"),
    ("change-plan-or-billing-cycle", "How do I switch from monthly to yearly billing?"),
    ("refund-policy", "I bought the annual plan yesterday by mistake, can I get a refund?"),
    ("why-was-i-charged-twice", "My card was charged twice for Nimbus Pro this month"),
    ("failed-card-payment", "My renewal payment failed, will I lose access to my notes?"),
    ("add-vat-number-to-invoices", "How do I add our company's VAT number to the invoices?"),
    ("quotes-and-purchase-orders", "Can we pay by bank transfer with a purchase order for 30 Teams seats?"),
    ("education-discount", "Is there a student discount?"),
    ("nonprofit-discount", "We are a registered charity, do you have non-profit pricing for Teams?"),
    ("passwort-zuruecksetzen", "Ich habe mein Passwort vergessen. Wie kann ich es zurücksetzen?"),
    ("rechnungen-herunterladen", "Wo kann ich meine Rechnungen als PDF herunterladen?"),
]
# The knowledge base cannot answer these, or the customer asks for a person: the AI should hand over.
OFF_QUESTIONS: list[tuple[str, str]] = [
    ("human", "I want to talk to a real person please, not a bot."),
    ("human", "Can a human agent call me back today about my account?"),
    ("human", "Please put me through to a manager, this is the third time I'm writing."),
    ("off", "Does Nimbus Notes have a plugin for AutoCAD drawings?"),
    ("off", "What will the weather be like in Lisbon tomorrow?"),
    ("off", "Can you recommend a good pizza place near the train station?"),
    ("off", "Is Nimbus Notes hiring backend engineers in Nairobi?"),
    ("off", "Can I visit your office in person to pay in cash?"),
    ("off", "Will Nimbus Notes run on my car's dashboard screen?"),
    ("off", "How do I pair my smartwatch to dictate notes while swimming?"),
]


# --- the fake OpenAI-compatible endpoint (``--provider openai``) ----------------------------------


def fake_answer(request: dict) -> dict:
    """Triage JSON for the triage call; for the reply, the first sentence of passage [1], cited — a
    grounded answer the sentence-support check accepts — or "not answerable" without passages."""
    schema = (request.get("response_format") or {}).get("json_schema", {}).get("name", "")
    text = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
    if "riage" in schema:
        question = text.rsplit("untrusted-data", 2)[-2] if "untrusted-data" in text else text
        billing = any(word in question.lower() for word in BILLING_WORDS)
        return {
            "category": "billing" if billing else "other", "priority": "normal", "sentiment": "neutral",
            "department": "billing" if billing else "technical", "language": "en", "needs_human": False,
            "needs_human_reason": "", "summary": "Customer question",
        }  # fmt: skip
    found = re.search(r'label="passage 1">\n\[1\][^\n]*\n(.*?)\n</untrusted-data', text, re.S)
    if not found:
        return {"answerable": False, "answer": "", "citations": []}
    sentences = [x.strip() for x in re.split(r"(?<=[.!?])\s+", found.group(1)) if len(x.strip()) > 30]
    answer = (sentences[0] if sentences else found.group(1).strip())[:400]
    return {"answerable": True, "answer": f"{answer} [1]", "citations": [1]}


def start_fake_openai(delay: float):
    """``FakeOpenAI`` answering every call after ``delay`` seconds, in a thread of this process."""
    from supportflow.llm.fake import FakeOpenAI, FakeResponse

    class FixedDelayOpenAI(FakeOpenAI):
        def _record(self, payload, headers):
            response = super()._record(payload, headers)
            return FakeResponse(content=response.content, delay=delay)

    fake = FixedDelayOpenAI()
    fake.responder = fake_answer
    return fake.start()


# --- environment -----------------------------------------------------------------------------------


def bench_env(base: dict[str, str], data_dir: Path, fake_url: str | None = None) -> dict[str, str]:
    """The environment of the bench process, the server and the worker: local AI and no API key, or,
    with ``fake_url``, the OpenAI-compatible fake (its delay far below the client's timeout)."""
    llm = (
        {"LLM_PROVIDER": "openai", "OPENAI_API_KEY": FAKE_KEY, "OPENAI_BASE_URL": f"{fake_url}/v1"} if fake_url else {}
    )
    return _harness_env(
        base, data_dir, script="pipeline_bench.py", db_name=BENCH_DB_NAME, redis_db=BENCH_REDIS_DB,
        cache_db=BENCH_CACHE_DB, channels_db=BENCH_CHANNELS_DB, secret_key=SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost", FEATURE_AI_PIPELINE="true", FEATURE_AI_AUTO_REPLY="true",
        **dict.fromkeys(RATE_ENV, RATE_OVERRIDE), **llm,
    )  # fmt: skip


def django_setup(env: dict[str, str]) -> None:
    """Django in this process, for fixtures and the reads afterwards. The pipeline flag is off here:
    creating the fixtures must never enqueue anything (only the customers' socket messages do)."""
    _harness_django_setup(env, FEATURE_AI_PIPELINE="false")


# --- processes -------------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> tuple[float, int] | None:
    """(user + system CPU seconds, session id) of one process from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[3])
    except (OSError, IndexError, ValueError):
        return None


def session_cpu_seconds(sid: int) -> float:
    """CPU of every live process of a session: the Celery main process and its pool children."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = proc_cpu_seconds(int(entry.name))
            if found is not None and found[1] == sid:
                total += found[0]
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return float(sum(values) - idle), float(sum(values))


@dataclass
class Worker:
    """``celery -A supportflow worker --pool prefork -c N`` in its own session (so its pool is ours to stop)."""

    env: dict[str, str]
    log_path: Path
    concurrency: int
    queues: str = ""  # -Q: "" consumes every queue
    proc: subprocess.Popen | None = None
    _log_file: object = None

    def start(self, *, timeout: float = 300.0) -> None:
        cmd = [
            sys.executable, "-m", "celery", "-A", "supportflow", "worker",
            "--pool", "prefork", "-c", str(self.concurrency), "--loglevel", "INFO",
            "-n", f"pipebench-{self.queues.split(',')[0] or 'all'}-{os.getpid()}@%h",
            *(["--queues", self.queues] if self.queues else []),
        ]  # fmt: skip
        self._log_file = open(self.log_path, "w")  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen(
            cmd, env=self.env, cwd=BASE_DIR, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with code {self.proc.returncode}:\n{self.log_tail()}")
            if re.search(r"@\S+ ready\.", self.log_tail(chars=200_000)):
                return
            time.sleep(0.5)
        raise RuntimeError(f"worker not ready within {timeout:.0f}s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self) -> float | None:
        return session_cpu_seconds(self.proc.pid) if self.alive() else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # warm shutdown of the main process and its pool
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.proc is not None:
            with_leftovers = [
                int(e.name)
                for e in Path("/proc").iterdir()
                if e.name.isdigit() and (proc_cpu_seconds(int(e.name)) or (0, -1))[1] == self.proc.pid
            ]
            for pid in with_leftovers:  # pool children outliving their parent: same session, ours
                os.kill(pid, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def task_runs(self) -> list[tuple[float, str, float | None, str]]:
        """(ended at, pool process, runtime s, outcome) of each ``process_message`` run, from the log.
        The outcome is what the task returned (``sent``, ``escalated``, ...), ``failed: <exception>``
        or ``retry``; a failed run has no runtime."""
        runs = []
        for line in self.log_tail(chars=50_000_000).splitlines():
            found = TASK_END_RE.match(line)
            if found:
                stamp, millis, process, runtime, outcome, failed, _retry = found.groups()
                process = process or "pool"
                at = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
                if runtime is not None:
                    runs.append((at, process, float(runtime), outcome))
                else:
                    runs.append((at, process, None, f"failed: {failed}" if failed else "retry"))
        return runs

    def log_findings(self) -> dict:
        """Errors, warnings and tracebacks in the worker log, grouped, with the first traceback verbatim."""
        text = self.log_tail(chars=50_000_000)
        lines = text.splitlines()
        kinds = Counter()
        for line in lines:
            if re.search(r"\b(ERROR|CRITICAL|WARNING)\b", line) and not any(n in line for n in LOG_NOISE):
                text = line.split("] ", 1)[-1].strip()
                if text:  # an empty WARNING line is a progress bar (tqdm) printed to the task's stderr
                    text = re.sub(r"\[[0-9a-f-]{36}\]", "[…]", text)
                    kinds[re.sub(r"\d+", "N", text)[:160]] += 1
        first = ""
        start = text.find("Traceback (most recent call last)")
        if start >= 0:
            first = text[max(0, text.rfind("\n", 0, start - 1) + 1) : start + 3000]
        return {
            "lines": len(lines),
            "tracebacks": sum(1 for line in lines if line.startswith("Traceback")),
            "warnings_errors": kinds.most_common(8),
            "first_traceback": first,
        }


# --- fixtures --------------------------------------------------------------------------------------


@dataclass
class Probe:
    """One customer message: its conversation, what was sent and what came back on the socket."""

    phase: str
    index: int
    kind: str  # kb (the knowledge base answers it), human (asks for a person), off (nothing answers it)
    topic: str  # the article expected to answer it, or the kind
    question: str
    ticket_id: int
    token: str
    client_id: str = ""
    sent_wall: float | None = None
    own_copy_wall: float | None = None
    own_seq: int | None = None
    status_wall: float | None = None
    reply_wall: float | None = None
    reply_kind: str = ""
    reply_seq: int | None = None
    errors: list[str] = field(default_factory=list)


def draw_questions(count: int, off_share: float, rng: random.Random) -> list[tuple[str, str, str]]:
    """``count`` (kind, topic, question): exactly round(count * off_share) unanswerable or human ones,
    the rest from the knowledge-base questions, each list cycled in a shuffled order, then shuffled."""
    n_off = round(count * off_share)
    kb = KB_QUESTIONS[:]
    off = OFF_QUESTIONS[:]
    rng.shuffle(kb)
    rng.shuffle(off)
    drawn = [("kb", *kb[i % len(kb)]) for i in range(count - n_off)]
    drawn += [(off[i % len(off)][0], off[i % len(off)][0], off[i % len(off)][1]) for i in range(n_off)]
    rng.shuffle(drawn)
    return drawn


def make_probes(phase: str, questions: list[tuple[str, str, str]]) -> list[Probe]:
    """A fresh chat ticket per message (opened with a greeting, which nothing enqueues) and its token."""
    from tickets import selectors, services
    from tickets.models import Ticket

    probes = []
    for i, (kind, topic, question) in enumerate(questions):
        customer = services.customer_get_or_create(email=f"{phase}-{i}@pipebench.example.com", name=f"Bench {i}")
        ticket = services.ticket_create(
            customer=customer, subject=f"Bench {phase} {i}", body=OPENING, channel=Ticket.Channel.CHAT
        )
        token = selectors.ticket_customer_token(ticket=ticket)
        probes.append(Probe(phase, i, kind, topic, question, ticket.pk, token))
    return probes


# --- websocket clients -----------------------------------------------------------------------------


@dataclass
class PhaseStats:
    conn_failures: int = 0
    conn_errors: Counter = field(default_factory=Counter)
    dropped: int = 0
    handler_errors: int = 0
    closing: bool = False
    samples: list[dict] = field(default_factory=list)
    probe_errors: int = 0


class CustomerSocket:
    """One customer's socket and the task that always drains it (no reconnect: a drop is counted)."""

    def __init__(self, probe: Probe, url: str, origin: str, stats: PhaseStats) -> None:
        self.probe, self.url, self.origin, self.stats = probe, url, origin, stats
        self.ws = None
        self.task: asyncio.Task | None = None

    async def open(self, sem: asyncio.Semaphore, timeout: float) -> bool:
        from websockets.asyncio.client import connect

        async with sem:
            try:
                self.ws = await connect(
                    self.url,
                    origin=self.origin,
                    proxy=None,
                    open_timeout=timeout,
                    ping_interval=None,
                    close_timeout=5,
                    max_size=8 * 2**20,
                    user_agent_header="supportflow-pipeline-bench",
                )
            except Exception as exc:
                self.stats.conn_failures += 1
                self.stats.conn_errors[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1
                return False
        self.task = asyncio.get_running_loop().create_task(self._pump())
        return True

    async def _pump(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for frame in self.ws:
                try:
                    self.on_frame(time.time(), frame if isinstance(frame, str) else frame.decode())
                except Exception:
                    self.stats.handler_errors += 1
        except ConnectionClosed:
            pass
        finally:
            if not self.stats.closing:
                self.stats.dropped += 1

    def on_frame(self, now: float, frame: str) -> None:
        p = self.probe
        for found in LI_RE.finditer(frame):
            seq, kind, rest = int(found.group(1)), found.group(2), found.group(3)
            cid = CID_RE.search(rest)
            if kind == "customer" and cid and cid.group(1) == p.client_id and p.own_copy_wall is None:
                p.own_copy_wall, p.own_seq = now, seq
            elif kind in ("ai", "system") and p.reply_wall is None and seq > 1:
                p.reply_wall, p.reply_kind, p.reply_seq = now, kind, seq
        status = STATUS_RE.search(frame)
        if status and status.group(1).strip() and p.status_wall is None:
            p.status_wall = now
        error = ERROR_TEXT_RE.search(frame)
        if error:
            p.errors.append(error.group(1).strip()[:120])

    async def send(self, text: str) -> bool:
        try:
            await self.ws.send(text)
            return True
        except Exception:
            return False


async def sampler(probes: list[Probe], stats: PhaseStats, stop: asyncio.Event, broker_url: str, ctx) -> None:
    """Every 0.5 s: messages sent but not answered yet, tasks waiting in the broker's ``ai`` queue,
    the load average, and CPU of the worker, the server and the whole machine since the last sample."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)
    started = time.time()
    last = (time.perf_counter(), ctx["worker"].cpu_seconds(), ctx["server"].cpu_seconds(), machine_busy())
    try:
        for _ in range(100_000):  # bounded; stopped by the event long before
            if stop.is_set():
                return
            await asyncio.sleep(0.5)
            now = time.perf_counter()
            sample = {
                "t": round(time.time() - started, 2),
                "sent": sum(1 for p in probes if p.sent_wall is not None),
                "in_flight": sum(1 for p in probes if p.sent_wall is not None and p.reply_wall is None),
                "load1": round(os.getloadavg()[0], 2),
            }
            try:
                sample["queued"] = sum([await client.llen(key) for key in AI_QUEUE_KEYS])
            except Exception:
                stats.probe_errors += 1
                sample["queued"] = None
            worker_cpu, server_cpu, busy = ctx["worker"].cpu_seconds(), ctx["server"].cpu_seconds(), machine_busy()
            wall = now - last[0]
            if worker_cpu is not None and last[1] is not None:
                sample["worker_cpu"] = round((worker_cpu - last[1]) / wall, 3)
            if server_cpu is not None and last[2] is not None:
                sample["server_cpu"] = round((server_cpu - last[2]) / wall, 3)
            total = busy[1] - last[3][1]
            sample["machine_busy"] = round((busy[0] - last[3][0]) / total, 3) if total > 0 else None
            last = (now, worker_cpu, server_cpu, busy)
            stats.samples.append(sample)
    finally:
        await client.aclose()


async def run_phase(
    ctx: dict, phase: str, probes: list[Probe], rate: float, drain_timeout: float, ends_before: int | None = None
) -> dict:
    """Open one socket per conversation, send message k at t0 + k/rate, wait for every answer (bounded).

    ``ends_before``: the number of task ends in the worker log before this phase; when given, the wait
    also stops once every message's task has ended (a failed task never answers)."""
    args = ctx["args"]
    stats = PhaseStats()
    sockets = [CustomerSocket(p, f"{ctx['base_ws']}/ws/chat/{p.token}/", ctx["origin"], stats) for p in probes]
    sem = asyncio.Semaphore(50)
    await asyncio.gather(*(s.open(sem, args.connect_timeout) for s in sockets))
    ready = [s for s in sockets if s.ws is not None]
    log(f"{phase}: {len(ready)} of {len(sockets)} customer sockets open; sending at {rate:g} msg/s")

    stop = asyncio.Event()
    probe_task = asyncio.get_running_loop().create_task(sampler(probes, stats, stop, ctx["broker_url"], ctx))
    cpu0 = (ctx["worker"].cpu_seconds(), ctx["server"].cpu_seconds(), time.process_time(), machine_busy())
    wall0 = time.perf_counter()
    load_before = os.getloadavg()
    t0 = time.perf_counter() + 0.5
    for k, sock in enumerate(ready):
        delay = t0 + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        p = sock.probe
        p.client_id = f"pb-{phase.replace('.', '_')}-{k}-{random.getrandbits(32):08x}"
        payload = json.dumps({"type": "message", "body": p.question, "client_id": p.client_id})
        p.sent_wall = time.time()
        if not await sock.send(payload):
            p.errors.append("send failed")
    last_send = time.perf_counter()

    deadline = last_send + drain_timeout
    pending = [s.probe for s in ready]
    for tick in range(10_000_000):  # bounded by the deadline long before
        if time.perf_counter() >= deadline or all(p.reply_wall is not None for p in pending):
            break
        if not ctx["worker"].alive():
            log(f"{phase}: the worker died; not waiting for the rest")
            break
        check = ends_before is not None and tick % 10 == 0
        if check and len(ctx["worker"].task_runs()) >= ends_before + len(pending):
            await asyncio.sleep(1.0)  # the last reply's frame may still be on its way
            break
        await asyncio.sleep(0.1)
    drain_wait = time.perf_counter() - last_send
    stop.set()
    await asyncio.wait([probe_task], timeout=5)
    wall = time.perf_counter() - wall0
    cpu1 = (ctx["worker"].cpu_seconds(), ctx["server"].cpu_seconds(), time.process_time(), machine_busy())

    stats.closing = True
    live = [s for s in ready if s.ws is not None]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.ws.close() for s in live), return_exceptions=True), timeout=30)
    except TimeoutError:
        log(f"{phase}: closing the sockets took over 30 s; abandoning them")
    tasks = [s.task for s in sockets if s.task is not None]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=10)

    def share(i: int) -> float | None:
        if cpu0[i] is None or cpu1[i] is None:
            return None
        return round(100 * (cpu1[i] - cpu0[i]) / wall, 1)

    busy = cpu1[3][0] - cpu0[3][0]
    total = cpu1[3][1] - cpu0[3][1]
    return {
        "phase": phase,
        "rate": rate,
        "sockets": len(sockets),
        "sockets_open": len(ready),
        "conn_failures": stats.conn_failures,
        "conn_errors": dict(stats.conn_errors.most_common(3)),
        "dropped": stats.dropped,
        "handler_errors": stats.handler_errors,
        "drain_wait_s": round(drain_wait, 2),
        "drain_timed_out": any(p.reply_wall is None for p in pending),
        "wall_s": round(wall, 2),
        "worker_cpu_pct": share(0),
        "worker_cpu_s": round(cpu1[0] - cpu0[0], 2) if cpu0[0] is not None and cpu1[0] is not None else None,
        "server_cpu_pct": share(1),
        "client_cpu_pct": share(2),
        "machine_busy_pct": round(100 * busy / total, 1) if total > 0 else None,
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "samples": stats.samples,
        "sampler_errors": stats.probe_errors,
    }


def start_server_and_worker(server: Server, worker: Worker, args, *, broker_url: str) -> dict:
    """Start ``server``, then ``worker``; returns the context ``warm_up`` and ``run_phase`` take."""
    server.start(timeout=180)
    log(f"server on 127.0.0.1:{server.port} (pid {server.proc.pid}); starting the worker")
    worker.start()
    log(f"worker ready (pid {worker.proc.pid}, prefork -c {args.concurrency})")
    return {
        "args": args,
        "server": server,
        "worker": worker,
        "base_ws": f"ws://127.0.0.1:{server.port}",
        "origin": server.base,
        "broker_url": broker_url,
    }


def warm_up(ctx: dict, probes: list[Probe], timeout: float) -> list[dict]:
    """Rounds of ``concurrency`` simultaneous messages (one per pool process) until a round is fully
    answered by processes that had all finished a task before it — or the warm-up messages run out.
    The first task of a fresh process pays for the models it loads or fits; the figures must not."""
    worker, concurrency = ctx["worker"], ctx["args"].concurrency
    rounds = []
    for start in range(0, len(probes), concurrency):
        group = probes[start : start + concurrency]
        before = worker.task_runs()
        warm = {process for _at, process, runtime, _outcome in before if runtime is not None}
        run = run_async(run_phase(ctx, "warmup", group, 50.0, timeout, ends_before=len(before)))
        ended = worker.task_runs()[len(before) :]
        answered = sum(1 for p in group if p.reply_wall is not None)
        rounds.append(
            {
                "sent": len(group),
                "answered": answered,
                "warm_processes_before": len(warm),
                "tasks": [(process, runtime, outcome) for _at, process, runtime, outcome in ended],
                "wait_s": run["drain_wait_s"],
            }
        )
        log(
            f"warm-up round {len(rounds)}: {answered} of {len(group)} answered in {run['drain_wait_s']:.0f}s; "
            f"tasks {[(proc, runtime, outcome) for proc, runtime, outcome in rounds[-1]['tasks']]}"
        )
        settle()
        if answered == len(group) and len(warm) >= concurrency:
            break
    return rounds


def settle(timeout: float = 200.0) -> int:
    """Between phases: drop what is still queued (the bench's own broker database) and wait until the
    worker runs and holds nothing, so one phase's backlog never lands in the next. Returns the purged count."""
    from supportflow.celery import app

    purged = app.control.purge()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inspect = app.control.inspect(timeout=2.0)
        active, reserved = inspect.active(), inspect.reserved()
        answered = active is not None and reserved is not None
        if answered and not any(active.values()) and not any(reserved.values()):
            break
        time.sleep(1.0)
    else:
        log(f"the worker was still busy {timeout:.0f}s after the phase")
    return purged


# --- figures ---------------------------------------------------------------------------------------


def read_back(probes: list[Probe]) -> list[dict]:
    """Per message, from the database: when it was stored, the AI's decision and its timing, when the
    reply (or the hand-over notice) was stored; joined with what the socket saw."""
    from knowledge.models import Article
    from tickets.models import AIDraft, Message

    slugs = dict(Article.objects.values_list("pk", "slug"))
    ids = [p.ticket_id for p in probes]
    customer = {
        (m.ticket_id, m.client_msg_id): m
        for m in Message.objects.filter(ticket_id__in=ids, author_kind="customer", seq__gt=1)
    }
    drafts = {d.in_reply_to_id: d for d in AIDraft.objects.filter(ticket_id__in=ids).select_related("sent_message")}
    notices = defaultdict(list)
    for m in Message.objects.filter(ticket_id__in=ids, author_kind="system").order_by("seq"):
        notices[m.ticket_id].append(m)
    rows = []
    for p in probes:
        row = {"phase": p.phase, "index": p.index, "kind": p.kind, "topic": p.topic, "errors": p.errors}
        msg = customer.get((p.ticket_id, p.client_id)) if p.client_id else None
        rows.append(row)
        if msg is None:
            row["outcome"] = "not stored" if p.sent_wall is not None else "not sent"
            continue
        stored = msg.created_at.timestamp()
        row["send_to_stored_ms"] = round((stored - p.sent_wall) * 1000, 1)
        if p.own_copy_wall is not None:
            row["own_copy_ms"] = round((p.own_copy_wall - stored) * 1000, 1)
        if p.status_wall is not None:
            row["status_seen_ms"] = round((p.status_wall - stored) * 1000, 1)
        draft = drafts.get(msg.pk)
        if draft is None:
            row["outcome"] = "no decision"
            continue
        gate = draft.gate or {}
        row["outcome"] = {"sent": "sent", "pending": "escalated"}.get(draft.status, draft.status)
        if gate.get("acknowledged"):
            row["outcome"] = "acknowledged"
        row["confidence"] = round(draft.confidence, 3)
        triggers = gate.get("triggers") or []
        row["reason"] = triggers[0].get("rule", "") if triggers else ("" if draft.status == "sent" else "confidence")
        cited = [slugs.get(c.get("article_id")) for c in (draft.citations or []) if isinstance(c, dict)]
        row["cited"] = [s for s in cited if s]
        drafted = draft.created_at.timestamp()
        stages = gate.get("stages_ms") or {}
        for name in STAGES:
            if name in stages:
                row[name] = stages[name]
        total = gate.get("total_ms")
        if total is not None:
            row["pipeline_ms"] = total
            row["other_ms"] = total - sum(stages.get(name, 0) for name in STAGES)
            row["queue_ms"] = round((drafted - total / 1000 - stored) * 1000, 1)
        if draft.sent_message is not None:
            reply = draft.sent_message
        else:
            reply = next((m for m in notices.get(p.ticket_id, []) if m.seq > msg.seq), None)
        if reply is not None:
            row["record_ms"] = round((reply.created_at.timestamp() - drafted) * 1000, 1)
            row["reply_seq"] = reply.seq
            if p.reply_wall is not None and p.reply_seq == reply.seq:
                row["delivery_ms"] = round((p.reply_wall - reply.created_at.timestamp()) * 1000, 1)
        if p.reply_wall is not None:
            row["e2e_ms"] = round((p.reply_wall - stored) * 1000, 1)
            row["reply_kind"] = p.reply_kind
    return rows


def warmup_summary(rows: list[dict], rounds: list[dict]) -> dict:
    """What the cold start cost: each round's tasks (pool process, runtime, outcome) and the latencies."""
    tasks = [task for r in rounds for task in r["tasks"]]
    return {
        "sent": sum(r["sent"] for r in rounds),
        "answered": sum(r["answered"] for r in rounds),
        "rounds": rounds,
        "failed": [outcome for _proc, _runtime, outcome in tasks if outcome.startswith(("failed", "retry"))],
        "first_task_s": {
            proc: next((rt for p, rt, _o in tasks if p == proc), None) for proc in sorted({p for p, _r, _o in tasks})
        },
        "e2e_ms": dist([r["e2e_ms"] for r in rows if "e2e_ms" in r]),
        "triage_ms": dist([r["triage_ms"] for r in rows if "triage_ms" in r]),
    }


def dist(values: list[float]) -> dict:
    """``_harness.dist`` and the mean."""
    return {**_harness_dist(values), "mean": round(sum(values) / len(values), 1) if values else None}


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over t (per second)."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return round(sum((t - mt) * (y - my) for t, y in points) / var, 3) if var > 0 else None


BREAKDOWN = (
    ("queue_ms", "queue wait (stored → pipeline started)"),
    ("guard_ms", "guard"),
    ("triage_ms", "triage"),
    ("retrieve_ms", "retrieve"),
    ("answer_ms", "answer"),
    ("other_ms", "rest of the pipeline (reads, rules)"),
    ("record_ms", "record (draft → reply stored)"),
    ("delivery_ms", "delivery (reply stored → frame)"),
    ("e2e_ms", "**stored → delivered**"),
)


def summarise(rows: list[dict], probes: list[Probe], run: dict, task_runs: list, concurrency: int) -> dict:
    """One phase's figures: latency and its parts, outcomes, throughput, saturation."""
    sent = [p for p in probes if p.sent_wall is not None]
    replied = sorted(p.reply_wall for p in probes if p.reply_wall is not None)
    first_send = min((p.sent_wall for p in sent), default=None)
    last_send = max((p.sent_wall for p in sent), default=None)
    offered = (len(sent) - 1) / (last_send - first_send) if len(sent) > 1 and last_send > first_send else None
    completion = (len(replied) - 1) / (replied[-1] - replied[0]) if len(replied) > 1 else None
    in_window = [(s["t"], s["in_flight"]) for s in run["samples"] if s["sent"] < len(sent)]
    backlog_slope = slope(in_window)
    breakdown = {key: dist([r[key] for r in rows if r.get(key) is not None]) for key, _ in BREAKDOWN}
    breakdown["send_to_stored_ms"] = dist([r["send_to_stored_ms"] for r in rows if "send_to_stored_ms" in r])
    breakdown["status_seen_ms"] = dist([r["status_seen_ms"] for r in rows if "status_seen_ms" in r])
    breakdown["pipeline_ms"] = dist([r["pipeline_ms"] for r in rows if "pipeline_ms" in r])
    outcomes = Counter(r["outcome"] for r in rows)
    by_kind = {kind: dict(Counter(r["outcome"] for r in rows if r["kind"] == kind)) for kind in ("kb", "human", "off")}
    reasons = Counter(r.get("reason") or "?" for r in rows if r["outcome"] == "escalated")
    kb_sent = [r for r in rows if r["kind"] == "kb" and r["outcome"] == "sent"]
    cited_expected = sum(1 for r in kb_sent if r["topic"] in r.get("cited", []))
    e2e_by_outcome = {
        outcome: dist([r["e2e_ms"] for r in rows if r["outcome"] == outcome and "e2e_ms" in r])
        for outcome in ("sent", "escalated")
    }
    # Worker: the tasks that finished between this phase's first send and its end.
    window_end = first_send + run["wall_s"] if first_send is not None else None
    mine = [t for t in task_runs if first_send is not None and first_send - 1 <= t[0] <= window_end + 1]
    runtimes = [t[2] for t in mine if t[2] is not None]
    per_process = Counter(t[1] for t in mine if t[2] is not None)
    starts = [r for r in rows if "queue_ms" in r]
    busy_from = min((p.sent_wall for p in sent), default=None)
    busy_to = max(replied, default=None)
    busy_s = (busy_to - busy_from) if busy_from is not None and busy_to is not None else None
    queued = [s["queued"] for s in run["samples"] if s.get("queued") is not None]
    loads = [s["load1"] for s in run["samples"]]
    saturated = bool(
        (offered and completion and completion < 0.9 * offered)
        or (backlog_slope is not None and offered and backlog_slope > max(0.1 * offered, 0.05))
        or run["drain_timed_out"]
    )
    return {
        "phase": run["phase"],
        "rate": run["rate"],
        "concurrency": concurrency,
        "sent": len(sent),
        "delivered": len(replied),
        "delivered_ai": sum(1 for p in probes if p.reply_kind == "ai"),
        "delivered_notice": sum(1 for p in probes if p.reply_kind == "system"),
        "offered_per_s": round(offered, 2) if offered else None,
        "completed_per_s": round(completion, 2) if completion else None,
        "backlog_slope_per_s": backlog_slope,
        "in_flight_max": max((s["in_flight"] for s in run["samples"]), default=None),
        "queued_max": max(queued, default=None),
        "saturated": saturated,
        "latency": breakdown,
        "e2e_by_outcome": e2e_by_outcome,
        "outcomes": dict(outcomes),
        "outcomes_by_kind": by_kind,
        "escalation_reasons": reasons.most_common(6),
        "kb_sent": len(kb_sent),
        "kb_sent_cited_expected": cited_expected,
        "errors": sum(len(r["errors"]) for r in rows),
        "error_samples": Counter(e for r in rows for e in r["errors"]).most_common(3),
        "tasks_logged": len(runtimes),
        "tasks_failed": sum(1 for t in mine if t[2] is None),
        "task_outcomes": dict(Counter(t[3] for t in mine)),
        "task_runtime_ms": dist([1000 * v for v in runtimes]),
        "tasks_per_process": dict(per_process),
        "tasks_per_s_per_process": round(len(starts) / busy_s / concurrency, 3) if busy_s and starts else None,
        "capacity_per_s": round(concurrency / (sum(runtimes) / len(runtimes)), 2) if runtimes else None,
        "worker_cpu_s_per_task": round(run["worker_cpu_s"] / len(runtimes), 2)
        if runtimes and run.get("worker_cpu_s") is not None
        else None,
        "busy_s": round(busy_s, 2) if busy_s else None,
        "load_mean": round(sum(loads) / len(loads), 2) if loads else None,
        "load_max": max(loads, default=None),
        **{
            k: run[k]
            for k in (
                "worker_cpu_pct",
                "server_cpu_pct",
                "client_cpu_pct",
                "machine_busy_pct",
                "load_before",
                "load_after",
                "conn_failures",
                "dropped",
                "drain_wait_s",
                "drain_timed_out",
                "wall_s",
            )
        },
    }


def f0(value) -> str:
    return fmt(value, 0)


def tables_markdown(summaries: list[dict], concurrency: int) -> str:
    head = (
        "| rate | sent | delivered (AI / hand-over) | p50 ms | p95 ms | p99 ms | max ms | completed/s "
        "| backlog growth /s | max in flight | saturated |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    rows = []
    for s in summaries:
        e = s["latency"]["e2e_ms"]
        rows.append(
            f"| {s['rate']:g}/s | {s['sent']} | {s['delivered']} ({s['delivered_ai']} / {s['delivered_notice']}) "
            f"| {f0(e['p50'])} | {f0(e['p95'])} | {f0(e['p99'])} | {f0(e['max'])} | {fmt(s['completed_per_s'], 2)} "
            f"| {fmt(s['backlog_slope_per_s'], 2)} | {s['in_flight_max']} | {'**yes**' if s['saturated'] else 'no'} |"
        )
    parts_head = "\n\n| part (ms) | " + " | ".join(f"{s['rate']:g}/s p50 / p95" for s in summaries) + " |\n"
    parts_head += "|---|" + "---:|" * len(summaries) + "\n"
    parts_rows = []
    for key, label in (
        *BREAKDOWN,
        ("send_to_stored_ms", "(before: send → stored, websocket in)"),
        ("status_seen_ms", "(stored → “preparing an answer” seen)"),
    ):
        cells = [f"{f0(s['latency'][key]['p50'])} / {f0(s['latency'][key]['p95'])}" for s in summaries]
        parts_rows.append(f"| {label} | " + " | ".join(cells) + " |")
    out_head = (
        "\n\n| rate | sent by the AI | handed over | no AI decision / other | KB questions: sent / handed over "
        "| human or off-topic: sent / handed over | sent replies citing the expected article "
        "| p50 ms sent / handed over |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    out_rows = []
    for s in summaries:
        o, k = s["outcomes"], s["outcomes_by_kind"]
        none = o.get("no decision", 0) + o.get("not stored", 0) + o.get("not sent", 0)
        other = sum(o.values()) - o.get("sent", 0) - o.get("escalated", 0) - none
        off_sent = k["human"].get("sent", 0) + k["off"].get("sent", 0)
        off_esc = k["human"].get("escalated", 0) + k["off"].get("escalated", 0)
        eo = s["e2e_by_outcome"]
        out_rows.append(
            f"| {s['rate']:g}/s | {o.get('sent', 0)} | {o.get('escalated', 0)} | {none} / {other} "
            f"| {k['kb'].get('sent', 0)} / {k['kb'].get('escalated', 0)} | {off_sent} / {off_esc} "
            f"| {s['kb_sent_cited_expected']} of {s['kb_sent']} "
            f"| {f0(eo['sent']['p50'])} / {f0(eo['escalated']['p50'])} |"
        )
    work_head = (
        f"\n\n| rate | tasks | task runtime p50 / p95 ms | tasks/s per worker process (observed) "
        f"| capacity tasks/s ({concurrency} processes ÷ mean runtime) | worker CPU % | server CPU % "
        "| worker CPU s per task | machine busy % | load avg 1 min mean / max |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    work_rows = []
    for s in summaries:
        t = s["task_runtime_ms"]
        work_rows.append(
            f"| {s['rate']:g}/s | {s['tasks_logged']} | {f0(t['p50'])} / {f0(t['p95'])} "
            f"| {fmt(s['tasks_per_s_per_process'], 2)} | {fmt(s['capacity_per_s'], 2)} | {f0(s['worker_cpu_pct'])} "
            f"| {f0(s['server_cpu_pct'])} | {fmt(s['worker_cpu_s_per_task'], 2)} | {f0(s['machine_busy_pct'])} "
            f"| {fmt(s['load_mean'], 1)} / "
            f"{fmt(s['load_max'], 1)} |"
        )
    return (
        head
        + "\n".join(rows)
        + parts_head
        + "\n".join(parts_rows)
        + out_head
        + "\n".join(out_rows)
        + work_head
        + "\n".join(work_rows)
    )


def observations(
    summaries: list[dict], warmup: dict | None, worker_log: dict, server_log: dict, *, provider: str = "local"
) -> list[str]:
    notes = []
    if warmup and warmup["sent"]:
        firsts = ", ".join(
            f"{proc} {'failed' if runtime is None else f'{runtime:.0f} s'}"
            for proc, runtime in warmup["first_task_s"].items()
        )
        failed = Counter(warmup["failed"])
        notes.append(
            f"- Warm-up (not in the tables): {warmup['sent']} messages in {len(warmup['rounds'])} rounds, "
            f"{warmup['answered']} answered; the first task of each pool process: {firsts}"
            + (f"; failed tasks: {dict(failed)}" if failed else "")
            + f". Stored → delivered during the warm-up: max {f0(warmup['e2e_ms']['max'])} ms. A fresh worker "
            "process loads the embedding model and fits the guard and the local triage seed model on its first "
            "task (no trained triage model exists after `seed_demo`)."
        )
    for s in summaries:
        where = f"{s['rate']:g}/s"
        lat = s["latency"]
        e2e = lat["e2e_ms"]
        if s["saturated"]:
            notes.append(
                f"- {where}: saturated — {fmt(s['completed_per_s'], 2)} answers/s completed of "
                f"{fmt(s['offered_per_s'], 2)} offered, the unanswered backlog grew by "
                f"{fmt(s['backlog_slope_per_s'], 2)} "
                f"messages/s while sending (at most {s['in_flight_max']} waiting, {s['queued_max']} of them still "
                f"in the broker); queue wait p50 {f0(lat['queue_ms']['p50'])} ms of {f0(e2e['p50'])} ms."
            )
        else:
            notes.append(
                f"- {where}: kept up — {fmt(s['completed_per_s'], 2)} answers/s completed of "
                f"{fmt(s['offered_per_s'], 2)} offered, backlog growth {fmt(s['backlog_slope_per_s'], 2)} /s, "
                f"at most {s['in_flight_max']} messages waiting."
            )
        if e2e["n"] < s["sent"]:
            notes.append(f"- {where}: {s['sent'] - e2e['n']} of {s['sent']} messages got no reply on the socket.")
        stages = {key: lat[key]["p50"] for key in STAGES if lat[key]["p50"] is not None}
        if stages and lat["pipeline_ms"]["p50"]:
            top = max(stages, key=stages.get)
            notes.append(
                f"- {where}: the pipeline itself took p50 {f0(lat['pipeline_ms']['p50'])} ms; its largest stage "
                f"is {top.removesuffix('_ms')} (p50 {f0(stages[top])} ms)."
            )
        if s["worker_cpu_s_per_task"]:
            cores = os.cpu_count() or 1
            notes.append(
                f"- {where}: the worker used {fmt(s['worker_cpu_s_per_task'], 2)} CPU seconds per answer (its "
                f"{s['concurrency']} processes together got {f0(s['worker_cpu_pct'])} % of one core, the machine was "
                f"{f0(s['machine_busy_pct'])} % busy): with all {cores} cores to itself, the worker could "
                f"answer at most about {cores / s['worker_cpu_s_per_task']:.2f} messages/s."
            )
            if provider == "openai" and lat["pipeline_ms"]["p50"]:
                notes.append(
                    f"- {where}: with an LLM, CPU is not the limit: each of the {s['concurrency']} processes waits "
                    f"for the model, so the pipeline's p50 of {f0(lat['pipeline_ms']['p50'])} ms caps the worker "
                    f"near {s['concurrency'] * 1000 / lat['pipeline_ms']['p50']:.2f} messages/s; more processes "
                    f"(or a thread pool for the ai queue) raise that."
                )
        if s["escalation_reasons"]:
            notes.append(
                f"- {where}: hand-over reasons: "
                + ", ".join(f"{reason} ×{count}" for reason, count in s["escalation_reasons"])
                + "."
            )
        if s["errors"]:
            notes.append(f"- {where}: {s['errors']} error notices on the sockets ({s['error_samples']}).")
        if s["conn_failures"] or s["dropped"]:
            notes.append(f"- {where}: {s['conn_failures']} connection failures, {s['dropped']} sockets dropped.")
    if worker_log["tracebacks"] or worker_log["warnings_errors"]:
        kinds = "; ".join(f"`{text}` ×{count}" for text, count in worker_log["warnings_errors"][:4])
        notes.append(f"- Worker log: {worker_log['tracebacks']} tracebacks; {kinds or 'no warnings'}.")
    else:
        notes.append("- Worker log: no errors, warnings or tracebacks.")
    if server_log["tracebacks"] or server_log["other"]:
        kinds = "; ".join(f"`{text}` ×{count}" for text, count in server_log["other"][:3])
        notes.append(f"- Server log: {server_log['tracebacks']} tracebacks; {kinds or 'no other warnings'}.")
    else:
        notes.append("- Server log: no errors, warnings or tracebacks.")
    return notes


def llm_share(summary: dict, calls: int | None, delay: float) -> dict:
    """The model's part of the wait (calls × the fake's fixed delay) and ours (everything else)."""
    sent = summary["sent"] or 1
    per_message = (calls or 0) / sent
    model_ms = per_message * delay * 1000
    e2e = summary["latency"]["e2e_ms"]
    ours = {p: (round(e2e[p] - model_ms, 1) if e2e[p] is not None else None) for p in ("p50", "p95")}
    pipeline = summary["latency"]["pipeline_ms"]["p50"]
    cpu = summary["worker_cpu_s_per_task"]
    return {
        "calls": calls,
        "calls_per_message": round(per_message, 2),
        "model_ms_per_message": round(model_ms, 1),
        "ours_ms": ours,
        "ours_share_p50": round(ours["p50"] / e2e["p50"], 3) if e2e["p50"] and ours["p50"] is not None else None,
        "pipeline_p50_ms": pipeline,
        "ours_in_pipeline_share": round(1 - model_ms / pipeline, 3) if pipeline else None,
        # Each prefork process blocks for the call, then needs its CPU time: with a core per process,
        # the pool does processes ÷ (model time + CPU time) tasks per second.
        "capacity_core_each": round(summary["concurrency"] / (model_ms / 1000 + cpu), 2) if cpu else None,
    }


def pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.0f} %"


def llm_table(summaries: list[dict], delay: float) -> str:
    rows = [
        f"| rate | LLM calls per message | model time per message ms (calls × {delay * 1000:.0f}) "
        "| stored → delivered p50 / p95 ms | ours p50 / p95 ms (the rest) | ours, share of p50 "
        "| pipeline p50 ms (ours in it) | worker CPU s per task | tasks/s per worker process "
        "| capacity tasks/s, a core per process | completed/s of offered | saturated |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        llm, e2e = s["llm"], s["latency"]["e2e_ms"]
        share = llm["ours_share_p50"]
        rows.append(
            f"| {s['rate']:g}/s | {fmt(llm['calls_per_message'], 2)} | {f0(llm['model_ms_per_message'])} "
            f"| {f0(e2e['p50'])} / {f0(e2e['p95'])} | {f0(llm['ours_ms']['p50'])} / {f0(llm['ours_ms']['p95'])} "
            f"| {'–' if share is None else f'{100 * share:.0f} %'} "
            f"| {f0(llm['pipeline_p50_ms'])} ({pct(llm['ours_in_pipeline_share'])}) "
            f"| {fmt(s['worker_cpu_s_per_task'], 2)} | {fmt(s['tasks_per_s_per_process'], 2)} "
            f"| {fmt(llm['capacity_core_each'], 2)} "
            f"| {fmt(s['completed_per_s'], 2)} of {fmt(s['offered_per_s'], 2)} "
            f"| {'**yes**' if s['saturated'] else 'no'} |"
        )
    return "\n".join(rows)


def docs_section(args, summaries, notes, meta) -> str:
    command = (
        "python -m supportflow.devservices exec -- .venv/bin/python bench/pipeline_bench.py "
        f"--rates {','.join(f'{r:g}' for r in args.rates_list)} --messages {','.join(map(str, args.counts))} "
        f"--concurrency {args.concurrency} --warmup {args.warmup} --drain-timeout {args.drain_timeout:g}"
        + (f" --off-share {args.off_share:g}" if args.off_share != 0.2 else "")
        + (f" --seed {args.seed}" if args.seed != 1 else "")
        + (f" --provider openai --llm-delay {args.llm_delay:g}" if args.provider == "openai" else "")
    )
    openai = args.provider == "openai"
    heading = SECTION_HEADING_OPENAI if openai else SECTION_HEADING
    what = (
        "with an OpenAI-compatible endpoint — a fake one in the bench process that answers every call after "
        f"exactly {args.llm_delay * 1000:.0f} ms (`supportflow.tests.fake_openai.FakeOpenAI`, triage JSON and an "
        "answer quoting the first passage it was given), so the model's part of the wait is known and ours is "
        "the rest — at rising arrival rates until the worker saturates"
        if openai
        else "with the local provider (no API key: local triage classifier, extractive answer over the demo knowledge "
        "base), at a fixed arrival rate"
    )
    provider_env = (
        f"`LLM_PROVIDER=openai` (`OPENAI_BASE_URL` = the fake, {args.llm_delay * 1000:.0f} ms per call)"
        if openai
        else "`LLM_PROVIDER=local`"
    )
    llm_part = (
        "\n\n**Our share of the wait.** *Model time* = the fake's LLM calls during the rate ÷ messages × its fixed "
        "delay; *ours* = stored → delivered minus that (queue, guard, retrieval, the sentence-support check, "
        "recording, delivery — everything the app adds to the model); *pipeline* = the task's own time "
        "(`gate.total_ms`, no queue) and our share of it. Celery's prefork processes block during a call, so "
        "with a core per process the pool does about processes ÷ (model time + worker CPU s per task) tasks/s "
        "(*capacity*, independent of the load); on a busy machine it does less, and then the queue wait "
        "dominates the total.\n\n" + llm_table(summaries, args.llm_delay)
        if openai
        else ""
    )
    loads = ", ".join(f"{s['rate']:g}/s: {fmt(s['load_mean'], 1)}" for s in summaries)
    return f"""{heading}

What it measures: how long a customer waits for the AI — from their chat message being stored to the
AI's reply (or, when the AI hands over, the "a person will reply" notice) arriving on their websocket —
{what}, and where that time goes.

Reproduce (from the repository root; the embedded PostgreSQL and Redis are started or reused):

```sh
{command}
```

- **Run:** {meta["date"]}, Python {meta["python"]}, Celery {meta["celery"]}
  (`worker --pool prefork -c {args.concurrency}`: **{args.concurrency} worker processes**), uvicorn
  {meta["uvicorn"]} (one process), {provider_env}, `FEATURE_AI_PIPELINE=true`,
  `FEATURE_AI_AUTO_REPLY=true`.
- **Machine:** {meta["cpus"]} cores, {meta["mem_gb"]} GB RAM, shared by the clients, uvicorn, the worker,
  PostgreSQL, Redis and whatever else ran: load average {meta["load_start"]} (1/5/15 min) at the start,
  mean 1-min load during each rate {loads}. With {meta["cpus"]} cores, a load above {meta["cpus"]} means
  processes waited for a CPU: read the milliseconds as this machine's, at that load.
- **Setup, like `make run`:** its own database `{BENCH_DB_NAME}` (dropped and recreated), `migrate`,
  `seed_demo` (4 departments, 4 staff, the 39-article demo knowledge base embedded, its passages
  scanned by the injection guard as the worker does after `make run`), Redis databases
  {BENCH_REDIS_DB}/{BENCH_CACHE_DB}/{BENCH_CHANNELS_DB} (broker / cache / channel layer), chat rate limits raised
  (every client is 127.0.0.1). Warm-up first (not counted): rounds of {args.concurrency} simultaneous
  messages until every pool process has finished a task (at most {args.warmup} messages). Between rates
  the bench purges what is still queued and waits until the worker is idle.
- **Load:** each message is a new conversation: a chat ticket opened with a greeting (not enqueued), a
  customer socket on `/ws/chat/<token>/`, then one question sent as `{{"type": "message", ...}}` at
  t0 + k/rate (open loop). Questions: {len(KB_QUESTIONS)} written about the demo articles' topics (2 in
  German) and, for {round(100 * args.off_share)} % of the messages, {len(OFF_QUESTIONS)} that the knowledge
  base cannot answer or that ask for a person; the list is in `bench/pipeline_bench.py`.
- **Parts of the latency**, per message, from one clock: *queue wait* = pipeline start
  (`AIDraft.created_at − gate.total_ms`) − message `created_at` (on-commit enqueue, Redis broker, prefork
  dispatch, the task's first reads); the four stages from `gate.stages_ms` (*retrieve* includes reading
  the injection guard's stored verdict on each retrieved passage, scanning any not yet scanned);
  *rest of the pipeline* = `total_ms` − the stages; *record* = draft → reply (or notice) `created_at`
  (send or escalate, assign, commit); *delivery* = reply `created_at` → the frame on the customer's
  socket (on-commit render, channel layer, uvicorn). They add up to *stored → delivered*. Percentiles
  of each part are taken separately, so the p95s do not add up.
- **Throughput:** *completed/s* = answers delivered ÷ time between the first and the last one;
  *backlog growth* = slope of (sent − answered) over the sending window; *saturated* when completed/s
  is under 90 % of the offered rate or the backlog grows by more than 10 % of it. *Tasks/s per worker
  process* = answers ÷ (first send → last answer) ÷ processes; *capacity* = processes ÷ mean task runtime
  (from the worker's log) — what the pool does when never idle. *Worker CPU s per task* = CPU time of the
  worker's processes during the rate ÷ tasks: unlike the milliseconds, it hardly depends on the load.

{tables_markdown(summaries, args.concurrency)}{llm_part}

### Notes from this run

{chr(10).join(notes)}

The per-message figures and the samples of backlog, broker queue, CPU and load (every 0.5 s, thinned
to at most ~300 per rate) are in the JSON line the script prints last.
"""


def cache_totals() -> dict[str, dict[str, int]]:
    """The AI cache's counters now (``{cache: {"hit", "miss"}}``), read in this process; {} if unreadable."""
    from supportflow import metrics

    try:
        return metrics.ai_cache_totals()
    except Exception as exc:  # a report line is not worth the run
        log(f"AI cache counters unreadable: {exc}")
        return {}


def cache_delta(before: dict, after: dict) -> dict[str, dict[str, int]]:
    was = {cache: before.get(cache, {}) for cache in after}
    return {cache: {r: now.get(r, 0) - was[cache].get(r, 0) for r in ("hit", "miss")} for cache, now in after.items()}


def cache_table(summaries: list[dict]) -> str:
    """Hits and misses of the AI cache per phase (``AI_CACHE_ENABLED``; docs/ai-pipeline.md, "Caching")."""
    lines = ["| phase | cache | hits | misses | hit rate |", "|---|---|---:|---:|---:|"]
    for s in summaries:
        for cache, counts in sorted((s.get("cache") or {}).items()):
            looked = counts["hit"] + counts["miss"]
            rate = f"{counts['hit'] / looked:.0%}" if looked else "—"
            lines.append(f"| {s['phase']} | {cache} | {counts['hit']} | {counts['miss']} | {rate} |")
    if len(lines) == 2:
        lines.append("| — | (no lookups counted) | | | |")
    return "AI cache per phase:\n\n" + "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1,5", help="comma-separated arrival rates, messages/s")
    parser.add_argument(
        "--messages", default="", help="messages per rate: one number, or one per rate (default: rate × --duration)"
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sending per rate (without --messages)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery prefork processes (-c)")
    parser.add_argument("--warmup", type=int, default=8, help="max warm-up messages, in rounds of --concurrency")
    parser.add_argument("--warmup-timeout", type=float, default=300.0, help="max wait per warm-up round")
    parser.add_argument("--off-share", type=float, default=0.2, help="share of unanswerable / ask-for-a-human ones")
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="max wait for answers after the last send")
    parser.add_argument("--connect-timeout", type=float, default=30.0, help="per-socket handshake timeout")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the questions")
    parser.add_argument(
        "--fresh-texts",
        action="store_true",
        help="the worker keeps the vectors of one message's texts only (EMBEDDING_CACHE_SIZE=32) and the AI "
        "cache is off (AI_CACHE_ENABLED=false: no shared vectors, retrievals or answers), so the bench's 54 "
        "questions, repeated, cost what new questions cost; the knowledge base's own vectors stay cached",
    )
    parser.add_argument("--out", default="docs/benchmarks.md", help="markdown file to update ('' to skip)")
    parser.add_argument("--provider", choices=("local", "openai"), default="local", help="openai: the fake endpoint")
    parser.add_argument("--llm-delay", type=float, default=0.3, help="seconds the fake endpoint takes per call")
    args = parser.parse_args(argv)
    if not 0 <= args.llm_delay <= 5:
        parser.error("--llm-delay 0..5")
    try:
        args.rates_list = [float(r) for r in args.rates.split(",") if r.strip()]
        counts = [int(c) for c in args.messages.split(",") if c.strip()]
    except ValueError:
        parser.error("--rates and --messages take comma-separated numbers")
    if not args.rates_list or min(args.rates_list) <= 0 or max(args.rates_list) > 100:
        parser.error("--rates: each in (0, 100]")
    if not counts:
        counts = [max(1, round(r * args.duration)) for r in args.rates_list]
    elif len(counts) == 1:
        counts = counts * len(args.rates_list)
    if len(counts) != len(args.rates_list) or min(counts) < 1 or max(counts) > 5000:
        parser.error("--messages: one number or one per rate, each 1..5000")
    args.counts = counts
    if not 1 <= args.concurrency <= 32 or not 0 <= args.warmup <= 100 or not 0 <= args.off_share <= 1:
        parser.error("--concurrency 1..32, --warmup 0..100, --off-share 0..1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    random.seed(args.seed)
    stop_on_sigterm()
    raise_nofile_limit()
    work_dir = Path(tempfile.mkdtemp(prefix="supportflow-pipeline-bench-"))
    fake = start_fake_openai(args.llm_delay) if args.provider == "openai" else None
    if fake is not None:
        log(f"fake OpenAI-compatible endpoint at {fake.url}, {args.llm_delay:g} s per call")
    env = bench_env(dict(os.environ), work_dir / "data", fake.url if fake else None)
    dbs = (BENCH_REDIS_DB, BENCH_CACHE_DB, BENCH_CHANNELS_DB)
    load_start = [round(v, 2) for v in os.getloadavg()]
    log(f"database {BENCH_DB_NAME}; redis dbs {'/'.join(map(str, dbs))}; logs in {work_dir}")
    log(f"load average {load_start}")

    recreate_database(env["DATABASE_URL"], BENCH_DB_NAME)
    flush_redis_dbs(env["REDIS_URL"], dbs)
    log("migrating")
    migrate_s = manage(env, "migrate", "--noinput", "-v", "0", timeout=600)
    log("seed_demo (embeds the demo knowledge base)")
    seed_s = manage({**env, "FEATURE_AI_PIPELINE": "false"}, "seed_demo", timeout=1200)
    flush_redis_dbs(env["REDIS_URL"], dbs)  # nothing the seed did may reach the worker

    django_setup(env)
    from knowledge.models import Article, Chunk

    articles, chunks = Article.objects.count(), Chunk.objects.count()
    log(f"knowledge base: {articles} articles, {chunks} chunks; seeded in {seed_s:.0f}s")
    # In production the worker scans new passages in the background (seed_demo queues it, beat sweeps
    # every 5 min); the queued task was flushed above, so do it here, before the clock starts.
    from tickets.ai.tasks import scan_kb_passages  # the AI wing's door, run in this process

    scan_started = time.perf_counter()
    scanned = scan_kb_passages(limit=None)
    log(f"injection guard scanned {scanned} passages in {time.perf_counter() - scan_started:.0f}s")
    phases = [(f"r{r:g}", r, n) for r, n in zip(args.rates_list, args.counts, strict=True)]
    fixtures = {"warmup": make_probes("warmup", draw_questions(args.warmup, 0.0, rng))}
    for name, _rate, count in phases:
        fixtures[name] = make_probes(name, draw_questions(count, args.off_share, rng))
    log(f"created {sum(len(v) for v in fixtures.values())} chat tickets")
    close_django_connections()

    server = Server(env=env, log_path=work_dir / "server.log")
    worker_env = {**env, "EMBEDDING_CACHE_SIZE": "32", "AI_CACHE_ENABLED": "false"} if args.fresh_texts else env
    worker = Worker(env=worker_env, log_path=work_dir / "worker.log", concurrency=args.concurrency)
    runs: dict[str, dict] = {}
    purged: dict[str, int] = {}
    warm_rounds: list[dict] = []
    started = time.perf_counter()
    try:
        ctx = start_server_and_worker(server, worker, args, broker_url=env["REDIS_URL"])
        if fixtures["warmup"]:
            warm_rounds = warm_up(ctx, fixtures["warmup"], args.warmup_timeout)
        for name, rate, _count in phases:
            if not server.alive() or not worker.alive():
                raise RuntimeError(f"a subprocess died:\n{server.log_tail()}\n{worker.log_tail()}")
            calls_before = fake.request_count if fake else 0
            cache_before = cache_totals()
            runs[name] = run_async(run_phase(ctx, name, fixtures[name], rate, args.drain_timeout))
            runs[name]["llm_calls"] = (fake.request_count - calls_before) if fake else None
            runs[name]["cache"] = cache_delta(cache_before, cache_totals())
            got = sum(1 for p in fixtures[name] if p.reply_wall is not None)
            log(
                f"{name}: {got} of {len(fixtures[name])} answered on the socket; "
                f"waited {runs[name]['drain_wait_s']:.1f}s after the last send; load {runs[name]['load_after']}"
            )
            purged[name] = settle()
            if purged[name]:
                log(f"{name}: purged {purged[name]} tasks still queued")
            time.sleep(2.0)
    finally:
        worker.stop()
        server.stop()
        if fake is not None:
            fake.stop()
    total = time.perf_counter() - started

    import celery
    import uvicorn

    task_runs = worker.task_runs()
    summaries = []
    all_rows = read_back([p for p in fixtures["warmup"] if p.sent_wall is not None])
    warmup = warmup_summary(all_rows, warm_rounds)
    for name, _rate, _count in phases:
        if name not in runs:
            continue
        rows = read_back(fixtures[name])
        all_rows.extend(rows)
        summaries.append(summarise(rows, fixtures[name], runs[name], task_runs, args.concurrency))
        summaries[-1]["purged_after"] = purged.get(name)
        summaries[-1]["cache"] = runs[name].get("cache")
        if fake is not None:
            summaries[-1]["llm"] = llm_share(summaries[-1], runs[name]["llm_calls"], args.llm_delay)
    close_django_connections()
    worker_log = worker.log_findings()
    server_log = server.log_findings()
    notes = observations(summaries, warmup, worker_log, server_log, provider=args.provider)
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "celery": celery.__version__,
        "uvicorn": uvicorn.__version__,
        "cpus": os.cpu_count(),
        "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_start": load_start,
        "load_end": [round(v, 2) for v in os.getloadavg()],
        "provider": args.provider,
        "llm_delay_s": args.llm_delay if fake else None,
        "kb_articles": articles,
        "kb_chunks": chunks,
        "migrate_s": round(migrate_s, 1),
        "seed_s": round(seed_s, 1),
        "bench_seconds": round(total, 1),
        "worker_log": str(worker.log_path),
        "server_log": str(server.log_path),
    }

    print(
        f"\nAI pipeline: message stored → AI reply delivered ({meta['date']}, {meta['cpus']} cores, "
        f"load {load_start}, prefork -c {args.concurrency}, LLM_PROVIDER={args.provider})\n"
    )
    print(tables_markdown(summaries, args.concurrency))
    if fake is not None:
        print("\n" + llm_table(summaries, args.llm_delay))
    print("\n" + cache_table(summaries))
    print("\nNotes:")
    print("\n".join(notes))
    if worker_log["first_traceback"]:
        print("\nFirst traceback in the worker log:\n" + worker_log["first_traceback"])
    print(f"\nworker log: {worker.log_path}; server log: {server.log_path}; benchmark took {total:.0f}s")
    if args.out and summaries:
        heading = SECTION_HEADING_OPENAI if fake is not None else SECTION_HEADING
        docs_update(args.out, heading, docs_section(args, summaries, notes, meta))
    fields = ("outcome", "e2e_ms", "queue_ms", *STAGES, "other_ms", "record_ms", "delivery_ms", "reply_kind")
    payload = {
        "benchmark": "ai_pipeline_message_to_reply",
        "meta": meta,
        "params": {
            "rates": args.rates_list,
            "messages": args.counts,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "off_share": args.off_share,
            "drain_timeout_s": args.drain_timeout,
            "seed": args.seed,
            "provider": args.provider,
            "llm_delay_s": args.llm_delay,
            "fresh_texts": args.fresh_texts,
        },
        "summary": summaries,
        "warmup": warmup,
        "worker_log": {k: v for k, v in worker_log.items() if k != "first_traceback"},
        "server_log": server_log,
        "samples": {name: run["samples"][:: max(1, len(run["samples"]) // 300)] for name, run in runs.items()},
        "message_fields": ["phase", "kind", "topic", *fields],
        "messages": [[r["phase"], r["kind"], r["topic"], *(r.get(f) for f in fields)] for r in all_rows],
    }
    print(json.dumps(payload, separators=(",", ":"), default=str))
    return 0


if __name__ == "__main__":
    run_main(main)
