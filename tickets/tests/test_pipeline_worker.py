"""The AI pipeline's hard case with real Celery worker processes: the worker is killed (SIGKILL) in the
middle of an LLM call and a new one started — afterwards there is exactly one reply. (The happy path,
worker → channel layer → the customer's page, is ``test_ai_browser.py``.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from knowledge import services as kb_services
from supportflow.celery import app
from supportflow.llm.fake import FAKE_API_KEY, FakeOpenAI
from tickets import services
from tickets.ai import runs
from tickets.models import AIDraft, Message, Ticket
from tickets.tests.factories import CustomerFactory
from tickets.tests.test_pipeline import ARTICLES

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "My notes are stuck syncing on my Android phone, it says syncing forever"
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_channel_layer")]


@pytest.fixture
def kb(transactional_db):
    for title, slug, body in ARTICLES:
        kb_services.article_save(title=title, slug=slug, status="published", reindex="now", body=body)


def _worker(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "supportflow", "worker", "--pool", "prefork", "-c", "1",
         "--loglevel", "WARNING", "-n", f"killtest-{time.monotonic_ns()}@%h"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=log.open("ab"),
    )  # fmt: skip


def _wait(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


def test_a_worker_killed_mid_task_loses_nothing_and_sends_one_reply(kb, settings, tmp_path):
    app.control.purge()
    db = connection.settings_dict
    with FakeOpenAI() as fake:
        fake.responder = lambda request: (
            {"category": "sync", "priority": "normal", "sentiment": "neutral", "department": "technical",
             "language": "en", "needs_human": False, "needs_human_reason": "", "summary": "sync stuck"}
            if "riage" in str(request.get("response_format"))
            else {"answerable": True, "citations": [1],
                  "answer": "Open Settings → Sync → Reset local cache; notes download again in a few minutes [1]."}
        )  # fmt: skip
        fake.enqueue(content="{}", delay=30)  # the first call hangs: the worker is killed during it
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "supportflow.test_settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "LLM_PROVIDER": "openai",
            "OPENAI_API_KEY": FAKE_API_KEY,
            "OPENAI_BASE_URL": fake.url + "/v1",
            "LLM_TIMEOUT_S": "60",
            "AI_MESSAGE_LOCK_SECONDS": "5",
            "CELERY_VISIBILITY_TIMEOUT": "8",
        }
        log = tmp_path / "worker.log"
        first = _worker(env, log)
        try:
            ticket = services.ticket_create(customer=CustomerFactory(), subject="Sync", body=QUESTION)
            message = ticket.messages.get(seq=1)
            from tickets.ai.tasks import process_message

            process_message.delay(message.pk)
            _wait(lambda: fake.request_count >= 1, 120, "the worker to call the LLM", log)
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        assert not AIDraft.objects.filter(in_reply_to=message).exists()

        second = _worker(env, log)
        try:
            time.sleep(6)  # the dead worker's lock on the message expires
            # Whichever comes first recovers it: this sweep, or the broker redelivering the killed task
            # (visibility timeout 8 s) — then the message is locked or done and the sweep skips it.
            assert runs.ai_requeue_stalled(now=message.created_at + runs.STALLED_AFTER * 2) in (0, 1)
            _wait(
                lambda: AIDraft.objects.filter(in_reply_to=message).exists(),
                120,
                "the reply after restart",
                log,
            )
            time.sleep(10)  # the broker redelivers the killed task too (visibility timeout 8 s): a no-op
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(20)

    ticket = Ticket.objects.get(pk=ticket.pk)
    replies = Message.objects.filter(ticket=ticket, author_kind="ai")
    assert replies.count() == 1, list(replies.values_list("body", flat=True))
    assert "Reset local cache" in replies.get().body
