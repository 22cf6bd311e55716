"""The handover acknowledgement by email (service): when an email ticket is handed to a person, its customer
gets one email saying so and when a person will reply (``tickets.reply_estimates``, the time promised at the
handover), threaded like a reply.

Once per handover (the ``handover:<ticket id>:<handover time>`` key of its ``EmailRecord``); not when the ticket
is no longer active when the task runs; to a customer who unsubscribed too — it is about the request they wrote
to us, like a reply on their email ticket; in the conversation's language.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from tickets import languages, reply_estimates
from tickets.email.outbound import REPLY_PREFIX, claim_record, deliver, refusal, skip, thread_headers
from tickets.email.parse import one_line
from tickets.models import EmailRecord, Ticket


def handover_ack_key(ticket: Ticket) -> str:
    return f"handover:{ticket.pk}:{int(ticket.escalated_at.timestamp())}"


def _acknowledgement(ticket: Ticket, when: str) -> tuple[str, str]:
    subject = REPLY_PREFIX.sub("", ticket.subject).strip()
    title = _("A person will reply: %(subject)s [%(reference)s]") % {"subject": subject, "reference": ticket.reference}
    greeting = _("Hello %(name)s,") % {"name": ticket.customer.name} if ticket.customer.name else _("Hello,")
    if when:
        promise = _("A person from our team has your request %(reference)s and will reply %(when)s.") % {
            "reference": ticket.reference,
            "when": when,
        }
    else:
        promise = _("A person from our team has your request %(reference)s and will reply as soon as possible.") % {
            "reference": ticket.reference
        }
    lines = [
        one_line(greeting, limit=300),
        "",
        promise,
        "",
        _("To add anything, reply to this email."),
    ]
    return one_line(title, limit=250), "\n".join(lines) + "\n"


def handover_ack_send(*, ticket_id: int) -> str:
    """Email the handover acknowledgement of an email ticket, once per handover. Returns the outcome (``sent``,
    ``skipped``, ``not-email``, ``not-needed``, ``missing``); SMTP errors raise for the task to retry."""
    ticket = Ticket.objects.select_related("customer", "department__sla_policy").filter(pk=ticket_id).first()
    if ticket is None:
        return "missing"
    if ticket.channel != Ticket.Channel.EMAIL:
        return "not-email"
    if not ticket.escalated or ticket.escalated_at is None:
        return "not-needed"
    key = handover_ack_key(ticket)
    record = EmailRecord.objects.filter(key=key).first()
    if record is None and not ticket.is_active:
        return "not-needed"
    record = record or claim_record(ticket=ticket, key=key)
    if record.status in (EmailRecord.Status.SENT, EmailRecord.Status.SKIPPED):
        return record.status
    if why := refusal(ticket.customer, notice=False):
        return skip(record, why)
    with languages.speaking(ticket) as language:
        when = ""
        if ticket.reply_promised_at is not None and ticket.reply_promised_at > timezone.now():
            zone = reply_estimates.display_zone(ticket)
            when = reply_estimates.reply_estimate_phrase(
                promised=ticket.reply_promised_at, zone=zone, now=ticket.escalated_at
            )
        subject, body = _acknowledgement(ticket, when)
        headers = {
            **thread_headers(ticket),
            "Auto-Submitted": "auto-replied",  # RFC 3834: the customer's autoresponder must not answer it
            "Content-Language": language,
        }
    return deliver(record, ticket=ticket, subject=subject, body=body, headers=headers)
