"""Celery tasks of the tickets core: thin wrappers over services, and the two enqueues the services
schedule on commit.

Queues: ``ai`` (a customer waits on these) and ``housekeeping`` (beat work), so a slow sweep never
delays an answer when each has its own workers. Time limits stay far below the broker's visibility
timeout (1 h), and ``acks_late`` + reject-on-worker-lost (settings) requeue a task whose worker died.

The AI wing's own tasks live behind its door, ``tickets.ai.tasks``; the core never imports the wing,
so it enqueues a customer message there by the task's registered name (``AI_PROCESS_MESSAGE``).
"""

from __future__ import annotations

import functools
import logging
import os
import threading

from celery import current_app, shared_task, signals
from celery.signals import worker_process_init
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction

from tickets import services

logger = logging.getLogger(__name__)
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)

AI_PROCESS_MESSAGE = "tickets.ai.tasks.process_message"  # the AI wing's door (tickets/ai/tasks.py)


@worker_process_init.connect
def _realtime_own_event_loop(**kwargs) -> None:
    """Worker processes send live updates from one long-lived event loop (``realtime.use_own_event_loop``)."""
    from tickets import realtime

    realtime.use_own_event_loop()


def ai_enqueue(message_id: int) -> None:
    """Hand a stored customer message to the AI wing. If the broker is down the message is still
    stored; the AI's stalled-message sweep enqueues it later."""
    if not getattr(settings, "FEATURE_AI_PIPELINE", True):
        return
    try:
        # ignore_result: the task stores none, and without it the sender subscribes to the task's result
        # channel in Redis on every send (Celery's result consumer), for nothing
        current_app.send_task(AI_PROCESS_MESSAGE, args=[message_id], ignore_result=True)
    except Exception:
        logger.exception("could not enqueue message %s for the AI (the stalled-message sweep will)", message_id)


async def ai_enqueue_async(message_id: int) -> bool:
    """``ai_enqueue`` from the event loop (the chat consumer's hot path): the same task message, pushed
    with one LPUSH on ``supportflow.aio``'s Redis client instead of Celery's producer on a thread.

    Why: ``send_task`` costs about 1.2 ms of CPU per message in the web process (routing, options, a new
    Redis client object per publish, a declare) — measured by ``chat_bench.py --ablate ai`` as the largest
    single part of a chat message's work, and on a thread it competes with the event loop for the GIL.
    The message is Celery's own (``app.amqp.create_task_message``, protocol 2) in kombu's Redis envelope
    (``ai_task_envelope``); ``tests/test_ai_enqueue.py`` checks it against one Celery publishes and has a
    real worker run it. False when it could not be pushed (a broker URL that is not Redis, Redis down):
    the caller falls back to ``ai_enqueue``, and failing that the stalled-message sweep enqueues it."""
    if not getattr(settings, "FEATURE_AI_PIPELINE", True):
        return True
    from supportflow import aio

    try:
        key, envelope = ai_task_envelope(message_id)
        await aio.redis(settings.REDIS_BROKER_URL).lpush(key, envelope)
    except Exception:
        logger.warning("could not push message %s to the ai queue from the loop", message_id, exc_info=True)
        return False
    return True


