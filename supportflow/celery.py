"""The Celery app. Configuration lives in settings (``CELERY_*``); tasks live in each app's tasks.py. Workers and
beat log through ``settings.LOGGING``, and a task carries the log context (request id, ticket) of whoever
enqueued it in its message headers (see ``supportflow.logs``)."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_init,
)

from supportflow.logs import clean_token, log_context, new_request_id, pop_context, push_context

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportflow.settings")

app = Celery("supportflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _warm_up(**kwargs) -> None:
    """Pay the one-time costs before the first customer waits: the embedding model, the structured-output
    schemas (compiled on first use), the guard and triage classifiers. Runs in each pool process before
    it takes a task. A failure here is logged; the first task then pays instead."""
    import logging

    from django.conf import settings

    if not getattr(settings, "WORKER_WARM_UP", True):
        return
    try:
        from knowledge import embeddings
        from supportflow import llm
        from tickets.ai import answer, guard, pipeline
        from tickets.ai.triage import local as triage_local

        embeddings.get_model()
        llm.warm_up(pipeline.TriageOut, answer.GeneratedAnswer)
        guard.scan("warm up")  # fits the guard's classifier from its seed set
        triage_local.predict("warm up")  # loads (or, before any training, fits) the triage model
    except Exception:
        logging.getLogger(__name__).warning("worker warm-up failed", exc_info=True)


@setup_logging.connect
def _use_django_logging(**kwargs) -> None:
    """Workers and beat log through ``settings.LOGGING`` (JSON or plain, with the task context) instead
    of Celery's own format; the level is ``LOG_LEVEL``. Connecting this signal also stops Celery from
    replacing the root logger's handlers."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


# Header names carrying the log context from the process that enqueues a task to the worker.
REQUEST_ID_HEADER = "sf_request_id"
TICKET_HEADER = "sf_ticket"


@before_task_publish.connect
def _carry_log_context(headers: dict | None = None, **kwargs) -> None:
    if headers is None:
        return
    context = log_context()
    if context.get("request_id"):
        headers.setdefault(REQUEST_ID_HEADER, context["request_id"])
    if context.get("ticket"):
        headers.setdefault(TICKET_HEADER, context["ticket"])


_task_tokens: dict[str, list] = {}


@task_prerun.connect
def _enter_task_context(task_id: str | None = None, task=None, **kwargs) -> None:
    """The task's log context: its id and name, and the request id and ticket it was enqueued with
    (a fresh request id when it has none, e.g. from beat, so its own log lines still group). Restored
    by ``task_postrun``, so nothing carries over to the worker's next task."""
    request = getattr(task, "request", None)
    current = log_context()  # empty in a worker; a task run in-process (``apply()``) keeps its caller's
    request_id = clean_token(getattr(request, REQUEST_ID_HEADER, None)) or current.get("request_id") or new_request_id()
    ticket = clean_token(getattr(request, TICKET_HEADER, None)) or current.get("ticket")
    if task_id:
        _task_tokens[task_id] = push_context(
            {"request_id": request_id, "ticket": ticket, "task_id": task_id, "task_name": getattr(task, "name", "")}
        )


@task_postrun.connect
def _leave_task_context(task_id: str | None = None, **kwargs) -> None:
    tokens = _task_tokens.pop(task_id, None) if task_id else None
    if tokens:
        pop_context(tokens)
