"""The email wing's tasks: send a reply, a handover acknowledgement, a rating request, poll the IMAP mailbox.
Thin wrappers over its services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from tickets.tasks import TRANSIENT


@shared_task(
    autoretry_for=(OSError, *TRANSIENT), retry_backoff=30, retry_jitter=True, max_retries=6,
    soft_time_limit=60, time_limit=90,
)  # fmt: skip
def send_email_reply(message_id: int) -> str:
    """Send an agent's or the AI's reply on an email ticket to the customer, threaded. Idempotent."""
    from tickets.email.outbound import email_reply_send

    return email_reply_send(message_id=message_id)


@shared_task(
    autoretry_for=(OSError, *TRANSIENT), retry_backoff=30, retry_jitter=True, max_retries=6,
    soft_time_limit=60, time_limit=90,
)  # fmt: skip
def send_csat_survey(ticket_id: int) -> str:
    """Email the rating request of a resolved email/API ticket to its customer. Once per ticket."""
    from tickets.email.surveys import csat_survey_send

    return csat_survey_send(ticket_id=ticket_id)


@shared_task(
    autoretry_for=(OSError, *TRANSIENT), retry_backoff=30, retry_jitter=True, max_retries=6,
    soft_time_limit=60, time_limit=90,
)  # fmt: skip
def send_handover_ack(ticket_id: int) -> str:
    """Tell an email ticket's customer that a person has it and when they will reply. Once per handover."""
    from tickets.email.acknowledgements import handover_ack_send

    return handover_ack_send(ticket_id=ticket_id)


@shared_task(soft_time_limit=240, time_limit=300)
def poll_imap() -> dict:
    """Fetch unseen mail from the IMAP_URL mailbox into tickets (beat, every minute; no-op when unset)."""
    if not settings.IMAP_URL:
        return {"skipped": "IMAP_URL is not set"}
    from tickets.email.imap import imap_poll

    return imap_poll()