def ai_task_envelope(message_id: int) -> tuple[str, str]:
    """The Redis list and the JSON of ``process_message(message_id)`` as Celery would publish it to the
    ``ai`` queue: the anonymous exchange with the queue's name as the routing key (what Celery does for a
    direct queue), persistent, priority 0, the body base64-encoded (kombu's Redis channel).

    Built from ``_ai_message_parts``, Celery's own message made once per process and thread, with this
    message's ids and arguments put in: making it whole for every message (``create_task_message``, the
    app's proxies, two more uuids) was half of the enqueue's CPU on the chat's event loop."""
    import base64
    import uuid

    from celery.utils.saferepr import saferepr
    from kombu.serialization import dumps
    from kombu.utils.json import dumps as json_dumps

    queue, headers, properties, embed, serializer = _ai_message_parts(os.getpid(), threading.get_ident())
    task_id = str(uuid.uuid4())
    args = [message_id]
    headers = {**headers, "id": task_id, "root_id": task_id, "argsrepr": saferepr(args)}
    properties = {**properties, "correlation_id": task_id}
    body = (args, {}, embed)
    # what Celery's producer announces before it publishes: our handler adds the log context's headers
    # (supportflow.celery, request id and ticket), any other receiver sees what it would see from Celery
    signals.before_task_publish.send(
        sender=AI_PROCESS_MESSAGE,
        body=body,
        exchange="",
        routing_key=queue,
        headers=headers,
        properties=properties,
        declare=[],
        retry_policy=None,
    )
    content_type, content_encoding, data = dumps(body, serializer=serializer)
    data = data.encode(content_encoding) if isinstance(data, str) else data
    envelope = {
        "body": base64.b64encode(data).decode("ascii"),
        "content-encoding": content_encoding,
        "content-type": content_type,
        "headers": headers,
        "properties": {
            **properties,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return queue, json_dumps(envelope)


@functools.lru_cache(maxsize=16)
def _ai_message_parts(pid: int, thread: int) -> tuple[str, dict, dict, dict, str]:
    """What Celery's ``process_message`` task message holds whatever the message: the queue, the headers
    and properties but for the ids (the origin names this process, ``reply_to`` this thread: hence the
    key), the body's embed (no callbacks or chain) and the serializer."""
    app = current_app
    queue, time_limit, soft_time_limit = _ai_route()
    headers, properties, body, _sent_event = app.amqp.create_task_message(
        "",
        AI_PROCESS_MESSAGE,
        [0],
        {},
        reply_to=app.thread_oid,
        time_limit=time_limit,
        soft_time_limit=soft_time_limit,
        create_sent_event=False,
        ignore_result=True,
    )
    return queue, headers, properties, body[2], app.conf.task_serializer


@functools.cache
def _ai_route() -> tuple[str, int | None, int | None]:
    """The task's queue (the routes) and its own time limits. ``app.tasks`` finalizes the app as a worker's
    is; ``send_task`` applies the limits only from a finalized registry, the worker applies them either way."""
    app = current_app
    task = app.tasks[AI_PROCESS_MESSAGE]
    queue = app.amqp.router.route({}, AI_PROCESS_MESSAGE, None, None, task)["queue"].name
    return queue, task.time_limit, task.soft_time_limit


def ai_enqueue_on_commit(*, message_id: int) -> None:
    transaction.on_commit(lambda: ai_enqueue(message_id))


def _email_task_on_commit(task_name: str, object_id: int, *, countdown: int = 0) -> None:
    def enqueue() -> None:
        from tickets.email import tasks as email_tasks

        try:
            getattr(email_tasks, task_name).apply_async(args=[object_id], countdown=countdown or None)
        except Exception:
            logger.exception("could not enqueue %s for %s", task_name, object_id)

    transaction.on_commit(enqueue)


def email_reply_on_commit(*, message_id: int) -> None:
    """A public reply that goes out by email (``services.message_email_kind``), once committed."""
    _email_task_on_commit("send_email_reply", message_id)


def csat_survey_on_commit(*, ticket_id: int) -> None:
    """An email or API ticket was resolved: its customer is asked for a rating by email, after
    ``CSAT_SURVEY_DELAY_SECONDS`` — the resolving reply goes first, and a ticket reopened meanwhile is not
    surveyed (the task checks). Kept far below the broker's visibility timeout (1 h), which would rerun it."""
    delay = min(max(0, settings.CSAT_SURVEY_DELAY_SECONDS), 45 * 60)
    _email_task_on_commit("send_csat_survey", ticket_id, countdown=delay)


def handover_ack_on_commit(*, ticket_id: int) -> None:
    """An email ticket was handed to a person: its customer is told by email when one will reply."""
    _email_task_on_commit("send_handover_ack", ticket_id)


@shared_task(
    autoretry_for=(OperationalError,), retry_backoff=5, retry_jitter=True, max_retries=3,
    soft_time_limit=60, time_limit=90,
)  # fmt: skip
def sla_sweep() -> int:
    """Flag SLA breaches (beat, every minute). Idempotent: a breach is flagged once."""
    return services.ticket_sla_sweep()


@shared_task(soft_time_limit=120, time_limit=150)
def auto_close_resolved() -> int:
    """Close tickets resolved more than ``AUTO_CLOSE_RESOLVED_DAYS`` ago."""
    return services.ticket_auto_close()


@shared_task(soft_time_limit=600, time_limit=660)
def retention_purge() -> dict:
    """Delete what the retention settings say is no longer kept (AI run details, closed tickets' drafts)."""
    return services.retention_purge()


@shared_task(autoretry_for=(OSError,), retry_backoff=30, retry_jitter=True, max_retries=5, soft_time_limit=60)
def notify_department_of_escalation(ticket_id: int, reason: str) -> bool:
    """Email the ticket's department (its address in the console) that a ticket needs a person."""
    return services.department_notify_escalation(ticket_id=ticket_id, reason=reason)
