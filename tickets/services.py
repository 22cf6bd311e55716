"""Every write to tickets: creation, messages, the status state machine, assignment, escalation,
triage corrections, CSAT and the SLA sweep. Each writes its ``TicketEvent`` in the same transaction.

Preconditions are checked here, not in views: a service raises ``TicketRuleError`` (a message a
person can act on) and changes nothing when a rule is broken.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from tickets import sla
from tickets.models import (
    ActorKind,
    AgentProfile,
    AIDraft,
    AIRun,
    Customer,
    Department,
    Message,
    Priority,
    SLATarget,
    Ticket,
    TicketEvent,
)

Status = Ticket.Status
AuthorKind = Message.AuthorKind

MESSAGE_MAX_LENGTH = getattr(settings, "MESSAGE_MAX_LENGTH", 10_000)
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
SUBJECT_MAX_LENGTH = Ticket._meta.get_field("subject").max_length

# The ticket state machine. ``closed`` is final: a closed ticket is archived with its figures, and a
# customer writing again starts a new ticket. ``resolved → open`` is a reopen.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.NEW: frozenset({Status.OPEN, Status.PENDING, Status.RESOLVED, Status.CLOSED}),
    Status.OPEN: frozenset({Status.PENDING, Status.RESOLVED, Status.CLOSED}),
    Status.PENDING: frozenset({Status.OPEN, Status.RESOLVED, Status.CLOSED}),
    Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}

# Hooks later pipelines register to react to committed changes (AI triage, live broadcast, webhooks).
# Each is called on commit as hook(kind, **payload); kept here so services stay the one place of writes.
_on_commit_hooks: list[Callable[..., None]] = []


class TicketRuleError(Exception):
    """A request that breaks a ticket rule. ``str(error)`` is safe to show to the person who asked."""


def register_on_commit_hook(hook: Callable[..., None]) -> None:
    if hook not in _on_commit_hooks:
        _on_commit_hooks.append(hook)


def _notify(kind: str, **payload: Any) -> None:
    for hook in list(_on_commit_hooks):
        transaction.on_commit(lambda hook=hook: hook(kind, **payload))


def _actor_kind(actor: AbstractBaseUser | None) -> str:
    return ActorKind.AGENT if actor is not None else ActorKind.SYSTEM


def _event(
    ticket: Ticket,
    kind: str,
    *,
    actor: AbstractBaseUser | None = None,
    actor_kind: str | None = None,
    field: str = "",
    from_value: Any = "",
    to_value: Any = "",
    note: str = "",
) -> TicketEvent:
    return TicketEvent.objects.create(
        ticket=ticket,
        kind=kind,
        field=field,
        from_value="" if from_value is None else str(from_value)[:255],
        to_value="" if to_value is None else str(to_value)[:255],
        note=note,
        actor=actor,
        actor_kind=actor_kind or _actor_kind(actor),
    )


def _locked(ticket: Ticket) -> Ticket:
    """Re-read the ticket under a row lock; every service decides on fresh state, never a stale copy.

    The customer comes along (unlocked) because the on-commit broadcast renders their name.
    """
    return Ticket.objects.select_for_update(of=("self",)).select_related("customer").get(pk=ticket.pk)


def _next_reference() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('tickets_ticket_reference_seq')")
        (number,) = cursor.fetchone()
    return f"SF-{number:06d}"


# --- SLA ------------------------------------------------------------------------------------------


def _sla_target(department: Department | None, priority: str) -> SLATarget | None:
    if department is None or department.sla_policy_id is None:
        return None
    return (
        SLATarget.objects.select_related("policy").filter(policy_id=department.sla_policy_id, priority=priority).first()
    )


def _apply_sla(ticket: Ticket) -> None:
    """Due times from the ticket's creation, its priority and queue, plus time credited while pending."""
    target = _sla_target(ticket.department, ticket.priority)
    if target is None:
        ticket.first_response_due_at = ticket.resolution_due_at = None
        return
    calendar = sla.BusinessCalendar.from_policy(target.policy)
    ticket.first_response_due_at = sla.add_minutes(ticket.created_at, target.first_response_minutes, calendar)
    ticket.resolution_due_at = sla.add_minutes(
        ticket.created_at, target.resolution_minutes + ticket.sla_paused_minutes, calendar
    )


