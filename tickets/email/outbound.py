"""Outbound email (service): agent and AI replies on email tickets, sent with threading headers.

Every value that goes into a header is built from stored fields and passed through ``one_line``, so
no CR/LF ever reaches Django's header check (which would raise instead of sending). What we add to the
reply is written in the conversation's language (``tickets.languages``); the subject keeps the customer's
own words behind a plain "Re:", which every mail client threads on.
"""

from __future__ import annotations

import email.utils
import logging
import re

from django.conf import settings
from django.core.mail import EmailMessage, make_msgid
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tickets import languages
from tickets.email.inbound import _valid_address
from tickets.email.parse import BOUNCE_LOCALPARTS, one_line
from tickets.models import EmailRecord, Message, Ticket

logger = logging.getLogger(__name__)
NO_REPLY_LOCALPART = re.compile(r"^(?:no-?reply|do-?not-?reply|bounces?|mailer-daemon|postmaster)([+.-].*)?$", re.I)
MAX_REFERENCES = 20
REPLY_PREFIX = re.compile(r"^\s*((?:re|aw|sv|fw|fwd)\s*:\s*)+", re.IGNORECASE)


def support_address() -> str:
    return one_line(settings.SUPPORT_EMAIL_ADDRESS or settings.DEFAULT_FROM_EMAIL, limit=320)


def _msgid_domain() -> str | None:
    _, addr = email.utils.parseaddr(support_address())
    domain = addr.rpartition("@")[2]
    return re.sub(r"[^A-Za-z0-9.-]", "", domain) or None


def deliverable(address: str) -> bool:
    """A human address we may write to: valid, and not a bounce / no-reply mailbox (no mail loops)."""
    address = _valid_address(address)
    if not address:
        return False
    local = address.rpartition("@")[0].lower()
    return local not in BOUNCE_LOCALPARTS and not NO_REPLY_LOCALPART.match(local)


def reply_subject(ticket: Ticket) -> str:
    subject = REPLY_PREFIX.sub("", ticket.subject).strip()
    return one_line(f"Re: {subject} [{ticket.reference}]", limit=250)


def _claim(message: Message) -> EmailRecord:
    try:
        with transaction.atomic():
            return EmailRecord.objects.create(
                msgid=make_msgid(domain=_msgid_domain()),
                direction=EmailRecord.Direction.OUTBOUND,
                status=EmailRecord.Status.PENDING,
                ticket=message.ticket,
                message=message,
            )
    except IntegrityError:
        return EmailRecord.objects.get(message=message)


def email_reply_send(*, message_id: int) -> str:
    """Send one agent/AI public message of an email ticket to its customer, once.

    Returns the outcome (``sent``, ``skipped``, ``not-email``…). The outbound record is claimed before
    sending, so a rerun after success is a no-op; a crash between the SMTP hand-off and marking it
    sent sends again on retry (at least once, like any mail queue). SMTP errors raise (``OSError``)
    for the task to retry.
    """
    message = Message.objects.select_related("ticket__customer").filter(pk=message_id).first()
    if message is None:
        return "missing"
    ticket = message.ticket
    if (
        ticket.channel != Ticket.Channel.EMAIL
        or message.is_internal
        or message.author_kind not in (Message.AuthorKind.AGENT, Message.AuthorKind.AI)
    ):
        return "not-email"
    record = _claim(message)
    if record.status in (EmailRecord.Status.SENT, EmailRecord.Status.SKIPPED):
        return record.status
    to = ticket.customer.email
    if not deliverable(to):
        EmailRecord.objects.filter(pk=record.pk).update(
            status=EmailRecord.Status.SKIPPED, error="no deliverable address"
        )
        return EmailRecord.Status.SKIPPED
    last = (
        EmailRecord.objects.filter(ticket=ticket, direction=EmailRecord.Direction.INBOUND, auto_reason="")
        .order_by("-created_at", "-pk")
        .first()
    )
    headers = {"Message-ID": record.msgid, "X-SupportFlow-Ticket": ticket.reference}
    if last is not None:
        refs = [*last.references.split(), last.msgid][-MAX_REFERENCES:]
        headers["In-Reply-To"] = one_line(last.msgid, limit=500)
        headers["References"] = one_line(" ".join(refs), limit=8000)
    else:
        previous = (
            EmailRecord.objects.filter(ticket=ticket, status=EmailRecord.Status.SENT).order_by("-created_at").first()
        )
        if previous is not None:
            headers["In-Reply-To"] = headers["References"] = previous.msgid
    if message.author_kind == Message.AuthorKind.AI:
        headers["Auto-Submitted"] = "auto-replied"  # RFC 3834: an autoresponder must not answer it
    with languages.speaking(ticket):
        footer = _("Reply to this email to continue %(reference)s.") % {"reference": ticket.reference}
    body = f"{message.body}\n\n-- \n{footer}\n"
    mail = EmailMessage(
        subject=reply_subject(ticket),
        body=body,
        from_email=support_address(),
        to=[one_line(to, limit=320)],
        headers=headers,
    )
    EmailRecord.objects.filter(pk=record.pk).update(
        from_address=support_address(),
        to_addresses=one_line(to, limit=320),
        subject=mail.subject[:255],
        in_reply_to=headers.get("In-Reply-To", ""),
        references=headers.get("References", ""),
    )
    try:
        mail.send()
    except OSError as exc:
        EmailRecord.objects.filter(pk=record.pk).update(status=EmailRecord.Status.FAILED, error=str(exc)[:2000])
        raise
    EmailRecord.objects.filter(pk=record.pk).update(status=EmailRecord.Status.SENT, sent_at=timezone.now(), error="")
    return EmailRecord.Status.SENT
