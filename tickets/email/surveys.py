"""The CSAT survey by email (service): when an email or API ticket is resolved, its customer gets one email
with a link per score (1–5). A link opens a page to confirm and comment (``views.email_rate``); nothing is
recorded by opening it, so a mail scanner that follows links rates nothing.

Once per ticket (the ``csat:<ticket id>`` key of its ``EmailRecord``), only while the ticket is still resolved
and unrated when the task runs, never to a customer who unsubscribed; in the conversation's language.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from tickets import languages, selectors
from tickets.email import links
from tickets.email.outbound import (
    REPLY_PREFIX,
    claim_record,
    deliver,
    refusal,
    skip,
    thread_headers,
    unsubscribe_headers,
)
from tickets.email.parse import one_line
from tickets.models import EmailRecord, Ticket

SURVEYED_CHANNELS = (Ticket.Channel.EMAIL, Ticket.Channel.API)  # chat rates on its own page


def _score_labels() -> dict[int, str]:
    return {5: _("Excellent"), 4: _("Good"), 3: _("Okay"), 2: _("Poor"), 1: _("Very poor")}


def _survey(ticket: Ticket, unsubscribe: str) -> tuple[str, str]:
    subject = REPLY_PREFIX.sub("", ticket.subject).strip()
    title = _("How did we do? %(subject)s [%(reference)s]") % {"subject": subject, "reference": ticket.reference}
    greeting = _("Hello %(name)s,") % {"name": ticket.customer.name} if ticket.customer.name else _("Hello,")
    lines = [
        one_line(greeting, limit=300),
        "",
        _("Your request %(reference)s is resolved. How would you rate our help? One click:")
        % {"reference": ticket.reference},
        "",
        *(f"  {score} – {label}: {links.csat_url(ticket, score)}" for score, label in _score_labels().items()),
        "",
        _("If something is still not right, reply to this email and %(reference)s opens again.")
        % {"reference": ticket.reference},
        "",
        "-- ",
        _("Don't want these emails? Unsubscribe: %(url)s") % {"url": unsubscribe},
    ]
    return one_line(title, limit=250), "\n".join(lines) + "\n"


def csat_survey_send(*, ticket_id: int) -> str:
    """Email the rating request for a resolved email/API ticket, once. Returns the outcome (``sent``,
    ``skipped``, ``not-surveyed``, ``not-needed``, ``missing``); SMTP errors raise for the task to retry."""
    ticket = Ticket.objects.select_related("customer").filter(pk=ticket_id).first()
    if ticket is None:
        return "missing"
    if ticket.channel not in SURVEYED_CHANNELS:
        return "not-surveyed"
    record = EmailRecord.objects.filter(key=selectors.csat_survey_key(ticket)).first()
    if record is None and (ticket.status != Ticket.Status.RESOLVED or ticket.csat_score is not None):
        return "not-needed"  # reopened or rated before the task ran: a later resolution asks again
    record = record or claim_record(ticket=ticket, key=selectors.csat_survey_key(ticket))
    if record.status in (EmailRecord.Status.SENT, EmailRecord.Status.SKIPPED):
        return record.status
    if why := refusal(ticket.customer, notice=True):
        return skip(record, why)
    with languages.speaking(ticket) as language:
        unsubscribe = links.unsubscribe_url(ticket.customer, language=language)
        subject, body = _survey(ticket, unsubscribe)
        headers = {
            **thread_headers(ticket),
            **unsubscribe_headers(unsubscribe),
            "Auto-Submitted": "auto-generated",  # RFC 3834: sent by the system, not in reply to a person
            "Content-Language": language,
        }
    return deliver(record, ticket=ticket, subject=subject, body=body, headers=headers)