def _sla_resume(ticket: Ticket, now: dt.datetime) -> None:
    """Leaving ``pending``: the time spent waiting on the customer does not count against resolution."""
    if ticket.sla_paused_at is None:
        return
    target = _sla_target(ticket.department, ticket.priority)
    calendar = sla.BusinessCalendar.from_policy(target.policy) if target else None
    ticket.sla_paused_minutes += round(sla.minutes_between(ticket.sla_paused_at, now, calendar))
    ticket.sla_paused_at = None
    _apply_sla(ticket)


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
        raise TicketRuleError("This conversation already has an email address.")
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
        raise TicketRuleError("A message must be text.")
    body = body.replace("\x00", "").strip()
    if not body:
        raise TicketRuleError("A message cannot be empty.")
    if len(body) > MESSAGE_MAX_LENGTH:
        raise TicketRuleError(
            f"A message can be at most {MESSAGE_MAX_LENGTH:,} characters; this one has {len(body):,}."
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
) -> Ticket:
    """Open a ticket with the customer's first message (seq 1) and its SLA clock started."""
    body = _clean_body(body)
    subject = " ".join(subject.replace("\x00", "").split())[:SUBJECT_MAX_LENGTH] or body.splitlines()[0][:80]
    if channel not in Ticket.Channel.values:
        raise TicketRuleError(f"Unknown channel {channel!r}.")
    if priority not in Priority.values:
        raise TicketRuleError(f"Unknown priority {priority!r}.")
    now = timezone.now()
    ticket = Ticket(
        reference=_next_reference(),
        subject=subject,
        customer=customer,
        channel=channel,
        priority=priority,
        department=department,
        created_at=now,
        last_customer_message_at=now,
        last_message_seq=1,
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
    _notify("ticket.created", ticket_id=ticket.pk, message_id=message.pk)
    return ticket


@transaction.atomic
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
    """
    if client_msg_id and not CLIENT_ID_RE.fullmatch(client_msg_id):
        raise TicketRuleError("The message id must be 1–64 letters, digits, '-' or '_'.")
    body = _clean_body(body)
    if author_kind not in AuthorKind.values:
        raise TicketRuleError(f"Unknown author kind {author_kind!r}.")
    if is_internal and author_kind == AuthorKind.CUSTOMER:
        raise TicketRuleError("Customers cannot write internal notes.")
    if author_kind == AuthorKind.AGENT and author_user is None:
        raise TicketRuleError("An agent message needs its author.")
    if ai_confidence is not None and not 0.0 <= ai_confidence <= 1.0:
        raise TicketRuleError("AI confidence must be between 0 and 1.")

    ticket = _locked(ticket)
    if client_msg_id:
        existing = Message.objects.filter(ticket=ticket, client_msg_id=client_msg_id).first()
        if existing is not None:
            existing.was_created = False
            return existing
    if ticket.status == Status.CLOSED:
        raise TicketRuleError(f"{ticket.reference} is closed; start a new conversation.")
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
    _notify("message.created", ticket_id=ticket.pk, message_id=message.pk, message=message)
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
    """Apply one legal transition to a locked ticket (not saved); return the fields it changed."""
    from_status = ticket.status
    if to_status not in Status.values:
        raise TicketRuleError(f"Unknown status {to_status!r}.")
    if not can_transition(from_status, to_status):
        raise TicketRuleError(
            f"{ticket.reference} cannot go from {Status(from_status).label.lower()} "
            f"to {Status(to_status).label.lower()}."
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
    _notify("ticket.status_changed", ticket_id=ticket.pk, status=to_status)
    return ticket


def ticket_resolve(*, ticket: Ticket, actor: AbstractBaseUser | None = None, note: str = "") -> Ticket:
    return ticket_change_status(ticket=ticket, to_status=Status.RESOLVED, actor=actor, note=note)


def ticket_close(*, ticket: Ticket, actor: AbstractBaseUser | None = None, note: str = "") -> Ticket:
    return ticket_change_status(ticket=ticket, to_status=Status.CLOSED, actor=actor, note=note)


def ticket_reopen(*, ticket: Ticket, actor: AbstractBaseUser | None = None, note: str = "") -> Ticket:
    if ticket.status != Status.RESOLVED:
        raise TicketRuleError(f"Only resolved tickets can be reopened; {ticket.reference} is {ticket.status}.")
    return ticket_change_status(ticket=ticket, to_status=Status.OPEN, actor=actor, note=note)


# --- Assignment, escalation, triage ---------------------------------------------------------------


def user_is_agent(user: AbstractBaseUser | None) -> bool:
    return bool(
        user is not None
        and user.is_active
        and user.is_staff
        and (user.is_superuser or user.groups.filter(name__in=["Agents", "Managers"]).exists())
    )


def user_is_manager(user: AbstractBaseUser | None) -> bool:
    """Superusers and active staff in the Managers group: analytics, API keys, the analytics summary."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and (user.is_superuser or (user.is_staff and user.groups.filter(name="Managers").exists()))
    )


