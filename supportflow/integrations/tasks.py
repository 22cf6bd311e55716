"""Celery tasks of the integrations (webhooks, Slack, Discord): thin wrappers over their services,
routed to the ``housekeeping`` queue. Each is safe to run twice (see the services)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from supportflow.integrations import discord, slack, webhooks

logger = logging.getLogger(__name__)
TRANSIENT = (OperationalError, InterfaceError)


@shared_task(bind=True, autoretry_for=TRANSIENT, retry_backoff=5, retry_jitter=True, max_retries=5,
             soft_time_limit=60, time_limit=75)  # fmt: skip
def deliver_webhook(self, delivery_id: int) -> str:
    """One attempt; the service says when the next one is due (its own backoff, bounded by
    ``WEBHOOK_MAX_ATTEMPTS``), so the retry count here only guards against a runaway loop."""
    attempt = webhooks.webhook_deliver(delivery_id=delivery_id)
    if attempt.retry_in is not None:
        raise self.retry(countdown=attempt.retry_in, max_retries=settings.WEBHOOK_MAX_ATTEMPTS + 1)
    return attempt.status


@shared_task(soft_time_limit=120, time_limit=150)
def requeue_webhook_deliveries() -> int:
    """Beat (every few minutes, optional): deliveries whose task was lost are enqueued again."""
    return webhooks.webhook_deliveries_requeue()


@shared_task(autoretry_for=(slack.SlackTransientError, *TRANSIENT), retry_backoff=10, retry_jitter=True,
             max_retries=5, soft_time_limit=60, time_limit=75)  # fmt: skip
def post_escalation_to_slack(ticket_id: int, reason: str) -> str:
    return slack.slack_escalation_post(ticket_id=ticket_id, reason=reason)


@shared_task(autoretry_for=(discord.DiscordTransientError, *TRANSIENT), retry_backoff=10, retry_jitter=True,
             max_retries=5, soft_time_limit=60, time_limit=75)  # fmt: skip
def post_escalation_to_discord(ticket_id: int, reason: str) -> str:
    return discord.discord_escalation_post(ticket_id=ticket_id, reason=reason)
