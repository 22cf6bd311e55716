"""Outbound email (services): replies on email tickets, copies of agents' chat replies, sent with threading
headers; the helpers the CSAT survey (``surveys``) sends with.

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
from django.core.cache import cache
from django.core.mail import EmailMessage, make_msgid
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from tickets import languages, services
from tickets.email import links
from tickets.email.inbound import _valid_address
from tickets.email.parse import BOUNCE_LOCALPARTS, one_line
from tickets.models import Customer, EmailRecord, Message, Ticket

logger = logging.getLogger(__name__)
NO_REPLY_LOCALPART = re.compile(r"^(?:no-?reply|do-?not-?reply|bounces?|mailer-daemon|postmaster)([+.-].*)?$", re.I)
MAX_REFERENCES = 20
SEND_LOCK_SECONDS = 120  # longer than the send task's hard time limit (90 s)
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


def claim_record(*, ticket: Ticket, message: Message | None = None, key: str = "") -> EmailRecord:
    """The outbound record of one email, created once: unique on its message (a reply) or its ``key`` (a
    survey), so a rerun finds the same record and its status instead of sending again."""
    try:
        with transaction.atomic():
            return EmailRecord.objects.create(
                msgid=make_msgid(domain=_msgid_domain()),
                direction=EmailRecord.Direction.OUTBOUND,
                status=EmailRecord.Status.PENDING,
                ticket=ticket,
                message=message,
                key=key,
            )
    except IntegrityError:
        return EmailRecord.objects.get(message=message) if message is not None else EmailRecord.objects.get(key=key)


def thread_headers(ticket: Ticket) -> dict[str, str]:
    """In-Reply-To / References: the customer's latest (non-automatic) email, else the last one we sent for
    the ticket — so a reply to what we send threads back into the ticket (``inbound.email_thread_ticket``)."""
    last = (
        EmailRecord.objects.filter(ticket=ticket, direction=EmailRecord.Direction.INBOUND, auto_reason="")
        .order_by("-created_at", "-pk")
        .first()
    )
    if last is not None:
        refs = [*last.references.split(), last.msgid][-MAX_REFERENCES:]
        return {"In-Reply-To": one_line(last.msgid, limit=500), "References": one_line(" ".join(refs), limit=8000)}
    previous = EmailRecord.objects.filter(ticket=ticket, status=EmailRecord.Status.SENT).order_by("-created_at").first()
    if previous is not None:
        return {"In-Reply-To": previous.msgid, "References": previous.msgid}
    return {}


def skip(record: EmailRecord, why: str) -> str:
    EmailRecord.objects.filter(pk=record.pk).update(status=EmailRecord.Status.SKIPPED, error=why)
    return EmailRecord.Status.SKIPPED


def refusal(customer: Customer, *, notice: bool) -> str:
    """Why nothing may be written to this customer ("" when we may): no deliverable address, or — for a
    notice (a chat reply's copy, a survey), not for the reply to their own email — they unsubscribed."""
    if not deliverable(customer.email):
        return "no deliverable address"
    if notice and customer.email_unsubscribed_at is not None:
        return "unsubscribed"
    return ""


def unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058: the mail client's own "Unsubscribe" button, one POST to our signed link."""
    return {
        "List-Unsubscribe": f"<{one_line(url, limit=2000)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def deliver(record: EmailRecord, *, ticket: Ticket, subject: str, body: str, headers: dict[str, str]) -> str:
    """Send through ``EMAIL_URL`` with the record's Message-ID; SMTP errors (``OSError``) are recorded and
    raised for the task to retry.

    One sender at a time per record (a lock in the cache, then the status read again under it): a task the
    broker delivered twice at once sends once. What is left is a crash between the SMTP hand-off and marking
    it sent, which sends again on retry — at least once, like any mail queue."""
    lock = f"sf:email-send:{record.pk}"
    if not cache.add(lock, "1", timeout=SEND_LOCK_SECONDS):
        return "in-progress"
    try:
        current = EmailRecord.objects.filter(pk=record.pk).values_list("status", flat=True).first()
        if current in (EmailRecord.Status.SENT, EmailRecord.Status.SKIPPED):
            return current
        return _send(record, ticket=ticket, subject=subject, body=body, headers=headers)
    finally:
        cache.delete(lock)


def _send(record: EmailRecord, *, ticket: Ticket, subject: str, body: str, headers: dict[str, str]) -> str:
    to = one_line(ticket.customer.email, limit=320)
    headers = {"Message-ID": record.msgid, "X-SupportFlow-Ticket": ticket.reference, **headers}
    mail = EmailMessage(subject=subject, body=body, from_email=support_address(), to=[to], headers=headers)
    EmailRecord.objects.filter(pk=record.pk).update(
        from_address=support_address(),
        to_addresses=to,
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


def _chat_reply_body(message: Message, ticket: Ticket, unsubscribe: str) -> str:
    author = (message.author_user and message.author_user.first_name) or pgettext("the author of a message", "Support")
    intro = _("%(name)s replied in your conversation %(reference)s:") % {"name": author, "reference": ticket.reference}
    footer = "\n".join(
        [
            _("Continue the conversation: %(url)s") % {"url": links.conversation_url(ticket)},
            _("Or reply to this email."),
            _("Don't want these emails? Unsubscribe: %(url)s") % {"url": unsubscribe},
        ]
    )
    return f"{one_line(intro, limit=500)}\n\n{message.body}\n\n-- \n{footer}\n"


def email_reply_send(*, message_id: int) -> str:
    """Send one public reply (``services.message_email_kind``) to the ticket's customer, once.

    Returns the outcome (``sent``, ``skipped``, ``not-email``…). The outbound record is claimed before
    sending, so a rerun after success is a no-op; a crash between the SMTP hand-off and marking it
    sent sends again on retry (at least once, like any mail queue). SMTP errors raise (``OSError``)
    for the task to retry. A chat copy is not sent to a customer who unsubscribed, and carries the
    conversation link and a one-click unsubscribe (``List-Unsubscribe``).
    """
    message = Message.objects.select_related("ticket__customer", "author_user").filter(pk=message_id).first()
    if message is None:
        return "missing"
    kind = services.message_email_kind(message)
    if not kind:
        return "not-email"
    ticket = message.ticket
    record = claim_record(ticket=ticket, message=message)
    if record.status in (EmailRecord.Status.SENT, EmailRecord.Status.SKIPPED):
        return record.status
    if why := refusal(ticket.customer, notice=kind == "chat"):
        return skip(record, why)
    headers = thread_headers(ticket)
    if message.author_kind == Message.AuthorKind.AI:
        headers["Auto-Submitted"] = "auto-replied"  # RFC 3834: an autoresponder must not answer it
    with languages.speaking(ticket) as language:
        if kind == "chat":
            unsubscribe = links.unsubscribe_url(ticket.customer, language=language)
            headers |= {**unsubscribe_headers(unsubscribe), "Content-Language": language}
            body = _chat_reply_body(message, ticket, unsubscribe)
        else:
            footer = _("Reply to this email to continue %(reference)s.") % {"reference": ticket.reference}
            body = f"{message.body}\n\n-- \n{footer}\n"
    return deliver(record, ticket=ticket, subject=reply_subject(ticket), body=body, headers=headers)