def _agent_serves(user: AbstractBaseUser, department: Department | None) -> bool:
    if department is None or user.is_superuser:
        return True
    return department.agents.filter(user=user).exists() or user.has_perm("tickets.view_all_departments_ticket")


@transaction.atomic
def ticket_assign(
    *, ticket: Ticket, assignee: AbstractBaseUser | None, actor: AbstractBaseUser | None = None
) -> Ticket:
    """Assign (or, with ``assignee=None``, unassign). Assigning someone else needs the right to."""
    if assignee is not None and not user_is_agent(assignee):
        raise TicketRuleError(f"{assignee.get_username()} is not an active agent.")
    if actor is not None and assignee != actor and not actor.has_perm("tickets.assign_others_ticket"):
        raise TicketRuleError("You can assign tickets to yourself only.")
    ticket = _locked(ticket)
    if ticket.status == Status.CLOSED:
        raise TicketRuleError(f"{ticket.reference} is closed.")
    if assignee is not None and not _agent_serves(assignee, ticket.department):
        raise TicketRuleError(f"{assignee.get_username()} does not work the {ticket.department} queue.")
    if ticket.assignee_id == (assignee.pk if assignee else None):
        return ticket
    previous = ticket.assignee
    ticket.assignee = assignee
    ticket.save(update_fields=["assignee", "updated_at"])
    _event(
        ticket,
        TicketEvent.Kind.ASSIGNED,
        actor=actor,
        field="assignee",
        from_value=previous.get_username() if previous else "",
        to_value=assignee.get_username() if assignee else "",
    )
    _notify("ticket.assigned", ticket_id=ticket.pk, assignee_id=assignee.pk if assignee else None)
    return ticket


@transaction.atomic
def ticket_auto_assign(*, ticket: Ticket) -> AbstractBaseUser | None:
    """Give an unassigned ticket to the least-loaded available agent of its department.

    Load = the agent's active tickets (new, open, pending); agents at their capacity are skipped; ties
    go to whoever was assigned longest ago (round robin). The department's agent profiles are locked
    in a fixed order for the decision, so two workers assigning at once cannot both pick the same
    last free slot. Returns the assignee, or ``None`` when nobody is free (the ticket waits in the queue).
    """
    ticket = _locked(ticket)
    if ticket.assignee_id or ticket.department_id is None or not ticket.is_active:
        return ticket.assignee
    profiles = list(
        AgentProfile.objects.select_for_update(of=("self",))
        .filter(departments=ticket.department_id, is_available=True, user__is_active=True)
        .select_related("user")
        .order_by("pk")
    )
    profiles = [p for p in profiles if user_is_agent(p.user)]
    if not profiles:
        return None
    loads = dict(
        Ticket.objects.filter(assignee__in=[p.user_id for p in profiles], status__in=Ticket.ACTIVE_STATUSES)
        .values_list("assignee")
        .annotate(n=Count("pk"))
    )
    free = [p for p in profiles if loads.get(p.user_id, 0) < p.max_open_tickets]
    if not free:
        return None
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    chosen = min(free, key=lambda p: (loads.get(p.user_id, 0), p.last_assigned_at or epoch, p.pk))
    ticket_assign(ticket=ticket, assignee=chosen.user)
    AgentProfile.objects.filter(pk=chosen.pk).update(last_assigned_at=timezone.now())
    return chosen.user


@transaction.atomic
def ticket_escalate(
    *,
    ticket: Ticket,
    reason: str,
    actor: AbstractBaseUser | None = None,
    actor_kind: str | None = None,
    department: Department | None = None,
    priority: str | None = None,
) -> Ticket:
    """Hand the ticket to humans: flag it, record why, optionally re-route and raise its priority."""
    reason = " ".join(reason.split())[:255]
    if not reason:
        raise TicketRuleError("Say why the ticket is escalated.")
    ticket = _locked(ticket)
    if not ticket.is_active:
        raise TicketRuleError(f"{ticket.reference} is {ticket.status}; reopen it before escalating.")
    now = timezone.now()
    changed = ["escalated", "escalation_reason", "escalated_at", "needs_human", "updated_at"]
    ticket.escalated, ticket.escalation_reason, ticket.escalated_at, ticket.needs_human = True, reason, now, True
    _event(ticket, TicketEvent.Kind.ESCALATED, actor=actor, actor_kind=actor_kind, note=reason)
    changed += _change_routing(ticket, actor=actor, actor_kind=actor_kind, department=department, priority=priority)
    ticket.save(update_fields=sorted(set(changed)))
    _notify("ticket.escalated", ticket_id=ticket.pk, reason=reason)
    return ticket


