"""Celery tasks of the tickets app: thin wrappers over services.

Queues: ``ai`` (a customer waits on these) and ``housekeeping`` (beat work), so a slow sweep never
delays an answer when each has its own workers. Time limits stay far below the broker's visibility
timeout (1 h), and ``acks_late`` + reject-on-worker-lost (settings) requeue a task whose worker died.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from tickets import services

logger = logging.getLogger(__name__)
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


@shared_task(
    autoretry_for=TRANSIENT, retry_backoff=2, retry_jitter=True, max_retries=5,
    soft_time_limit=120, time_limit=140,
)  # fmt: skip
def process_message(message_id: int) -> str:
    """Triage and answer (or hand over) one customer message. Idempotent: one reply per message."""
    from tickets.ai.pipeline import process_message as run

    return run(message_id=message_id)


@shared_task(
    autoretry_for=(OperationalError,), retry_backoff=5, retry_jitter=True, max_retries=3,
    soft_time_limit=60, time_limit=90,
)  # fmt: skip
def sla_sweep() -> int:
    """Flag SLA breaches (beat, every minute). Idempotent: a breach is flagged once."""
    return services.ticket_sla_sweep()


@shared_task(soft_time_limit=60, time_limit=90)
def ai_recover_stalled() -> int:
    """Re-enqueue customer messages the AI never finished (a worker died and its task is not back yet).

    Skipped while tasks wait in the ``ai`` queue: then the worker is behind, not stalled, and an old
    message without a decision is most likely still queued. Re-enqueueing it there only lengthens the
    backlog, and after ``MAX_REQUEUES`` sweeps hands it to a person as "could not process" although the
    AI would answer it (``bench/load_run.py``: once the queue wait passed 3 minutes, the sweep re-queued
    messages that were still waiting)."""
    if _ai_queue_waiting():
        return 0
    return services.ai_requeue_stalled()


def _ai_queue_waiting() -> int:
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


@shared_task(soft_time_limit=120, time_limit=150)
def auto_close_resolved() -> int:
    """Close tickets resolved more than ``AUTO_CLOSE_RESOLVED_DAYS`` ago."""
    return services.ticket_auto_close()


@shared_task(soft_time_limit=900, time_limit=960)
def retrain_triage() -> int:
    """Nightly: a new local triage model from the seed set and agents' corrections."""
    from tickets.ai.triage import local as triage_local

    return triage_local.train().version


@shared_task(soft_time_limit=600, time_limit=660)
def retention_purge() -> dict:
    """Delete what the retention settings say is no longer kept (AI run details, closed tickets' drafts)."""
    return services.retention_purge()


@shared_task(soft_time_limit=600, time_limit=660)
def scan_kb_passages() -> int:
    """Run the injection guard over knowledge-base passages not scanned yet, before a question needs them."""
    return services.kb_passages_scan_pending()


def enqueue_on_customer_message(kind: str, **payload) -> None:
    """On-commit hook: every stored customer message goes to the AI pipeline.

    If the broker is down the message is still stored; ``ai_recover_stalled`` enqueues it later.
    """
    if kind not in {"message.created", "ticket.created"} or not getattr(settings, "FEATURE_AI_PIPELINE", True):
        return
    if kind == "message.created":  # a ticket's first message comes with ticket.created
        message = payload.get("message")
        if message is None or message.author_kind != "customer" or message.is_internal:
            return
        message_id = message.pk
    else:
        message_id = payload["message_id"]
    try:
        process_message.delay(message_id)
    except Exception:
        logger.exception("could not enqueue message %s for the AI (the stalled-message sweep will)", message_id)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, retry_jitter=True, max_retries=5, soft_time_limit=60)
def notify_department_of_escalation(ticket_id: int, reason: str) -> bool:
    """Email the ticket's department (its address in the console) that a ticket needs a person."""
    return services.department_notify_escalation(ticket_id=ticket_id, reason=reason)


def notify_on_escalation(kind: str, **payload) -> None:
    """On-commit hook: an escalation is announced to the department's address, off the request path."""
    if kind != "ticket.escalated":
        return
    try:
        notify_department_of_escalation.delay(payload["ticket_id"], payload.get("reason", ""))
    except Exception:
        logger.exception("could not enqueue the escalation notice for ticket %s", payload.get("ticket_id"))


@shared_task(
    autoretry_for=(OSError, *TRANSIENT), retry_backoff=30, retry_jitter=True, max_retries=6,
    soft_time_limit=60, time_limit=90,
)  # fmt: skip
def send_email_reply(message_id: int) -> str:
    """Send an agent's or the AI's reply on an email ticket to the customer, threaded. Idempotent."""
    from tickets.email.outbound import email_reply_send

    return email_reply_send(message_id=message_id)


def send_email_on_reply(kind: str, **payload) -> None:
    """On-commit hook: a public agent/AI message on an email-channel ticket goes out by email."""
    message = payload.get("message") if kind == "message.created" else None
    if message is None or message.is_internal or message.author_kind not in ("agent", "ai"):
        return
    if message.ticket.channel != "email":
        return
    try:
        send_email_reply.delay(message.pk)
    except Exception:
        logger.exception("could not enqueue the email for message %s", message.pk)


@shared_task(soft_time_limit=240, time_limit=300)
def poll_imap() -> dict:
    """Fetch unseen mail from the IMAP_URL mailbox into tickets (beat, every minute; no-op when unset)."""
    if not settings.IMAP_URL:
        return {"skipped": "IMAP_URL is not set"}
    from tickets.email.imap import imap_poll

    return imap_poll()
