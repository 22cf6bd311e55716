"""Celery tasks of the tickets app: thin wrappers over services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from tickets import services


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=5,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=60,
    time_limit=90,
)
def sla_sweep() -> int:
    """Flag SLA breaches (beat, every minute). Idempotent: a breach is flagged once."""
    return services.ticket_sla_sweep()