def _change_routing(
    ticket: Ticket,
    *,
    actor: AbstractBaseUser | None,
    actor_kind: str | None,
    department: Department | None = None,
    priority: str | None = None,
) -> list[str]:
    changed: list[str] = []
    if priority is not None and priority != ticket.priority:
        if priority not in Priority.values:
            raise TicketRuleError(f"Unknown priority {priority!r}.")
        _event(
            ticket,
            TicketEvent.Kind.PRIORITY_CHANGED,
            actor=actor,
            actor_kind=actor_kind,
            field="priority",
            from_value=ticket.priority,
            to_value=priority,
        )
        ticket.priority = priority
        changed.append("priority")
    if department is not None and department.pk != ticket.department_id:
        _event(
            ticket,
            TicketEvent.Kind.DEPARTMENT_CHANGED,
            actor=actor,
            actor_kind=actor_kind,
            field="department",
            from_value=ticket.department or "",
            to_value=department,
        )
        ticket.department = department
        changed.append("department")
        if ticket.assignee_id and not _agent_serves(ticket.assignee, department):
            _event(
                ticket,
                TicketEvent.Kind.ASSIGNED,
                actor=actor,
                actor_kind=actor_kind,
                field="assignee",
                from_value=ticket.assignee.get_username(),
                to_value="",
                note="Assignee does not work the new queue.",
            )
            ticket.assignee = None
            changed.append("assignee")
    if changed:
        _apply_sla(ticket)
        changed += ["first_response_due_at", "resolution_due_at"]
    return changed


TRIAGE_TEXT_FIELDS = ("category", "sentiment", "language", "ai_summary")


@transaction.atomic
def ticket_update_triage(
    *,
    ticket: Ticket,
    actor: AbstractBaseUser | None = None,
    actor_kind: str | None = None,
    **fields: Any,
) -> Ticket:
    """Change triage fields (category, sentiment, language, AI summary, priority, department).

    Each change is an event; a change by an agent to what the AI set is the label the triage model
    later learns from. Priority or department changes recompute the SLA due times.
    """
    unknown = set(fields) - {*TRIAGE_TEXT_FIELDS, "priority", "department"}
    if unknown:
        raise TicketRuleError(f"Not triage fields: {', '.join(sorted(unknown))}.")
    ticket = _locked(ticket)
    changed: list[str] = []
    for name in TRIAGE_TEXT_FIELDS:
        if name not in fields or fields[name] is None:
            continue
        value = str(fields[name]).strip()
        if name == "sentiment" and value and value not in Ticket.Sentiment.values:
            raise TicketRuleError(f"Unknown sentiment {value!r}.")
        if value != getattr(ticket, name):
            if name != "ai_summary":
                _event(
                    ticket,
                    TicketEvent.Kind.TRIAGE_CHANGED,
                    actor=actor,
                    actor_kind=actor_kind,
                    field=name,
                    from_value=getattr(ticket, name),
                    to_value=value,
                )
            setattr(ticket, name, value)
            changed.append(name)
    changed += _change_routing(
        ticket,
        actor=actor,
        actor_kind=actor_kind,
        department=fields.get("department"),
        priority=fields.get("priority"),
    )
    if changed:
        ticket.save(update_fields=sorted({*changed, "updated_at"}))
        _notify("ticket.updated", ticket_id=ticket.pk, fields=sorted(set(changed)))
    return ticket


@transaction.atomic
def ticket_apply_ai_triage(*, ticket: Ticket, details: dict, **fields: Any) -> Ticket:
    """The AI's triage: the fields it may set (see ``tickets.ai.pipeline._apply_triage``) and the full
    details (confidences, signals, model version) kept on the ticket for agents and analytics."""
    ticket = ticket_update_triage(ticket=ticket, actor_kind=ActorKind.AI, **fields)
    Ticket.objects.filter(pk=ticket.pk).update(triage=details)
    ticket.triage = details
    _event(
        ticket,
        TicketEvent.Kind.AI_TRIAGED,
        actor_kind=ActorKind.AI,
        to_value=details.get("category", ""),
        note=f"{details.get('provider', '')} {details.get('model', '')}".strip(),
    )
    return ticket


HANDOVER_NOTICE = "I've passed this to our {team} team; a person will reply here as soon as possible."


