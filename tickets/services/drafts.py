"""The doors the AI wing leaves through: its triage, its answer (sent, or a draft with a handover),
a message that needed no answer, and an agent using or discarding a draft."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from tickets import events, languages, realtime, reply_estimates, tasks
from tickets.models import ActorKind, AIDraft, Message, Ticket, TicketEvent
from tickets.services.common import AuthorKind, Status, TicketRuleError, _event, _locked, batched_events
from tickets.services.conversations import message_create
from tickets.services.queues import ticket_auto_assign, ticket_escalate, ticket_update_triage

logger = logging.getLogger(__name__)


@transaction.atomic
def ticket_apply_ai_triage(*, ticket: Ticket, details: dict, **fields: Any) -> Ticket:
    """The AI's triage: the fields it may set (see ``tickets.ai.triage.step.triage_apply``) and the full
    details (confidences, signals, model version) kept on the ticket for agents and analytics."""
    with batched_events():
        ticket = ticket_update_triage(ticket=ticket, actor_kind=ActorKind.AI, details=details, **fields)
        _event(
            ticket,
            TicketEvent.Kind.AI_TRIAGED,
            actor_kind=ActorKind.AI,
            to_value=details.get("category", ""),
            note=f"{details.get('provider', '')} {details.get('model', '')}".strip(),
        )
    return ticket


# Stored as the customer reads it: in the conversation's language (``tickets.languages``) when it is written.
HANDOVER_NOTICE = gettext_lazy("I've passed this to our {team} team; a person will reply here as soon as possible.")
HANDOVER_NOTICE_BY = gettext_lazy("I've passed this to our {team} team; a person will reply here {when}.")
HANDOVER_TEAM = gettext_lazy("support")  # the team named when the ticket has no department


def _promise_reply(ticket: Ticket) -> str:
    """Store when a person will reply (``tickets.reply_estimates``); the phrase in the active language."""
    now = timezone.now()
    try:
        promised = reply_estimates.reply_estimate(ticket=ticket, now=now)
    except ValueError:  # a business calendar without a single open hour (the policy form refuses one)
        logger.warning("no reply time promised for %s: its SLA calendar has no business hours", ticket.reference)
        return ""
    if promised is None:
        return ""
    Ticket.objects.filter(pk=ticket.pk).update(reply_promised_at=promised)
    ticket.reply_promised_at = promised
    return reply_estimates.reply_estimate_phrase(promised=promised, zone=reply_estimates.display_zone(ticket), now=now)


def hand_over(*, ticket: Ticket, reason: str, actor_kind: str, priority: str | None = None) -> Ticket:
    """Escalate (once) with the reason, tell the customer a person will reply and by when (an email ticket's
    customer by email too), and assign someone free. Already escalated: only a higher priority is applied.
    The caller holds the transaction."""
    if not ticket.escalated:
        ticket = ticket_escalate(ticket=ticket, reason=reason, actor_kind=actor_kind, priority=priority)
        with languages.speaking(ticket):
            team = ticket.department.name if ticket.department else str(HANDOVER_TEAM)
            when = _promise_reply(ticket)
            notice = HANDOVER_NOTICE_BY.format(team=team, when=when) if when else HANDOVER_NOTICE.format(team=team)
        message_create(ticket=ticket, author_kind=AuthorKind.SYSTEM, body=notice)
        realtime.broadcast_on_commit(realtime.broadcast_status, ticket.pk)  # "a person will reply here"
        if ticket.channel == Ticket.Channel.EMAIL:
            tasks.handover_ack_on_commit(ticket_id=ticket.pk)
    elif priority:
        ticket = ticket_update_triage(ticket=ticket, actor_kind=actor_kind, priority=priority)
    ticket_auto_assign(ticket=ticket)
    return ticket


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
    escalation_reason: str = "",
    escalation_priority: str | None = None,
    kind: str = "answer",
    conversation: dict | None = None,
) -> str:
    """Store the AI's reply to ``in_reply_to`` once, then send it or hand the ticket to a human.

    ``kind``: ``answer`` (from the knowledge base: its confidence goes on the message, the customer can
    say whether it helped), ``act`` (a greeting, thanks or small-talk reply) or ``clarify`` (a clarifying
    question) — the last two carry no confidence. Sent: an AI message with its sources (pushed live on
    commit). Not sent: the draft waits for an agent, the ticket is escalated (once) with the reason and
    assigned if someone is free, and the customer is told a person will reply. ``conversation`` (the
    assistant's memory of the conversation) is stored with the decision, so a rerun cannot count a turn
    twice. Returns ``sent``, ``replied`` (act), ``clarified``, ``escalated``, ``drafted`` (not sent, no
    handover: an agent opened the ticket for the customer), ``done`` (already recorded: a rerun) or ``closed``.
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
                gate={**gate, "reply": kind},
                status=AIDraft.Status.SENT if send else AIDraft.Status.PENDING,
            )
    except IntegrityError:
        return "done"
    ticket = _locked(ticket)
    now = timezone.now()
    if ticket.status == Status.CLOSED:
        AIDraft.objects.filter(pk=draft.pk).update(status=AIDraft.Status.DISCARDED, decided_at=now)
        return "closed"
    if conversation is not None:
        Ticket.objects.filter(pk=ticket.pk).update(conversation=conversation)
        ticket.conversation = conversation
    if send:
        with batched_events():  # the reply's status change and first response, and "answered"
            message = message_create(
                ticket=ticket,
                author_kind=AuthorKind.AI,
                body=body,
                ai_confidence=draft.confidence if kind == "answer" else None,
                citations=citations,
                locked=True,  # read under its lock just above, in this transaction
            )
            AIDraft.objects.filter(pk=draft.pk).update(sent_message=message, decided_at=now)
            note = f"confidence {confidence:.2f}" if kind == "answer" else kind
            _event(ticket, TicketEvent.Kind.AI_ANSWERED, actor_kind=ActorKind.AI, note=note)
        return {"answer": "sent", "act": "replied", "clarify": "clarified"}.get(kind, "sent")
    _event(ticket, TicketEvent.Kind.AI_DRAFTED, actor_kind=ActorKind.AI, note=escalation_reason)
    opened_by_agent = ticket.opened_by_id is not None  # the agent who opened it for the customer has it
    if not opened_by_agent:
        hand_over(ticket=ticket, reason=escalation_reason, actor_kind=ActorKind.AI, priority=escalation_priority)
    realtime.broadcast_on_commit(realtime.broadcast_ai_panel, ticket.pk)
    events.publish(events.AI_DRAFTED, ticket_id=ticket.pk, draft_id=draft.pk)
    return "drafted" if opened_by_agent else "escalated"


@transaction.atomic
def ai_draft_use(*, draft: AIDraft, actor: AbstractBaseUser, body: str | None = None) -> Message:
    """An agent sends the AI's draft (as written, or edited) as their own reply, with its sources."""
    locked = AIDraft.objects.select_for_update().get(pk=draft.pk)
    if locked.status != AIDraft.Status.PENDING:
        raise TicketRuleError(gettext("This draft was already used or discarded."))
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
        raise TicketRuleError(gettext("This draft was already used or discarded."))


def ai_acknowledge(*, ticket: Ticket, in_reply_to: Message, gate: dict, conversation: dict | None = None) -> str:
    """Record that a customer message needed no reply from the AI (a "thanks" to an agent who is on the
    conversation): the decision is kept like any other, so the stalled-message sweep knows it was handled."""
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
            if conversation is not None:
                Ticket.objects.filter(pk=ticket.pk).update(conversation=conversation)
    except IntegrityError:
        return "done"
    return "acknowledged"
