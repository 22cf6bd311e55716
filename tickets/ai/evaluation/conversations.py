"""Scripted multi-turn conversations replayed through the real pipeline (``manage.py eval_conversations``).

The set (``data/conversations.jsonl`` by default, or every ``*.jsonl`` of ``--data DIR``) is written by the
team against the demo knowledge base: one conversation per line, ``{"id", "category", "part": "dev" |
"held" | "fresh", "turns": [{"say", "expect", "articles"?, "language"?, "while_you_wait"?}]}``. Each turn says what a
good human agent would do:

- ``answer``: an answer from the knowledge base whose first source is one of ``articles`` (slugs);
- ``clarify``: a clarifying question; ``no_article``: a reply that cites nothing (greeting, thanks, small
  talk, "that is not something I can help with");
- ``handover``: the assistant stops and a person takes it (no reply sent, the ticket is escalated);
- ``not_handover``: any reply that is sent.

Parts: ``dev`` is what the team iterates on; ``held`` was held back until a round of changes was done;
``fresh`` was written after the second round (2026-12-06 afternoon) and replayed once, as a check of what the
tuning on ``dev`` did to conversations nobody had seen.

Optional checks: ``language`` (the language the assistant chose to speak in) and ``while_you_wait`` (the
answer says it is given while a person is on the way).

Each conversation is a real chat ticket: the first turn through ``ticket_create``, the next ones through
``message_create``, so ``process_message`` is enqueued on commit as in production and run by a Celery
worker started in this process on a queue of its own (a worker of ``make run`` on the same broker never
sees these tasks). A turn is judged once the worker recorded its decision (``AIDraft``) and let go of the
message; only then is the next turn sent. The tickets and their customer are deleted afterwards. The
demo articles are loaded into the default namespace when they are missing; the departments and triage
model come from ``seed_demo``.

Providers: ``local``, and ``openai`` against an OpenAI-compatible server started in this process
(``supportflow.llm.fake``) that triages as the local classifier does and answers with the opening
sentences of the first passage it is given, citing it — a plain, grounded model.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.test import override_settings

from knowledge.models import DEFAULT_NAMESPACE, Article
from knowledge.services import ingest_files
from supportflow.evaluation import DatasetError, EvaluationError, read_jsonl, share
from supportflow.llm.fake import FakeOpenAI, fake_openai_settings
from tickets import services
from tickets.ai import passages, phrases, runs
from tickets.ai.evaluation.injection import DEMO_KB, require_demo_setup
from tickets.ai.evaluation.obedient_model import _blocks, honest_triage
from tickets.models import AIDraft, Customer, Ticket

DATA = Path(__file__).resolve().parent / "data"
OUTCOMES = ("answer", "clarify", "no_article", "handover", "not_handover")
PROVIDERS = ("local", "openai")
PARTS = ("dev", "held", "fresh")
TURN_TIMEOUT_S = 180.0
TASK = "tickets.ai.tasks.process_message"
WORKER_START_S = 180.0
ROOT = Path(__file__).resolve().parents[3]


# --- the set ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    say: str
    expect: str
    articles: tuple[str, ...] = ()
    language: str = ""
    while_you_wait: bool = False


@dataclass(frozen=True)
class Conversation:
    id: str
    category: str
    part: str
    turns: tuple[Turn, ...]


def load(data: Path | None = None) -> list[Conversation]:
    """The conversations of ``data`` (a folder of ``*.jsonl`` or one file; default: the in-repo set)."""
    path = Path(data) if data else DATA / "conversations.jsonl"
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise DatasetError(f"--data {path}: no conversations (*.jsonl) there.")
    out, seen = [], set()
    for file in files:
        for n, row in enumerate(read_jsonl(file), start=1):
            where = f"{file.name} line {n}"
            try:
                turns = tuple(
                    Turn(
                        say=t["say"],
                        expect=t["expect"],
                        articles=tuple(t.get("articles", ())),
                        language=t.get("language", ""),
                        while_you_wait=bool(t.get("while_you_wait")),
                    )
                    for t in row["turns"]
                )
                conversation = Conversation(row["id"], row["category"], row.get("part", "dev"), turns)
            except (KeyError, TypeError) as exc:
                raise DatasetError(f"{where}: missing {exc}") from exc
            bad = [t.expect for t in turns if t.expect not in OUTCOMES or (t.expect == "answer") != bool(t.articles)]
            if not turns or bad or conversation.part not in PARTS or conversation.id in seen:
                raise DatasetError(f"{where}: a turn's expect is one of {OUTCOMES} (answer with articles), the part "
                                   f"one of {PARTS}, the id unique.")  # fmt: skip
            seen.add(conversation.id)
            out.append(conversation)
    return out


# --- judging one turn -------------------------------------------------------------------------------------

_WAIT_OPENERS = tuple(phrases.table()["while_you_wait"].values())


@dataclass
class Got:
    """What the assistant did with one turn."""

    act: str = ""
    reply: str = ""  # answer | act | clarify, or "" when nothing was sent
    sent: bool = False
    cited: list[str] = field(default_factory=list)
    escalated: bool = False
    language: str = ""
    body: str = ""
    triggers: list[str] = field(default_factory=list)
    confidence: float = 0.0

    @property
    def outcome(self) -> str:
        if not self.sent:
            return "handover"
        if self.reply == "answer":
            return "answer"
        return "clarify" if self.reply == "clarify" else "no_article"


def judge(turn: Turn, got: Got) -> list[str]:
    """What is wrong with ``got`` for ``turn`` (empty: right)."""
    wrong = []
    if turn.expect == "answer":
        if got.outcome != "answer":
            wrong.append(f"expected an answer, got {got.outcome}")
        elif not got.cited or got.cited[0] not in turn.articles:
            wrong.append(f"answered from {got.cited[:2]}, expected one of {list(turn.articles)}")
    elif turn.expect == "no_article":
        if not got.sent or got.cited:
            wrong.append(f"expected a reply citing nothing, got {got.outcome} citing {got.cited[:3]}")
    elif turn.expect == "not_handover":
        if not got.sent:
            wrong.append("expected no handover, got handover")
    elif got.outcome != turn.expect:
        wrong.append(f"expected {turn.expect}, got {got.outcome}")
    if turn.language and got.sent and got.language != turn.language:
        wrong.append(f"spoke {got.language or '?'}, expected {turn.language}")
    if turn.while_you_wait and got.sent and not got.body.startswith(_WAIT_OPENERS):
        wrong.append("the answer does not say it is given while a person is on the way")
    return wrong


# --- the worker and the providers ----------------------------------------------------------------------------


@contextmanager
def private_worker(env: dict[str, str], log_file: Path) -> Iterator[str]:
    """A real Celery worker process (solo pool) consuming a queue of its own, with ``process_message``
    routed there while it runs. ``env``: what the worker's settings read (provider, endpoint)."""
    from supportflow.celery import app

    queue = f"eval-conversations-{uuid.uuid4().hex[:8]}"
    name = f"{queue}@%h"
    router = app.amqp.router

    def route(name, args, kwargs, options, task=None, **kw):
        return {"queue": queue} if name == TASK else None

    # prefork (as ``make run``): with the solo pool the task waited forever on its first pooled connection
    command = [sys.executable, "-m", "celery", "-A", "supportflow", "worker", "--pool", "prefork", "-c", "1",
               "-Q", queue, "-n", name, "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]  # fmt: skip
    with log_file.open("ab") as log:
        environment = {**os.environ, **_same_database(), **env}
        worker = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=log)  # noqa: S603
    router.routes.insert(0, route)
    try:
        deadline = time.monotonic() + WORKER_START_S
        while not app.control.ping(destination=[name.replace("%h", socket.gethostname())], timeout=1.0):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise EvaluationError(f"the Celery worker did not start; see {log_file}")
        yield queue
    finally:
        router.routes.remove(route)
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _same_database() -> dict[str, str]:
    """The worker's settings and database: this process's (a test's database too)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return {
        "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE or os.environ.get("DJANGO_SETTINGS_MODULE", ""),
        "DATABASE_URL": f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }


class GroundedModel:
    """The fake endpoint's model: triages as the local classifier does and answers with the first passage's
    opening sentences (citing it), or says it cannot answer when it got no passage."""

    sentences = re.compile(r"(?<=[.!?])\s+")

    def __call__(self, request: dict) -> dict:
        schema = (request.get("response_format") or {}).get("json_schema", {}).get("name", "")
        system, text, given = _blocks(request)
        if "riage" in schema:
            return honest_triage(text, re.findall(r"^- ([\w-]+): ", system, re.MULTILINE))
        if not given:
            return {"answerable": False, "answer": "", "citations": []}
        lines = [ln for ln in given[0].splitlines()[1:] if ln.strip() and not ln.lstrip().startswith("#")]
        opening = " ".join(self.sentences.split(" ".join(lines))[:2])
        return {"answerable": bool(opening), "answer": f"{opening} [1]" if opening else "", "citations": [1]}


@contextmanager
def provider_settings(provider: str) -> Iterator[dict[str, str]]:
    """The worker's environment for ``provider``: for ``openai``, the fake endpoint (started here)."""
    with ExitStack() as stack:
        env = {"LLM_PROVIDER": "local", "OPENAI_API_KEY": ""}
        fake = None
        if provider == "openai":
            fake = stack.enter_context(FakeOpenAI())
            fake.responder = GroundedModel()
            values = SimpleNamespace(REDIS_URL=settings.REDIS_URL)
            fake_openai_settings(fake, values)
            env = {"LLM_PROVIDER": "openai", "OPENAI_API_KEY": values.OPENAI_API_KEY,
                   "OPENAI_BASE_URL": values.OPENAI_BASE_URL, "LLM_TIMEOUT_S": "30"}  # fmt: skip
        yield env
        if fake is not None:
            env["endpoint_requests"] = str(fake.request_count)