@transaction.atomic
def ai_reply_record(
    *,
    ticket: Ticket,
    in_reply_to: Message,
    body: str,
    citations: list,
    confidence: float,
    provider: str,
    model: str,
    gate: dict,
    send: bool,
    escalation_reason: str,
    escalation_priority: str | None = None,
) -> str:
    """Store the AI's answer to ``in_reply_to`` once, then send it or hand the ticket to a human.

    Sent: an AI message with its sources (pushed live on commit). Not sent: the draft waits for an
    agent, the ticket is escalated (once) with the reason and assigned if someone is free, and the
    customer is told a person will reply. Returns ``sent``, ``escalated``, ``done`` (already
    recorded: a rerun) or ``closed``.
    """
    try:
        with transaction.atomic():
            draft = AIDraft.objects.create(
                ticket=ticket,
                in_reply_to=in_reply_to,
                body=body,
                citations=citations,
                confidence=max(0.0, min(1.0, confidence)),
                provider=provider,
                model=model,
                gate=gate,
                status=AIDraft.Status.SENT if send else AIDraft.Status.PENDING,
            )
    except IntegrityError:
        return "done"
    ticket = _locked(ticket)
    now = timezone.now()
    if ticket.status == Status.CLOSED:
        AIDraft.objects.filter(pk=draft.pk).update(status=AIDraft.Status.DISCARDED, decided_at=now)
        return "closed"
    if send:
        message = message_create(
            ticket=ticket,
            author_kind=AuthorKind.AI,
            body=body,
            ai_confidence=draft.confidence,
            citations=citations,
        )
        AIDraft.objects.filter(pk=draft.pk).update(sent_message=message, decided_at=now)
        _event(ticket, TicketEvent.Kind.AI_ANSWERED, actor_kind=ActorKind.AI, note=f"confidence {confidence:.2f}")
        return "sent"
    _event(ticket, TicketEvent.Kind.AI_DRAFTED, actor_kind=ActorKind.AI, note=escalation_reason)
    if not ticket.escalated:
        ticket = ticket_escalate(
            ticket=ticket, reason=escalation_reason, actor_kind=ActorKind.AI, priority=escalation_priority
        )
        team = ticket.department.name if ticket.department else "support"
        message_create(ticket=ticket, author_kind=AuthorKind.SYSTEM, body=HANDOVER_NOTICE.format(team=team))
    elif escalation_priority:
        ticket = ticket_update_triage(ticket=ticket, actor_kind=ActorKind.AI, priority=escalation_priority)
    ticket_auto_assign(ticket=ticket)
    _notify("ai.drafted", ticket_id=ticket.pk, draft_id=draft.pk)
    return "escalated"


@transaction.atomic
def ai_draft_use(*, draft: AIDraft, actor: AbstractBaseUser, body: str | None = None) -> Message:
    """An agent sends the AI's draft (as written, or edited) as their own reply, with its sources."""
    locked = AIDraft.objects.select_for_update().get(pk=draft.pk)
    if locked.status != AIDraft.Status.PENDING:
        raise TicketRuleError("This draft was already used or discarded.")
    message = message_create(
        ticket=locked.ticket,
        author_kind=AuthorKind.AGENT,
        author_user=actor,
        body=locked.body if body is None else body,
        citations=locked.citations,
    )
    AIDraft.objects.filter(pk=locked.pk).update(
        status=AIDraft.Status.USED, used_by=actor, sent_message=message, decided_at=timezone.now()
    )
    return message


@transaction.atomic
def ai_draft_discard(*, draft: AIDraft, actor: AbstractBaseUser) -> None:
    if not AIDraft.objects.filter(pk=draft.pk, status=AIDraft.Status.PENDING).update(
        status=AIDraft.Status.DISCARDED, used_by=actor, decided_at=timezone.now()
    ):
        raise TicketRuleError("This draft was already used or discarded.")


# --- CSAT -----------------------------------------------------------------------------------------


@transaction.atomic
def ticket_record_csat(*, ticket: Ticket, score: int, comment: str = "") -> Ticket:
    """The customer's rating (1–5) of a resolved or closed ticket; a later rating replaces it."""
    try:
        score = int(score)
    except (TypeError, ValueError) as exc:
        raise TicketRuleError("A rating is a whole number from 1 to 5.") from exc
    if not 1 <= score <= 5:
        raise TicketRuleError("A rating is a whole number from 1 to 5.")
    comment = comment.replace("\x00", "").strip()
    if len(comment) > 2000:
        raise TicketRuleError("A rating comment can be at most 2,000 characters.")
    ticket = _locked(ticket)
    if ticket.status not in (Status.RESOLVED, Status.CLOSED):
        raise TicketRuleError("A conversation can be rated once it is resolved.")
    previous = ticket.csat_score
    ticket.csat_score, ticket.csat_comment, ticket.csat_at = score, comment, timezone.now()
    ticket.save(update_fields=["csat_score", "csat_comment", "csat_at", "updated_at"])
    _event(
        ticket,
        TicketEvent.Kind.CSAT_RECORDED,
        actor_kind=ActorKind.CUSTOMER,
        field="csat_score",
        from_value=previous or "",
        to_value=score,
        note=comment[:500],
    )
    _notify("ticket.rated", ticket_id=ticket.pk, score=score)
    return ticket


