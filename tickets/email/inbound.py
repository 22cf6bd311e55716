"""Inbound email → ticket (service). Called by the inbound endpoint and the IMAP poll alike.

Threading, checked exactly (docs/email.md): a reply joins a ticket only when one of its In-Reply-To /
References ids is an email we received or sent *for that ticket* and the sender is that ticket's
customer (case-insensitive); a ``[SF-000123]`` subject tag counts only with the same sender check.
Anything else (a spoofed or guessed thread) starts a new ticket. Automatic mail (bounces,
auto-replies, lists) is never answered: it becomes an internal note on the thread it belongs to, or is
recorded and ignored.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from tickets import selectors, services
from tickets.email import attachments, parse, storage
from tickets.models import Attachment, EmailRecord, Message, Ticket

logger = logging.getLogger(__name__)
SUBJECT_REF_RE = re.compile(r"\[(SF-\d{6,})\]")
TRUNCATED_NOTE = "\n\n[… shortened; the full email is kept with the ticket]"


class EmailRejected(services.TicketRuleError):
    """The email cannot be taken at all (too large, not an email). ``status`` is the HTTP answer."""

    def __init__(self, text: str, *, status: int = 400) -> None:
        super().__init__(text)
        self.status = status


@dataclass
class InboundResult:
    status: str  # created | appended | noted | ignored | duplicate
    record: EmailRecord
    ticket: Ticket | None = None
    message: Message | None = None


def _valid_address(address: str) -> str:
    address = parse.one_line(address, limit=254)
    try:
        validate_email(address)
    except ValidationError:
        return ""
    return address


def _same_sender(ticket: Ticket, sender: str) -> bool:
    return bool(sender) and bool(ticket.customer.email) and ticket.customer.email.lower() == sender.lower()


def email_thread_ticket(*, parsed: parse.ParsedEmail, sender: str, require_sender: bool = True) -> Ticket | None:
    """The open ticket this email continues, or ``None`` (start a new one). See the module docstring."""
    ids = list(dict.fromkeys(parsed.in_reply_to + parsed.references))
    if ids:
        candidates = (
            Ticket.objects.filter(emails__msgid__in=ids)
            .exclude(status=Ticket.Status.CLOSED)
            .select_related("customer")
            .distinct()
            .order_by("-created_at")
        )
        for ticket in candidates[:20]:
            if not require_sender or _same_sender(ticket, sender):
                return ticket
    found = SUBJECT_REF_RE.search(parsed.subject)
    if found:
        ticket = Ticket.objects.filter(reference=found.group(1)).select_related("customer").first()
        if ticket is not None:  # a merged ticket's tag leads to the ticket it was merged into
            ticket = selectors.ticket_follow_merge(ticket=ticket)
        if ticket is not None and ticket.status != Ticket.Status.CLOSED and _same_sender(ticket, sender):
            return ticket
    return None


def _body(parsed: parse.ParsedEmail, kept_files: int) -> str:
    body = parsed.reply_text
    if not body:
        body = "(No text; see the attached files.)" if kept_files else "(Empty email.)"
    limit = services.MESSAGE_MAX_LENGTH
    if len(body) > limit:
        body = body[: limit - len(TRUNCATED_NOTE)] + TRUNCATED_NOTE
    return body


def _record(parsed: parse.ParsedEmail, msgid: str, raw_name: str, **fields) -> EmailRecord:
    return EmailRecord.objects.create(
        msgid=msgid,
        direction=EmailRecord.Direction.INBOUND,
        in_reply_to=(parsed.in_reply_to or [""])[0],
        references=" ".join(parsed.references),
        from_address=parse.one_line(parsed.from_address, limit=320),
        to_addresses=" ".join(parsed.to),
        subject=parsed.subject[:255],
        auto_reason=parsed.auto_reason,
        raw_name=raw_name,
        **fields,
    )


def email_receive(*, raw: bytes) -> InboundResult:
    """Store one inbound email: a new ticket, a reply on its thread, an internal note (automatic mail)
    or an ignored record. Idempotent on the Message-ID (one derived from the bytes when it has none).

    The raw MIME is stored first; ``StorageUnavailable`` when that or an attachment cannot be stored
    (nothing is recorded; the sender retries)."""
    if not isinstance(raw, bytes | bytearray) or not raw.strip():
        raise EmailRejected("The request body must be a raw email (MIME).")
    if len(raw) > settings.EMAIL_MAX_MESSAGE_BYTES:
        raise EmailRejected(f"The email is larger than {settings.EMAIL_MAX_MESSAGE_BYTES:,} bytes.", status=413)
    raw = bytes(raw)
    parsed = parse.parse(raw)
    if not parsed.message_id and not parsed.from_address and not parsed.text and not parsed.attachments:
        raise EmailRejected("This does not look like an email: no Message-ID, sender, text or attachment.")
    msgid = parsed.message_id or f"<{hashlib.sha256(raw).hexdigest()}@inbound.supportflow.invalid>"
    existing = EmailRecord.objects.select_related("ticket", "message").filter(msgid=msgid).first()
    if existing is not None:
        return InboundResult("duplicate", existing, existing.ticket, existing.message)
    raw_name, _ = storage.store("raw", raw, suffix=".eml")
    sender = _valid_address(parsed.from_address)
    try:
        return _receive(parsed, msgid, raw_name, sender)
    except IntegrityError:  # the same email, delivered twice at once: the other delivery stored it
        existing = EmailRecord.objects.select_related("ticket", "message").filter(msgid=msgid).first()
        if existing is None:
            raise
        return InboundResult("duplicate", existing, existing.ticket, existing.message)


@transaction.atomic
def _receive(parsed: parse.ParsedEmail, msgid: str, raw_name: str, sender: str) -> InboundResult:
    if parsed.is_automatic:
        ticket = email_thread_ticket(parsed=parsed, sender=sender, require_sender=False)
        if ticket is None:
            record = _record(parsed, msgid, raw_name, status=EmailRecord.Status.IGNORED)
            logger.info("automatic email %s (%s) matched no ticket; recorded, not answered", msgid, parsed.auto_reason)
            return InboundResult("ignored", record)
        note = (
            f"Automatic email ({parsed.auto_reason}) from {parsed.from_address or 'an empty sender'}, not answered.\n"
            f"Subject: {parsed.subject}\n\n{parsed.text[:2000]}"
        ).strip()
        message = services.message_create(
            ticket=ticket, author_kind=Message.AuthorKind.SYSTEM, body=note[: services.MESSAGE_MAX_LENGTH],
            is_internal=True,
        )  # fmt: skip
        record = _record(parsed, msgid, raw_name, status=EmailRecord.Status.RECEIVED, ticket=ticket, message=message)
        return InboundResult("noted", record, ticket, message)

    decisions = attachments.decide(parsed.attachments)
    kept = [d for d in decisions if d.accepted]
    body = _body(parsed, len(kept))
    customer = services.customer_get_or_create(email=sender, name=parsed.from_name)
    ticket = email_thread_ticket(parsed=parsed, sender=sender)
    status = "appended"
    if ticket is not None:
        try:
            with transaction.atomic():
                message = services.message_create(ticket=ticket, author_kind=Message.AuthorKind.CUSTOMER, body=body)
        except services.TicketRuleError:  # closed since we looked: a new conversation, as for chat
            ticket = None
    if ticket is None:
        subject = SUBJECT_REF_RE.sub("", parsed.subject).strip() or "(no subject)"
        ticket = services.ticket_create(customer=customer, subject=subject, body=body, channel=Ticket.Channel.EMAIL)
        message = ticket.messages.get(seq=1)
        status = "created"
    record = _record(parsed, msgid, raw_name, status=EmailRecord.Status.RECEIVED, ticket=ticket, message=message)
    for decision in kept:
        name, digest = storage.store("attachments", decision.attachment.data)
        Attachment.objects.create(
            ticket=ticket,
            message=message,
            filename=decision.filename,
            content_type=decision.content_type,
            size=len(decision.attachment.data),
            sha256=digest,
            storage_name=name,
        )
    refused = [d for d in decisions if not d.accepted]
    if refused:
        lines = "\n".join(f"- {d.filename}: {d.reason}" for d in refused[:50])
        services.message_create(
            ticket=ticket, author_kind=Message.AuthorKind.SYSTEM, is_internal=True,
            body=f"Attachments not kept (the original email is stored with the ticket):\n{lines}",
        )  # fmt: skip
    return InboundResult(status, record, ticket, message)
