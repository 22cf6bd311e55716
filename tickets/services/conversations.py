"""Customers, tickets and their messages, the status state machine and the customer's rating.

The live broadcast, the AI enqueue and an email reply are this module's own effects: each service
schedules them on commit where it decides them, and announces the change to other apps through
``tickets.events``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import functools
import logging
import re

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from supportflow.rows import model_from_row, select_columns
from tickets import events, realtime, tasks
from tickets.models import ActorKind, Customer, Department, Message, Priority, Ticket, TicketEvent
from tickets.services.common import (
    AuthorKind,
    Status,
    TicketRuleError,
    _apply_sla,
    _event,
    _locked,
    _next_reference,
    _sla_resume,
)

logger = logging.getLogger(__name__)

MESSAGE_MAX_LENGTH = getattr(settings, "MESSAGE_MAX_LENGTH", 10_000)
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
SUBJECT_MAX_LENGTH = Ticket._meta.get_field("subject").max_length
CSAT_COMMENT_MAX_LENGTH = 2000

# The ticket state machine. ``closed`` is final: a closed ticket is archived with its figures, and a
# customer writing again starts a new ticket. ``resolved → open`` is a reopen.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.NEW: frozenset({Status.OPEN, Status.PENDING, Status.RESOLVED, Status.CLOSED}),
    Status.OPEN: frozenset({Status.PENDING, Status.RESOLVED, Status.CLOSED}),
    Status.PENDING: frozenset({Status.OPEN, Status.RESOLVED, Status.CLOSED}),
    Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}


# --- Customers and tickets -----------------------------------------------------------------------


def customer_get_or_create(*, email: str = "", name: str = "") -> Customer:
    """The customer with this email (case-insensitive), created if new; race-safe by the unique index."""
    email = email.strip()
    name = name.strip()[:200]
    if not email:
        return Customer.objects.create(name=name)
    existing = Customer.objects.filter(email__iexact=email).first()
    if existing is not None:
        if name and not existing.name:
            Customer.objects.filter(pk=existing.pk).update(name=name)
            existing.name = name
        return existing
    try:
        with transaction.atomic():
            return Customer.objects.create(email=email, name=name)
    except IntegrityError:
        # Another writer created it between our read and insert.
        return Customer.objects.get(email__iexact=email)


@transaction.atomic
def ticket_set_customer_email(*, ticket: Ticket, email: str) -> Ticket:
    """The customer gave their email after starting (chat). Unverified, as with any chat or email.

    If another customer already has that address, the ticket moves to them (the way an email from
    that address would arrive), and an event records it; the customer record that started the chat
    keeps no email. Access to each conversation stays with its own link either way.
    """
    email = email.strip()
    ticket = _locked(ticket)
    current = ticket.customer
    if current.email.lower() == email.lower():
        return ticket
    if current.email:
        raise TicketRuleError(_("This conversation already has an email address."))
    existing = Customer.objects.filter(email__iexact=email).exclude(pk=current.pk).first()
    if existing is None:
        Customer.objects.filter(pk=current.pk).update(email=email)
        note = "Email added in chat (unverified)."
    else:
        ticket.customer = existing
        ticket.save(update_fields=["customer", "updated_at"])
        note = "Email given in chat matches an existing customer; ticket moved to them (unverified)."
    _event(
        ticket,
        TicketEvent.Kind.TRIAGE_CHANGED,
        actor_kind=ActorKind.CUSTOMER,
        field="customer_email",
        to_value=email,
        note=note,
    )
    ticket.refresh_from_db()
    return ticket


def _clean_body(body: str) -> str:
    if not isinstance(body, str):
        raise TicketRuleError(_("A message must be text."))
    body = body.replace("\x00", "").strip()
    if not body:
        raise TicketRuleError(_("A message cannot be empty."))
    if len(body) > MESSAGE_MAX_LENGTH:
        raise TicketRuleError(
            _("A message can be at most %(limit)s characters; this one has %(length)s.")
            % {
                "limit": number_format(MESSAGE_MAX_LENGTH, force_grouping=True),
                "length": number_format(len(body), force_grouping=True),
            }
        )
    return body


@transaction.atomic
def ticket_create(
    *,
    customer: Customer,
    subject: str,
    body: str,
    channel: str = Ticket.Channel.CHAT,
    priority: str = Priority.NORMAL,
    department: Department | None = None,
    actor: AbstractBaseUser | None = None,
    ui_language: str = "",
    ui_language_chosen: bool = False,
    opened_by: AbstractBaseUser | None = None,
) -> Ticket:
    """Open a ticket with the customer's first message (seq 1) and its SLA clock started.

    ``ui_language``: the language of the customer's pages as they start it (``tickets.languages``), and
    ``ui_language_chosen`` whether they picked it themselves. ``opened_by``: the agent who opened it in the
    console for the customer (a call, a visit): it is theirs from the start, so the AI triages and drafts
    but does not answer on its own."""
    body = _clean_body(body)
    subject = " ".join(subject.replace("\x00", "").split())[:SUBJECT_MAX_LENGTH] or body.splitlines()[0][:80]
    if channel not in Ticket.Channel.values:
        raise TicketRuleError(f"Unknown channel {channel!r}.")
    if priority not in Priority.values:
        raise TicketRuleError(f"Unknown priority {priority!r}.")
    if ui_language and ui_language not in dict(settings.LANGUAGES):
        raise TicketRuleError(f"Unknown page language {ui_language!r}.")
    now = timezone.now()
    ticket = Ticket(
        reference=_next_reference(),
        subject=subject,
        customer=customer,
        channel=channel,
        priority=priority,
        department=department,
        ui_language=ui_language,
        ui_language_chosen=bool(ui_language and ui_language_chosen),
        created_at=now,
        last_customer_message_at=now,
        last_message_seq=1,
        opened_by=opened_by,
    )
    _apply_sla(ticket)
    ticket.save()
    message = Message.objects.create(ticket=ticket, seq=1, author_kind=AuthorKind.CUSTOMER, body=body, created_at=now)
    _event(
        ticket,
        TicketEvent.Kind.CREATED,
        actor=actor,
        actor_kind=ActorKind.AGENT if actor else ActorKind.CUSTOMER,
        to_value=channel,
    )
    tasks.ai_enqueue_on_commit(message_id=message.pk)
    events.publish(events.TICKET_CREATED, ticket_id=ticket.pk, message_id=message.pk)
    return ticket


def message_create(
    *,
    ticket: Ticket,
    author_kind: str,
    body: str,
    author_user: AbstractBaseUser | None = None,
    is_internal: bool = False,
    ai_confidence: float | None = None,
    citations: list | None = None,
    set_status: str | None = None,
    client_msg_id: str = "",
    locked: bool = False,
) -> Message:
    """Append a message with the next gap-free sequence number and apply its effect on the ticket.

    - customer: a pending or resolved ticket opens again (a resolved one counts as reopened);
      a closed ticket refuses new messages.
    - agent / AI public reply: the first one is the ticket's first response; ``new`` becomes ``open``.
    - internal notes change nothing but the thread. ``set_status`` moves the ticket afterwards
      (e.g. reply and set pending) through the state machine.

    ``client_msg_id`` makes a resend idempotent: the message already stored under that id is
    returned and nothing else happens (checked under the ticket's row lock, so race-free). The
    returned message's ``was_created`` says which case it was.

    ``locked``: the caller's transaction already holds the ticket's row lock and ``ticket`` is the
    instance it read under it (``common._locked``), so it is not read again.
    """
    _check_client_id(client_msg_id)
    body = _clean_body(body)
    if author_kind not in AuthorKind.values:
        raise TicketRuleError(f"Unknown author kind {author_kind!r}.")
    if is_internal and author_kind == AuthorKind.CUSTOMER:
        raise TicketRuleError("Customers cannot write internal notes.")
    if author_kind == AuthorKind.AGENT and author_user is None:
        raise TicketRuleError("An agent message needs its author.")
    if ai_confidence is not None and not 0.0 <= ai_confidence <= 1.0:
        raise TicketRuleError("AI confidence must be between 0 and 1.")

    if author_kind == AuthorKind.CUSTOMER and not set_status:
        message = _customer_message_append(ticket_id=ticket.pk, body=body, client_msg_id=client_msg_id)
        if message is not None:
            _message_effects(message)
            return message
    return _message_create_locked(
        ticket=ticket,
        author_kind=author_kind,
        body=body,
        author_user=author_user,
        is_internal=is_internal,
        ai_confidence=ai_confidence,
        citations=citations,
        set_status=set_status,
        client_msg_id=client_msg_id,
        locked=locked,
    )


# Statuses in which a customer message changes nothing but the thread (no transition, no event).
_APPEND_ONLY_STATUSES = (Status.NEW, Status.OPEN)


def _customer_message_append(*, ticket_id: int, body: str, client_msg_id: str) -> Message | None:
    """The chat's hot path in one SQL statement (one round trip in autocommit): lock the ticket and take
    its next sequence number (``UPDATE … RETURNING``), insert the message with it, and read back the
    ticket and its customer for the broadcast. Being one statement, the number and the row commit or
    roll back together, so the sequence stays gap-free.

    Returns None — nothing written — whenever the general path must decide: the ticket is not ``new``
    or ``open`` (a transition, or closed), the ``client_msg_id`` is already stored (a resend), or a
    concurrent resend with the same id won the race (the unique constraint rolls this statement back).
    """
    draft, sql, params = _append_draft(ticket_id=ticket_id, body=body, client_msg_id=client_msg_id)
    try:
        # Alone, the statement is its own transaction; inside a caller's, a savepoint keeps a lost
        # race (IntegrityError) from breaking it.
        savepoint = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
        with savepoint, connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    except IntegrityError:
        return None
    return _appended(draft, row)


async def message_create_customer_async(*, ticket_id: int, body, client_msg_id: str) -> Message | None:
    """``message_create`` for a customer's chat message, on the event loop (the chat consumer's hot path,
    ``supportflow.aio``): the same validation, the same one statement as ``_customer_message_append``
    and the same effects, the live broadcast awaited here and the rest (the AI enqueue, the event
    subscribers) handed to a worker thread (``_message_effects_async``). None, with nothing written:
    the general path must decide (a resend, a transition, a closed ticket), so call ``message_create``.
    """
    message = await _customer_message_append_async(ticket_id=ticket_id, body=body, client_msg_id=client_msg_id)
    if message is not None:
        await _message_effects_async(message)
    return message


async def _customer_message_append_async(*, ticket_id: int, body, client_msg_id: str) -> Message | None:
    """``_customer_message_append``'s statement on an ``aio`` connection, after ``message_create``'s checks."""
    from supportflow import aio

    _check_client_id(client_msg_id)
    draft, sql, params = _append_draft(ticket_id=ticket_id, body=_clean_body(body), client_msg_id=client_msg_id)
    try:
        async with aio.connection() as conn:
            row = await (await conn.execute(sql, params, prepare=True)).fetchone()
    except IntegrityError:
        return None
    return _appended(draft, row)


def _check_client_id(client_msg_id: str) -> None:
    if client_msg_id and not CLIENT_ID_RE.fullmatch(client_msg_id):
        raise TicketRuleError(_("The message id must be 1–64 letters, digits, '-' or '_'."))


def _append_draft(*, ticket_id: int, body: str, client_msg_id: str) -> tuple[Message, str, list]:
    now = timezone.now()
    draft = Message(
        ticket_id=ticket_id,
        seq=0,
        author_kind=AuthorKind.CUSTOMER,
        body=body,
        client_msg_id=client_msg_id,
        created_at=now,
    )
    sql, param_fields = _append_statement()
    params = [
        now,
        now,
        ticket_id,
        *_APPEND_ONLY_STATUSES,
        ticket_id,
        client_msg_id,
        client_msg_id,
        *(field.get_db_prep_save(getattr(draft, field.attname), connection) for field in param_fields),
    ]
    return draft, sql, params


def _appended(draft: Message, row) -> Message | None:
    if row is None:
        return None
    split = 2 + len(Ticket._meta.concrete_fields)
    ticket = model_from_row(Ticket, row[2:split])
    ticket.customer = model_from_row(Customer, row[split:])
    draft.pk, draft.seq, draft.ticket = row[0], row[1], ticket
    draft._state.adding, draft._state.db = False, connection.alias
    draft.was_created = True
    return draft


@functools.cache
def _append_statement() -> tuple[str, list]:
    """The hot path's SQL (built once per process from the models' metadata) and the message fields
    whose values it takes as parameters, in order."""
    qn = connection.ops.quote_name
    ticket_fields = Ticket._meta.concrete_fields
    message_fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    from_t = {"ticket_id": "t.id", "seq": "t.last_message_seq"}
    values = [from_t.get(f.attname, f"%s::{f.cast_db_type(connection)}") for f in message_fields]
    sql = f"""
        WITH t AS (
            UPDATE {qn(Ticket._meta.db_table)}
            SET last_message_seq = last_message_seq + 1, last_customer_message_at = %s, updated_at = %s
            WHERE id = %s AND status IN (%s, %s) AND NOT EXISTS (
                SELECT 1 FROM {qn(Message._meta.db_table)} WHERE ticket_id = %s AND client_msg_id = %s AND %s <> ''
            )
            RETURNING {", ".join(qn(f.column) for f in ticket_fields)}
        ), m AS (
            INSERT INTO {qn(Message._meta.db_table)} ({", ".join(qn(f.column) for f in message_fields)})
            SELECT {", ".join(values)} FROM t
            RETURNING id, seq
        )
        SELECT m.id, m.seq, {select_columns(Ticket, "t")}, {select_columns(Customer, "c")}
        FROM m CROSS JOIN t JOIN {qn(Customer._meta.db_table)} c ON c.id = t.customer_id
    """  # noqa: S608 — identifiers from the models' metadata, every value a parameter
    return sql, [f for f in message_fields if f.attname not in from_t]


def message_email_kind(message: Message) -> str:
    """Which replies go out by email ("" for none):

    - ``email``: an agent's or the AI's public reply on an email ticket — the conversation itself;
    - ``chat``: an agent's public reply on a chat ticket (the chat page says "Replies also go to …" once the
      customer left an address). The AI's chat answers are not copied: they come within seconds of the
      customer's own message, while the customer is on the page, and a copy of every turn would be noise.
    """
    if message.is_internal:
        return ""
    channel = message.ticket.channel
    if channel == Ticket.Channel.EMAIL and message.author_kind in (AuthorKind.AGENT, AuthorKind.AI):
        return "email"
    if channel == Ticket.Channel.CHAT and message.author_kind == AuthorKind.AGENT:
        return "chat"
    return ""


def _message_effects(message: Message) -> None:
    """What every stored message schedules on commit: the live broadcast, the AI (customer messages)
    or an email (``message_email_kind``; a chat copy only to a customer with an address who has not
    unsubscribed), and the event for other apps."""
    ticket = message.ticket
    realtime.broadcast_on_commit(realtime.broadcast_message, message.pk, message)
    if message.author_kind == AuthorKind.CUSTOMER and not message.is_internal:
        tasks.ai_enqueue_on_commit(message_id=message.pk)
    elif kind := message_email_kind(message):
        customer = ticket.customer
        if kind == "email" or (customer.email and customer.email_unsubscribed_at is None):
            tasks.email_reply_on_commit(message_id=message.pk)
    events.publish(events.MESSAGE_CREATED, ticket_id=ticket.pk, message_id=message.pk, message=message)


_EFFECTS = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="message-effects")


async def _message_effects_async(message: Message) -> None:
    """``_message_effects`` for a message stored from the event loop (committed already): the broadcast,
    the AI enqueue and the event subscribers' Redis work (metrics, "does anyone subscribe") awaited on the
    loop; what needs the database handed to a thread of its own (``_EFFECTS``, so a burst of messages does
    not queue the sockets' database work behind it) without waiting for it. The AI enqueue is thus no
    later than the thread path's (after the broadcast), and if the process dies before it runs, the AI's
    stalled-message sweep enqueues the message, as when the broker is down."""
    await realtime.abroadcast_message(message)
    pushed = await tasks.ai_enqueue_async(message.pk)  # one LPUSH on the loop; Celery's producer if it failed
    announced = {"ticket_id": message.ticket_id, "message_id": message.pk, "message": message}
    rest = await events.apublish_committed(events.MESSAGE_CREATED, **announced)  # metrics, webhooks: Redis
    if rest or not pushed:
        loop = asyncio.get_running_loop()
        loop.run_in_executor(_EFFECTS, _customer_message_effects_in_thread, message, not pushed, rest)


def _customer_message_effects_in_thread(message: Message, enqueue: bool, subscribers: list) -> None:
    """After the broadcast, for a customer message the event loop stored and committed, what the loop
    could not do: the AI enqueue when its push failed, the event's ``subscribers`` that need the database
    (a webhook someone subscribes to), run now (no transaction to wait for)."""
    try:
        if enqueue:
            tasks.ai_enqueue(message.pk)
        events.deliver(
            subscribers,
            events.MESSAGE_CREATED,
            ticket_id=message.ticket_id,
            message_id=message.pk,
            message=message,
        )
    except Exception:
        logger.exception("the effects of message %s failed", message.pk)
    finally:
        close_old_connections()  # a subscriber that used the database gives its connection back to the pool


@transaction.atomic
def _message_create_locked(
    *,
    ticket: Ticket,
    author_kind: str,
    body: str,
    author_user: AbstractBaseUser | None,
    is_internal: bool,
    ai_confidence: float | None,
    citations: list | None,
    set_status: str | None,
    client_msg_id: str,
    locked: bool = False,
) -> Message:
    """Every other case, under the ticket's row lock: resends, transitions, first responses, notes."""
    if not locked:
        ticket = _locked(ticket)
    if client_msg_id:
        existing = Message.objects.filter(ticket=ticket, client_msg_id=client_msg_id).first()
        if existing is not None:
            existing.was_created = False
            return existing
    if ticket.status == Status.CLOSED:
        if ticket.merged_into_id:  # a page opened before the merge: its link now opens the merged ticket
            into = Ticket.objects.values_list("reference", flat=True).get(pk=ticket.merged_into_id)
            raise TicketRuleError(
                _("%(reference)s was merged into %(into)s: reload the page to write there.")
                % {"reference": ticket.reference, "into": into}
            )
        raise TicketRuleError(_("%(reference)s is closed; start a new conversation.") % {"reference": ticket.reference})
    now = timezone.now()
    seq = ticket.last_message_seq + 1
    message = Message.objects.create(
        ticket=ticket,
        created_at=now,
        seq=seq,
        author_kind=author_kind,
        author_user=author_user,
        body=body,
        is_internal=is_internal,
        ai_confidence=ai_confidence,
        citations=citations or [],
        client_msg_id=client_msg_id,
    )
    ticket.last_message_seq = seq
    changed = ["last_message_seq", "updated_at"]
    actor_kind = {
        AuthorKind.CUSTOMER: ActorKind.CUSTOMER,
        AuthorKind.AI: ActorKind.AI,
        AuthorKind.SYSTEM: ActorKind.SYSTEM,
    }.get(author_kind, ActorKind.AGENT)

    if author_kind == AuthorKind.CUSTOMER:
        ticket.last_customer_message_at = now
        changed.append("last_customer_message_at")
        if ticket.status in (Status.PENDING, Status.RESOLVED):
            changed += _transition(ticket, Status.OPEN, now=now, actor=None, actor_kind=ActorKind.CUSTOMER)
    elif author_kind in (AuthorKind.AGENT, AuthorKind.AI) and not is_internal:
        if ticket.first_response_at is None:
            ticket.first_response_at = now
            changed.append("first_response_at")
            if ticket.first_response_due_at and now > ticket.first_response_due_at:
                ticket.first_response_breached = True
                changed.append("first_response_breached")
            _event(
                ticket,
                TicketEvent.Kind.FIRST_RESPONSE,
                actor=author_user,
                actor_kind=actor_kind,
                to_value=author_kind,
            )
        if ticket.status == Status.NEW:
            changed += _transition(ticket, Status.OPEN, now=now, actor=author_user, actor_kind=actor_kind)

    if set_status and set_status != ticket.status:
        changed += _transition(ticket, set_status, now=now, actor=author_user, actor_kind=actor_kind)
    ticket.save(update_fields=sorted(set(changed)))
    _message_effects(message)
    message.was_created = True
    return message


# --- The state machine ----------------------------------------------------------------------------


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def _transition(
    ticket: Ticket,
    to_status: str,
    *,
    now: dt.datetime,
    actor: AbstractBaseUser | None,
    actor_kind: str | None = None,
    note: str = "",
) -> list[str]:
    """Apply one legal transition to a locked ticket (not saved); return the fields it changed. A move to
    ``resolved`` of an unrated email or API ticket schedules its CSAT survey email on commit."""
    from_status = ticket.status
    if to_status not in Status.values:
        raise TicketRuleError(f"Unknown status {to_status!r}.")
    if not can_transition(from_status, to_status):
        raise TicketRuleError(
            _("%(reference)s cannot go from %(from)s to %(to)s.")
            % {
                "reference": ticket.reference,
                "from": Status(from_status).label.lower(),
                "to": Status(to_status).label.lower(),
            }
        )
    changed = ["status"]
    if from_status == Status.PENDING:
        _sla_resume(ticket, now)
        changed += ["first_response_due_at", "resolution_due_at", "sla_paused_at", "sla_paused_minutes"]
    if to_status == Status.PENDING and ticket.sla_paused_at is None:
        ticket.sla_paused_at = now
        changed.append("sla_paused_at")
    if to_status == Status.RESOLVED:
        ticket.resolved_at = now
        changed.append("resolved_at")
        if ticket.channel in (Ticket.Channel.EMAIL, Ticket.Channel.API) and ticket.csat_score is None:
            tasks.csat_survey_on_commit(ticket_id=ticket.pk)  # the rating request by email (tickets.email.surveys)
        if ticket.resolution_due_at and now > ticket.resolution_due_at:
            ticket.resolution_breached = True
            changed.append("resolution_breached")
    if to_status == Status.CLOSED:
        ticket.closed_at = now
        changed.append("closed_at")
        if ticket.resolved_at is None:
            ticket.resolved_at = now
            changed.append("resolved_at")
    if from_status == Status.RESOLVED and to_status == Status.OPEN:
        ticket.reopen_count = F("reopen_count") + 1
        ticket.resolved_at = None
        changed += ["reopen_count", "resolved_at"]
    ticket.status = to_status
    _event(
        ticket,
        TicketEvent.Kind.STATUS_CHANGED,
        actor=actor,
        actor_kind=actor_kind,
        field="status",
        from_value=from_status,
        to_value=to_status,
        note=note,
    )
    return changed


@transaction.atomic
def ticket_change_status(
    *, ticket: Ticket, to_status: str, actor: AbstractBaseUser | None = None, note: str = ""
) -> Ticket:
    ticket = _locked(ticket)
    if ticket.status == to_status:
        return ticket
    changed = _transition(ticket, to_status, now=timezone.now(), actor=actor, note=note)
    ticket.save(update_fields=sorted({*changed, "updated_at"}))
    ticket.refresh_from_db()
    realtime.broadcast_on_commit(realtime.broadcast_status, ticket.pk)
    events.publish(events.TICKET_STATUS_CHANGED, ticket_id=ticket.pk, status=to_status)
    return ticket


def ticket_resolve(*, ticket: Ticket, actor: AbstractBaseUser | None = None, note: str = "") -> Ticket:
    return ticket_change_status(ticket=ticket, to_status=Status.RESOLVED, actor=actor, note=note)


def ticket_close(*, ticket: Ticket, actor: AbstractBaseUser | None = None, note: str = "") -> Ticket:
    return ticket_change_status(ticket=ticket, to_status=Status.CLOSED, actor=actor, note=note)


def ticket_reopen(*, ticket: Ticket, actor: AbstractBaseUser | None = None, note: str = "") -> Ticket:
    if ticket.status != Status.RESOLVED:
        raise TicketRuleError(
            _("Only resolved tickets can be reopened; %(reference)s is %(status)s.")
            % {"reference": ticket.reference, "status": ticket.get_status_display().lower()}
        )
    return ticket_change_status(ticket=ticket, to_status=Status.OPEN, actor=actor, note=note)


# --- CSAT -----------------------------------------------------------------------------------------


@transaction.atomic
def ticket_record_csat(
    *, ticket: Ticket, score: int, comment: str = "", actor: AbstractBaseUser | None = None
) -> Ticket:
    """The customer's rating (1–5) of a resolved or closed ticket; a later rating replaces it.

    ``actor``: the API key's user who relayed it (an integration that collected it); the rating is the
    customer's either way."""
    try:
        score = int(score)
    except (TypeError, ValueError) as exc:
        raise TicketRuleError(_("A rating is a whole number from 1 to 5.")) from exc
    if not 1 <= score <= 5:
        raise TicketRuleError(_("A rating is a whole number from 1 to 5."))
    comment = comment.replace("\x00", "").strip()
    if len(comment) > CSAT_COMMENT_MAX_LENGTH:
        raise TicketRuleError(
            _("A rating comment can be at most %(limit)s characters.")
            % {"limit": number_format(CSAT_COMMENT_MAX_LENGTH, force_grouping=True)}
        )
    ticket = _locked(ticket)
    if ticket.status not in (Status.RESOLVED, Status.CLOSED):
        raise TicketRuleError(_("A conversation can be rated once it is resolved."))
    previous = ticket.csat_score
    ticket.csat_score, ticket.csat_comment, ticket.csat_at = score, comment, timezone.now()
    ticket.save(update_fields=["csat_score", "csat_comment", "csat_at", "updated_at"])
    _event(
        ticket,
        TicketEvent.Kind.CSAT_RECORDED,
        actor=actor,
        actor_kind=ActorKind.CUSTOMER,
        field="csat_score",
        from_value=previous or "",
        to_value=score,
        note=comment[:500],
    )
    realtime.broadcast_on_commit(realtime.broadcast_status, ticket.pk)
    events.publish(events.TICKET_RATED, ticket_id=ticket.pk, score=score)
    return ticket