# --- SLA sweep (beat) -----------------------------------------------------------------------------


def ticket_sla_sweep(*, now: dt.datetime | None = None) -> int:
    """Flag tickets whose SLA clock ran out, once each, with an event. Idempotent; returns flags set.

    The flag is set by compare-and-set, so two sweeps running at once (two beats by mistake) still
    write one event per breach.
    """
    now = now or timezone.now()
    flagged = 0
    overdue_first = Ticket.objects.filter(
        first_response_breached=False,
        first_response_at__isnull=True,
        first_response_due_at__lt=now,
        status__in=Ticket.ACTIVE_STATUSES,
    ).values_list("pk", flat=True)
    overdue_resolution = Ticket.objects.filter(
        resolution_breached=False,
        resolution_due_at__lt=now,
        sla_paused_at__isnull=True,
        status__in=[Status.NEW, Status.OPEN],
    ).values_list("pk", flat=True)
    for field, pks in (("first_response_breached", overdue_first), ("resolution_breached", overdue_resolution)):
        for pk in list(pks[:1000]):
            with transaction.atomic():
                if Ticket.objects.filter(pk=pk, **{field: False}).update(**{field: True}) == 1:
                    ticket = Ticket.objects.get(pk=pk)
                    what = field.removesuffix("_breached")
                    _event(ticket, TicketEvent.Kind.SLA_BREACHED, field=what)
                    _notify("ticket.sla_breached", ticket_id=pk, field=field)
                    if not ticket.escalated:
                        label = "first response" if what == "first_response" else "resolution"
                        ticket_escalate(ticket=ticket, reason=f"SLA breached: {label} overdue")
                    flagged += 1
    return flagged


# --- AI runs --------------------------------------------------------------------------------------


def ai_run_begin(
    *,
    key: str,
    kind: str,
    provider: str,
    ticket: Ticket | None = None,
    message: Message | None = None,
    model: str = "",
    prompt_version: str = "",
) -> tuple[AIRun, bool]:
    """Claim the run identified by ``key``; ``(run, False)`` means it already exists: do not call again.

    The unique key makes a retried or duplicated task a no-op instead of a second paid call.
    """
    try:
        with transaction.atomic():
            run = AIRun.objects.create(
                key=key,
                kind=kind,
                provider=provider,
                ticket=ticket,
                message=message,
                model=model,
                prompt_version=prompt_version,
            )
        return run, True
    except IntegrityError:
        return AIRun.objects.get(key=key), False


def ai_run_reclaim(*, run: AIRun) -> bool:
    """Take over a run that never finished (its worker died) or failed, to try once more.

    A succeeded run is never reclaimed (its result is reused). Two workers on the same message are
    kept apart by the pipeline's per-message lock, not here."""
    return (
        AIRun.objects.filter(pk=run.pk, status__in=[AIRun.Status.PENDING, AIRun.Status.FAILED]).update(
            status=AIRun.Status.PENDING, finished_at=None
        )
        == 1
    )


@transaction.atomic
def ai_run_finish(
    *,
    run: AIRun,
    succeeded: bool,
    tokens_in: int = 0,
    tokens_out: int = 0,
    cost: Decimal | float | str = 0,
    latency_ms: int | None = None,
    error: str = "",
    model: str | None = None,
    attempts: int = 1,
    meta: dict | None = None,
) -> AIRun:
    """Record the outcome once (a pending run only) and add its cost to the ticket's AI cost.

    ``meta`` keeps what the run produced (e.g. the triage fields), so a rerun of the same work reuses
    it instead of paying for the call again."""
    cost = Decimal(str(cost))
    updated = AIRun.objects.filter(pk=run.pk, status=AIRun.Status.PENDING).update(
        status=AIRun.Status.SUCCEEDED if succeeded else AIRun.Status.FAILED,
        tokens_in=F("tokens_in") + tokens_in,
        tokens_out=F("tokens_out") + tokens_out,
        cost=F("cost") + cost,
        latency_ms=latency_ms,
        error=error[:5000],
        attempts=F("attempts") + attempts,
        finished_at=timezone.now(),
        **({"model": model} if model else {}),
        **({"meta": meta} if meta is not None else {}),
    )
    if updated and run.ticket_id and cost:
        Ticket.objects.filter(pk=run.ticket_id).update(ai_cost=F("ai_cost") + cost)
    run.refresh_from_db()
    if updated:  # observability (supportflow.metrics): once per finished run, with this finish's cost
        _notify(
            "ai_run.finished",
            run_id=run.pk,
            ticket_id=run.ticket_id,
            run_kind=run.kind,
            provider=run.provider,
            status=run.status,
            latency_ms=run.latency_ms,
            cost=cost,
        )
    return run