# --- the replay ---------------------------------------------------------------------------------------------


def demo_kb_ensure(kb: Path = DEMO_KB, *, log: Callable[[str], None]) -> dict[int, str]:
    """The articles of ``kb`` in the default namespace (loaded when missing), scanned; ``{article id: slug}``."""
    files = sorted(Path(kb).glob("*.md"))
    present = set(Article.objects.filter(namespace=DEFAULT_NAMESPACE).values_list("slug", flat=True))
    missing = [f for f in files if f.stem not in present]
    if missing:
        log(f"Loading {len(missing)} demo articles into the default namespace…")
        ingest_files(((f.name, f.read_bytes()) for f in missing), default_status="published", source="written")
    passages.kb_passages_scan_pending(limit=None)
    return dict(Article.objects.filter(namespace=DEFAULT_NAMESPACE).values_list("pk", "slug"))


def _decided(message_id: int, timeout: float) -> AIDraft:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        draft = AIDraft.objects.filter(in_reply_to_id=message_id).select_related("sent_message").first()
        if draft is not None and not runs.message_locked(message_id):
            return draft
        time.sleep(0.1)
    raise EvaluationError(f"no decision on message {message_id} after {timeout:.0f} s: is the worker stuck?")


def replay(conversation: Conversation, *, customer: Customer, slugs: dict[int, str]) -> list[tuple[Got, list[str]]]:
    ticket = None
    out = []
    for turn in conversation.turns:
        if ticket is None:
            ticket = services.ticket_create(customer=customer, subject="", body=turn.say, channel=Ticket.Channel.CHAT)
            message = ticket.messages.get(seq=1)
        else:
            message = services.message_create(ticket=ticket, author_kind="customer", body=turn.say)
        draft = _decided(message.pk, TURN_TIMEOUT_S)
        ticket.refresh_from_db()
        sent = draft.sent_message
        got = Got(
            act=draft.gate.get("act", ""),
            reply=draft.gate.get("reply", "") if sent else "",
            sent=sent is not None,
            cited=[slugs.get(c.get("article_id"), "?") for c in (sent.citations if sent else draft.citations) or []],
            escalated=ticket.escalated,
            language=(ticket.conversation or {}).get("language", ""),
            body=sent.body if sent else "",
            triggers=[t.get("rule", "") for t in draft.gate.get("triggers", [])],
            confidence=round(draft.confidence, 3),
        )
        out.append((got, judge(turn, got)))
    return out


