"""The AI wing's one door: everything outside ``tickets/ai/`` reaches the AI through these tasks.

- ``process_message``: triage and answer (or hand over) one customer message (queue ``ai``). The core
  enqueues it by name on commit (``tickets.tasks.ai_enqueue``), so the core never imports the wing.
- ``recover_stalled``, ``scan_kb_passages``, ``retrain_triage``, ``calibrate_gate``: beat work (queue ``housekeeping``).
- ``preload`` / ``warm_up``: connected to ``worker_init`` (the main process loads the models once, before
  it forks its pool) and ``worker_process_init``, so each worker process has the models (and, on
  an ``ai`` worker, runs one retrieval end to end) before it takes its first task, then announces itself
  as ready (``supportflow.readiness``, shown by ``/readyz``).

The wing leaves through a few named ticket services (``tickets.services``: ``ticket_apply_ai_triage``,
``ai_reply_record``, ``ai_acknowledge``, ``ticket_escalate``, ``ticket_auto_assign``) and announces
its runs on ``tickets.events``.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_init, worker_process_init
from django.conf import settings

from tickets.ai import runs
from tickets.tasks import TRANSIENT

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=TRANSIENT, retry_backoff=2, retry_jitter=True, max_retries=5,
    soft_time_limit=120, time_limit=140, ignore_result=True,
)  # fmt: skip
def process_message(message_id: int) -> str:
    """Triage and answer (or hand over) one customer message. Idempotent: one reply per message.

    Its outcome is in the worker's log and the ``AIDraft``; nobody waits on it, so no result is stored
    (one Redis write less per message)."""
    from tickets.ai.pipeline import process_message as run

    return run(message_id=message_id)


@shared_task(soft_time_limit=60, time_limit=90)
def recover_stalled() -> int:
    """Re-enqueue customer messages the AI never finished (a worker died and its task is not back yet).

    Skipped while tasks wait in the ``ai`` queue: then the worker is behind, not stalled, and an old
    message without a decision is most likely still queued. Re-enqueueing it there only lengthens the
    backlog, and after ``MAX_REQUEUES`` sweeps hands it to a person as "could not process" although the
    AI would answer it (``bench/load_run.py``: once the queue wait passed 3 minutes, the sweep re-queued
    messages that were still waiting)."""
    if ai_queue_waiting():
        return 0
    return runs.ai_requeue_stalled()


def ai_queue_waiting() -> int:
    """Tasks waiting in the broker's ``ai`` queue (0 when the broker cannot say)."""
    from kombu.exceptions import ChannelError

    from supportflow.celery import app

    try:
        with app.connection_for_read() as conn:
            return conn.default_channel.queue_declare(queue="ai", passive=True).message_count
    except ChannelError:  # not declared yet: nothing waits in it
        return 0
    except Exception:
        logger.warning("could not read the length of the ai queue; sweeping anyway", exc_info=True)
        return 0


@shared_task(soft_time_limit=900, time_limit=960)
def retrain_triage() -> int:
    """Nightly: a new local triage model from the seed set and agents' corrections, made active only if
    not worse than the active one on held-out examples (``triage/registry.py``)."""
    from tickets.ai.triage import local as triage_local

    return triage_local.train().version


SCAN_CHUNK = 64  # passages per task: a few seconds of work, so a worker is never tied up for minutes


@shared_task(soft_time_limit=600, time_limit=660)
def scan_kb_passages(limit: int | None = SCAN_CHUNK, *, follow: bool = True) -> int:
    """Run the injection guard over up to ``limit`` knowledge-base passages not scanned yet, before a
    question needs them, and queue the next chunk when there may be more (``follow``): a big import is
    scanned in short tasks that other work can pass between. ``limit=None``: all of them at once, as a
    bench does in its own process before its clock starts."""
    from tickets.ai import passages  # the guard's classifier: only workers that scan load it

    scanned = passages.kb_passages_scan_pending(limit=limit)
    if follow and limit is not None and scanned >= limit:
        scan_kb_passages.apply_async(kwargs={"limit": limit})
    return scanned


@shared_task(soft_time_limit=900, time_limit=960)
def calibrate_gate() -> dict:
    """Every 15 min: recalibrate the confidence gate on the knowledge base when its published articles
    changed (a no-op otherwise), and each queue's threshold from its customers' "No" votes."""
    from tickets.ai.calibration import calibrate_all

    return calibrate_all()


def _load_models() -> None:
    """The embedding model, the structured-output schemas (compiled on first use), the guard and triage
    classifiers: what every pool process needs before its first task."""
    from knowledge import embeddings
    from supportflow import llm
    from tickets.ai import answer, guard
    from tickets.ai.triage import local as triage_local
    from tickets.ai.triage.schema import TriageOut

    embeddings.get_model()
    embeddings.embed(["warm up"])  # the first call also sets up the model's threads and buffers
    llm.warm_up(TriageOut, answer.GeneratedAnswer)
    guard.scan("warm up")  # fits the guard's classifier from its seed set
    triage_local.predict("warm up")  # loads (or, before any training, fits) the triage model


PRELOAD_SCAN_LIMIT = 2000  # passages an ai worker judges before it starts (the rest: the beat's chunks)


@worker_init.connect
def preload(**kwargs) -> None:
    """In the worker's main process, before it forks its pool: load the models once, so every pool
    process — the first ones, and any that replaces one that crashed — starts with them in memory
    (copy-on-write) instead of loading them again while a customer's question waits; an ``ai`` worker
    also has the injection guard judge the passages nobody scanned yet. The database connection this
    used is closed before the fork (the pool processes open their own)."""
    if not getattr(settings, "WORKER_WARM_UP", True):
        return
    try:
        _load_models()
        if _takes_ai_tasks():
            # passages not judged by the injection guard yet (a fresh install, a big import) would be
            # scanned inside the first customers' tasks, a second or more each: judge them now
            from tickets.ai import passages

            passages.kb_passages_scan_pending(limit=PRELOAD_SCAN_LIMIT)
    except Exception:
        logger.warning("worker preload failed; each pool process loads the models itself", exc_info=True)
    finally:
        from django.db import connections

        connections.close_all()


@worker_process_init.connect
def warm_up(**kwargs) -> None:
    """Pay the one-time costs before the first customer waits (a no-op for models ``preload`` already
    loaded in the main process), and on an ``ai`` worker one retrieval end to end, then announce the
    process as ready. Runs in each pool process before it takes a task. A failure here is logged; the
    first task then pays instead."""
    if not getattr(settings, "WORKER_WARM_UP", True):
        return
    takes_ai = _takes_ai_tasks()
    try:
        _load_models()
        if takes_ai:
            from tickets.ai import answer

            # the database connection, the search's first plans, the passage and title vectors: what
            # the first customer would otherwise wait for
            question = "How do I reset my password?"
            answer.answer_local(question, answer.retrieve(question, use_cache=False))
    except Exception:
        logger.warning("worker warm-up failed", exc_info=True)
    logger.info("worker process warm (takes ai tasks: %s)", takes_ai)
    if takes_ai:
        try:
            from supportflow import readiness

            readiness.announce("ai")
        except Exception:
            logger.warning("could not announce the ai worker as ready", exc_info=True)


def _takes_ai_tasks() -> bool:
    """Whether this worker consumes the ``ai`` queue (``-Q`` not given: every queue)."""
    from supportflow.celery import app

    consume_from = app.amqp.queues.consume_from
    return not consume_from or "ai" in consume_from