# --- AI housekeeping (beat) -----------------------------------------------------------------------


def ai_acknowledge(*, ticket: Ticket, in_reply_to: Message, gate: dict) -> str:
    """Record that a customer message needed no answer ("thanks, that worked"): the decision is kept
    like any other, so the stalled-message sweep knows it was handled."""
    try:
        with transaction.atomic():
            AIDraft.objects.create(
                ticket=ticket,
                in_reply_to=in_reply_to,
                body="",
                confidence=0.0,
                provider="local",
                gate={**gate, "acknowledged": True},
                status=AIDraft.Status.DISCARDED,
                decided_at=timezone.now(),
            )
    except IntegrityError:
        return "done"
    return "acknowledged"


STALLED_AFTER = dt.timedelta(minutes=3)
STALLED_WINDOW = dt.timedelta(days=1)
MAX_REQUEUES = 3


def ai_requeue_stalled(*, now: dt.datetime | None = None) -> int:
    """Find the latest customer message of each active ticket that has no AI decision although it is
    older than a worker could take, and enqueue it again; after ``MAX_REQUEUES`` give it to a human.

    The broker redelivers a task whose worker was killed only after its visibility timeout (1 h); this
    sweep (every minute) brings that down to minutes. A message being worked on holds the pipeline's
    lock and is skipped; the pipeline is idempotent, so a requeue never sends twice.
    """
    from django.core.cache import cache

    now = now or timezone.now()
    latest = (
        Message.objects.filter(
            author_kind=AuthorKind.CUSTOMER,
            is_internal=False,
            created_at__lt=now - STALLED_AFTER,
            created_at__gt=now - STALLED_WINDOW,
            ticket__status__in=Ticket.ACTIVE_STATUSES,
            ai_draft__isnull=True,
        )
        .order_by("ticket_id", "-seq")
        .distinct("ticket_id")
        .values_list("pk", "ticket_id", "seq")
    )
    requeued = 0
    for message_id, ticket_id, seq in list(latest[:500]):
        if Message.objects.filter(ticket_id=ticket_id, author_kind=AuthorKind.CUSTOMER, seq__gt=seq).exists():
            continue
        if cache.get(f"sf:ai:message:{message_id}") is not None:
            continue
        attempts = cache.get_or_set(f"sf:ai:requeued:{message_id}", 0, timeout=2 * 86400)
        if attempts >= MAX_REQUEUES:
            ticket = Ticket.objects.get(pk=ticket_id)
            if not ticket.escalated:
                ticket_escalate(ticket=ticket, reason="The AI could not process this message", actor_kind=ActorKind.AI)
                ticket_auto_assign(ticket=ticket)
            continue
        cache.incr(f"sf:ai:requeued:{message_id}")
        from tickets.tasks import process_message

        process_message.delay(message_id)
        requeued += 1
    return requeued


def ticket_auto_close(*, now: dt.datetime | None = None) -> int:
    """Close tickets resolved for ``AUTO_CLOSE_RESOLVED_DAYS`` (0 = never). Each in its own transaction,
    re-checked under the row lock, so a customer reopening at the same moment wins."""
    days = getattr(settings, "AUTO_CLOSE_RESOLVED_DAYS", 7)
    if days <= 0:
        return 0
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=days)
    closed = 0
    for pk in list(
        Ticket.objects.filter(status=Status.RESOLVED, resolved_at__lt=cutoff).values_list("pk", flat=True)[:2000]
    ):
        with transaction.atomic():
            ticket = _locked(Ticket(pk=pk))
            if ticket.status != Status.RESOLVED or ticket.resolved_at is None or ticket.resolved_at >= cutoff:
                continue
            changed = _transition(ticket, Status.CLOSED, now=now, actor=None, note=f"Resolved for {days} days")
            ticket.save(update_fields=sorted({*changed, "updated_at"}))
            _event(ticket, TicketEvent.Kind.AUTO_CLOSED, note=f"Resolved for {days} days")
            _notify("ticket.status_changed", ticket_id=pk, status=Status.CLOSED)
            closed += 1
    return closed