def _figures(rows: list[tuple[Conversation, list[tuple[Got, list[str]]]]]) -> dict:
    turns = [wrong for _, judged in rows for _, wrong in judged]
    return {
        "conversations": len(rows),
        "conversations_fully_right": share(sum(all(not w for _, w in judged) for _, judged in rows), len(rows)),
        "turns": len(turns),
        "turns_right": share(sum(not w for w in turns), len(turns)),
    }


def run_provider(provider: str, conversations: Sequence[Conversation], *, slugs, log) -> dict:
    rows = []
    log_file = Path(settings.DATA_DIR) / f"eval-conversations-worker-{provider}.log"
    log(f"  worker log: {log_file}")
    customer = services.customer_get_or_create(name="Sam Example")
    try:
        with (
            provider_settings(provider) as env,
            override_settings(FEATURE_AI_PIPELINE=True),
            private_worker(env, log_file) as _,
        ):
            started = time.perf_counter()
            for n, conversation in enumerate(conversations, start=1):
                rows.append((conversation, replay(conversation, customer=customer, slugs=slugs)))
                if n % 10 == 0 or n == len(conversations):
                    log(f"  [{provider}] {n}/{len(conversations)} ({time.perf_counter() - started:.0f} s)")
    finally:
        Ticket.objects.filter(customer=customer).delete()
        customer.delete()
    result = {"all": _figures(rows), "endpoint_requests": int(env.get("endpoint_requests", 0))}
    for part in PARTS:
        if part_rows := [r for r in rows if r[0].part == part]:
            result[part] = _figures(part_rows)
    result["by_category"] = {
        category: _figures([r for r in rows if r[0].category == category])
        for category in sorted({c.category for c, _ in rows})
    }
    result["failures"] = [
        {
            "conversation": c.id,
            "part": c.part,
            "turn": i,
            "say": turn.say,
            "expected": turn.expect + (f" {list(turn.articles)}" if turn.articles else ""),
            "got": {
                "act": got.act,
                "reply": got.reply or "none",
                "cited": got.cited[:3],
                "escalated": got.escalated,
                "confidence": got.confidence,
                "triggers": got.triggers,
            },
            "wrong": wrong,
        }
        for c, judged in rows
        for i, (turn, (got, wrong)) in enumerate(zip(c.turns, judged, strict=True), start=1)
        if wrong
    ]
    return result


