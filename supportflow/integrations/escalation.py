"""The one escalation announcer: when a ticket is handed to people, its department's address, Slack
and Discord (each when configured) hear of it, each through its own task off the request path."""

from __future__ import annotations

import logging

from django.conf import settings

from supportflow.integrations import tasks as integration_tasks
from tickets import events
from tickets import tasks as ticket_tasks

logger = logging.getLogger(__name__)


async def announce_escalation_on_loop(kind: str, **payload) -> bool:
    """``announce_escalation``'s twin on the event loop: only an escalation is announced, on a thread."""
    return kind != events.TICKET_ESCALATED


def announce_escalation(kind: str, **payload) -> None:
    """``tickets.events`` subscriber. A lost enqueue is logged; the ticket is escalated either way and
    shows in its queue."""
    if kind != events.TICKET_ESCALATED:
        return
    channels = (
        (ticket_tasks.notify_department_of_escalation, True),  # the task checks the department's address
        (integration_tasks.post_escalation_to_slack, settings.SLACK_BOT_TOKEN and settings.SLACK_CHANNEL),
        (integration_tasks.post_escalation_to_discord, settings.DISCORD_WEBHOOK_URL),
    )
    for task, configured in channels:
        if not configured:
            continue
        try:
            task.delay(payload["ticket_id"], payload.get("reason", ""))
        except Exception:
            logger.exception("could not enqueue %s for ticket %s", task.name, payload.get("ticket_id"))