def retention_purge(*, now: dt.datetime | None = None) -> dict:
    """Apply the retention settings: AI call details (``RETENTION_AI_DETAILS_DAYS``) and closed
    tickets with everything in them (``RETENTION_CLOSED_TICKETS_DAYS``, 0 = keep). Idempotent."""
    now = now or timezone.now()
    out = {"ai_runs_cleared": 0, "drafts_deleted": 0, "tickets_deleted": 0}
    details_days = getattr(settings, "RETENTION_AI_DETAILS_DAYS", 90)
    if details_days > 0:
        cutoff = now - dt.timedelta(days=details_days)
        out["ai_runs_cleared"] = (
            AIRun.objects.filter(created_at__lt=cutoff).exclude(meta={}, error="").update(meta={}, error="")
        )
        out["drafts_deleted"] = AIDraft.objects.filter(
            created_at__lt=cutoff,
            status__in=[AIDraft.Status.PENDING, AIDraft.Status.DISCARDED],
            ticket__status=Status.CLOSED,
        ).delete()[0]
    ticket_days = getattr(settings, "RETENTION_CLOSED_TICKETS_DAYS", 0)
    if ticket_days > 0:
        cutoff = now - dt.timedelta(days=ticket_days)
        for pk in list(
            Ticket.objects.filter(status=Status.CLOSED, closed_at__lt=cutoff).values_list("pk", flat=True)[:1000]
        ):
            with transaction.atomic():
                Ticket.objects.filter(pk=pk).delete()
                out["tickets_deleted"] += 1
    return out


def department_notify_escalation(*, ticket_id: int, reason: str) -> bool:
    """Send the escalation notice to the department's address, if it has one. The subject and body
    are built from stored fields; header values never contain line breaks (no header injection)."""
    from django.core.mail import send_mail

    ticket = Ticket.objects.select_related("department", "customer").filter(pk=ticket_id).first()
    if ticket is None or ticket.department is None or not ticket.department.email:
        return False
    subject = " ".join(f"[{ticket.reference}] Escalated: {ticket.subject}".split())[:200]
    link = f"{settings.SITE_URL.rstrip('/')}/admin/tickets/ticket/{ticket.pk}/change/" if settings.SITE_URL else ""
    body = "\n".join(
        line
        for line in (
            f"{ticket.reference} needs a person in {ticket.department.name}.",
            f"Reason: {reason}",
            f"Priority: {ticket.priority}",
            f"Summary: {ticket.ai_summary}" if ticket.ai_summary else "",
            link,
        )
        if line
    )
    send_mail(subject, body, None, [ticket.department.email])
    return True


# --- knowledge-base passages and the injection guard ---------------------------------------------


def kb_passages_scan(*, chunks: dict[int, str]) -> dict[int, bool]:
    """The guard's verdict on knowledge-base passages (``{chunk_id: text}``), stored on each chunk so
    every worker scans a passage once, ever. One batched embedding call; returns ``{chunk_id: flagged}``."""
    from knowledge.models import Chunk
    from tickets.ai import guard

    ids = list(chunks)
    verdicts = guard.scan_many([chunks[i] for i in ids], source="passage")
    rows = [
        Chunk(pk=chunk_id, injection_flagged=verdict.flagged, injection_score=verdict.score)
        for chunk_id, verdict in zip(ids, verdicts, strict=True)
    ]
    Chunk.objects.bulk_update(rows, ["injection_flagged", "injection_score"])
    return {row.pk: row.injection_flagged for row in rows}


def kb_passages_flags(*, chunks: dict[int, str]) -> dict[int, bool]:
    """``{chunk_id: flagged}`` for retrieved passages: stored verdicts, scanning only the new ones."""
    from knowledge.models import Chunk

    known = dict(
        Chunk.objects.filter(pk__in=list(chunks), injection_flagged__isnull=False).values_list(
            "pk", "injection_flagged"
        )
    )
    todo = {pk: text for pk, text in chunks.items() if pk not in known}
    if todo:
        known.update(kb_passages_scan(chunks=todo))
    return known


def kb_passages_scan_pending(*, limit: int | None = 500, batch: int = 32, namespace: str | None = None) -> int:
    """Scan passages never scanned (new or re-indexed articles) ahead of the first question that
    retrieves them (beat, housekeeping queue): the customer-visible ones, or a whole ``namespace``
    (an evaluation's copy). Returns how many were scanned."""
    from knowledge.models import Chunk

    scope = Chunk.objects.filter(is_public=True) if namespace is None else Chunk.objects.filter(namespace=namespace)
    pending = list(scope.filter(injection_flagged__isnull=True).order_by("pk").values_list("pk", "text")[:limit])
    for start in range(0, len(pending), batch):
        kb_passages_scan(chunks=dict(pending[start : start + batch]))
    return len(pending)
