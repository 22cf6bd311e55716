"""The Celery app. Configuration lives in settings (``CELERY_*``); tasks live in each app's tasks.py."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init

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
        from tickets.ai import answer, guard, pipeline, triage_local

        embeddings.get_model()
        llm.warm_up(pipeline.TriageOut, answer.GeneratedAnswer)
        guard.scan("warm up")  # fits the guard's classifier from its seed set
        triage_local.predict("warm up")  # loads (or, before any training, fits) the triage model
    except Exception:
        logging.getLogger(__name__).warning("worker warm-up failed", exc_info=True)