def run(
    data: Path | None,
    *,
    providers: Sequence[str] = ("local",),
    parts: Sequence[str] = PARTS,
    limit: int | None = None,
    only: Sequence[str] = (),
    kb: Path = DEMO_KB,
    log: Callable[[str], None],
) -> dict:
    """Replay the set with each provider; figures overall, per part, per category, and the failures."""
    if not providers or set(providers) - set(PROVIDERS):
        raise EvaluationError(f"--provider: one of {PROVIDERS} or all.")
    conversations = [c for c in load(data) if c.part in parts and (not only or c.id in only)][:limit]
    if not conversations:
        raise EvaluationError("No conversation left to replay (check --only / --part).")
    require_demo_setup()
    slugs = demo_kb_ensure(kb, log=log)
    started = time.perf_counter()
    results = {}
    for provider in providers:
        log(f"Replaying {len(conversations)} conversations with the {provider} provider…")
        results[provider] = run_provider(provider, conversations, slugs=slugs, log=log)
    return {
        "evaluation": "conversations",
        "data": str(data or DATA / "conversations.jsonl"),
        "set": {
            "conversations": len(conversations),
            "turns": sum(len(c.turns) for c in conversations),
            "by_part": dict(Counter(c.part for c in conversations)),
            "by_category": dict(sorted(Counter(c.category for c in conversations).items())),
        },
        "results": results,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.perf_counter() - started, 1),
    }


def summary_lines(result: dict) -> list[str]:
    lines = [f"Conversations: {result['set']['conversations']} ({result['set']['by_part']}), "
             f"{result['set']['turns']} turns"]  # fmt: skip
    for provider, r in result["results"].items():
        for part in ("all", *PARTS):
            if part in r:
                f = r[part]
                lines.append(f"  {provider:<6} {part:<4} fully right {f['conversations_fully_right']:.1%} of "
                             f"{f['conversations']}, turns right {f['turns_right']:.1%} of {f['turns']}")  # fmt: skip
        for category, f in r["by_category"].items():
            lines.append(f"    {category:<14} {f['conversations_fully_right']:.0%} of {f['conversations']}")
        for failure in r["failures"]:
            wrong = "; ".join(failure["wrong"])
            lines.append(f"  ✗ {provider} {failure['conversation']} turn {failure['turn']} "
                         f"({failure['say'][:60]!r}): {wrong} — got {failure['got']}")  # fmt: skip
    return lines
