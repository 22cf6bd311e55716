"""One customer message through the AI: guard → triage → route → retrieve → answer → gate → send or hand over.

This module orchestrates only; each step lives beside it: ``guard/`` (input and output checks),
``triage/step.py`` (triage and routing), ``conversation.py`` (acts), ``answer.py`` + ``passages.py``
(retrieval and passage verdicts), ``reply.py`` (the answer), ``rules.py`` (escalation), ``runs.py``.

``process_message`` is what the Celery task calls. It is idempotent: the answer is keyed on the
message (``AIDraft.in_reply_to`` is unique), each AI call on an ``AIRun`` key whose stored result a
rerun reuses, so a duplicated or redelivered task never sends a second reply or pays twice. A
per-message lock keeps two workers off the same message at the same time. No transaction or row
lock is held while a model runs; the writes at the end are one short transaction.

Untrusted text (the customer's, an email's, a retrieved passage) never decides routing by itself:
a message with injection signals is triaged by the local classifier only (it does not follow
instructions) and goes to a human; a message that asks in words for a priority, queue or category
keeps the local classifier's routing; an LLM's triage is limited to the known labels.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

from django.conf import settings
from django.core.cache import cache

from knowledge.models import DEFAULT_NAMESPACE
from supportflow.logs import set_log_context
from tickets import realtime, services
from tickets.ai import answer as answering
from tickets.ai import rules
from tickets.ai.conversation import is_acknowledgement
from tickets.ai.passages import kb_passages_flags
from tickets.ai.reply import holding_draft, reply_compose
from tickets.ai.triage.step import triage_apply, triage_message
from tickets.models import AIDraft, Department, Message, Ticket

logger = logging.getLogger(__name__)

AuthorKind = Message.AuthorKind


# --- the service -------------------------------------------------------------------------------------


def process_message(*, message_id: int, namespace: str = DEFAULT_NAMESPACE) -> str:
    """Triage and answer (or hand over) one customer message. Returns the outcome, e.g. ``sent``."""
    lock = f"sf:ai:message:{message_id}"
    if not cache.add(lock, "1", timeout=getattr(settings, "AI_MESSAGE_LOCK_SECONDS", 150)):
        return "busy"
    try:
        return _process(message_id, namespace)
    finally:
        cache.delete(lock)


def _process(message_id: int, namespace: str) -> str:
    message = Message.objects.select_related("ticket__customer", "ticket__department").filter(pk=message_id).first()
    if message is None or message.author_kind != AuthorKind.CUSTOMER or message.is_internal:
        return "skipped"
    if AIDraft.objects.filter(in_reply_to=message).exists():
        return "done"
    ticket = message.ticket
    set_log_context(ticket=ticket.reference)
    if ticket.status == Ticket.Status.CLOSED:
        return "closed"
    if ticket.messages.filter(author_kind=AuthorKind.CUSTOMER, seq__gt=message.seq).exists():
        return "superseded"  # the newer message's own task answers the conversation, this one included

    started = time.monotonic()
    stages: dict[str, int] = {}
    _status(ticket.pk, working=True)
    try:
        turns = list(
            ticket.messages.filter(author_kind=AuthorKind.CUSTOMER, is_internal=False, seq__lte=message.seq)
            .order_by("-seq")
            .values_list("body", flat=True)[: answering.MAX_TURNS]
        )[::-1]
        query = answering.conversation_query(turns)

        t = time.monotonic()
        from tickets.ai import guard

        verdict = guard.scan(message.body, source="email" if ticket.channel == Ticket.Channel.EMAIL else "customer")
        stages["guard_ms"] = _ms(t)

        t = time.monotonic()
        triage = triage_message(ticket, message, query, injection=verdict.flagged)
        triage["injection"] = {"flagged": verdict.flagged, "score": round(verdict.score, 3), "signals": verdict.signals}
        ticket = triage_apply(ticket, triage, routing=not verdict.flagged)
        stages["triage_ms"] = _ms(t)

        if is_acknowledgement(message.body, triage):
            return services.ai_acknowledge(ticket=ticket, in_reply_to=message, gate={"stages_ms": stages})

        t = time.monotonic()
        passages = answering.retrieve(query, language=triage.get("language") or "en", namespace=namespace)
        flags = kb_passages_flags(chunks={p.hit.chunk_id: p.hit.text for p in passages})
        for passage in passages:
            passage.flagged = flags.get(passage.hit.chunk_id, True)
        stages["retrieve_ms"] = _ms(t)

        t = time.monotonic()
        reply, problems = reply_compose(ticket, message, query, passages, triage, injection=verdict.flagged)
        stages["answer_ms"] = _ms(t)

        department = ticket.department
        threshold = department.ai_confidence_threshold if department else _default_threshold()
        ctx = rules.Context(
            text=message.body,
            priority=ticket.priority,
            category=ticket.category,
            sentiment=triage.get("sentiment", ""),
            sentiment_score=float(triage.get("sentiment_score") or 0.0),
            human_requested="human_requested" in triage.get("signals", ()),
            injection=verdict.flagged,
            out_of_scope=bool(triage.get("out_of_scope")),
            has_answer=reply.answerable,
            confidence=reply.confidence,
            threshold=threshold,
            customer_messages=ticket.messages.filter(author_kind=AuthorKind.CUSTOMER).count(),
            ai_replies=ticket.messages.filter(author_kind=AuthorKind.AI, is_internal=False).count(),
            is_vip=ticket.customer.is_vip,
            signals=set(triage.get("signals", ())),
        )
        triggers = rules.evaluate(ctx)
        triggers = [rules.Trigger("Output guard", f"AI reply blocked ({p})") for p in problems] + triggers
        human_engaged = ticket.escalated or ticket.messages.filter(author_kind=AuthorKind.AGENT).exists()
        auto = bool(
            getattr(settings, "FEATURE_AI_AUTO_REPLY", True)
            and (department is None or department.ai_auto_reply)
            and not human_engaged
        )
        send = auto and reply.answerable and not triggers and reply.confidence >= threshold
        gate = {
            "confidence": reply.confidence,
            "threshold": threshold,
            "auto_reply_allowed": auto,
            "human_engaged": human_engaged,
            "triggers": [asdict(tr) for tr in triggers],
            "evidence": reply.evidence,
            "unsupported": reply.unsupported[:5],
            "stages_ms": stages,
            "total_ms": _ms(started),
        }
        return services.ai_reply_record(
            ticket=ticket,
            in_reply_to=message,
            body=reply.body or holding_draft(ticket),
            citations=reply.citations,
            confidence=reply.confidence,
            provider=reply.provider,
            model=reply.model,
            gate=gate,
            send=send,
            escalation_reason=triggers[0].reason if triggers else "AI not confident enough to answer",
            escalation_priority=rules.raised_priority(ticket.priority, triggers),
        )
    finally:
        _status(ticket.pk, working=False)


# --- steps -------------------------------------------------------------------------------------------


def _ms(since: float) -> int:
    return round((time.monotonic() - since) * 1000)


def _status(ticket_id: int, *, working: bool) -> None:
    try:
        realtime.ai_status(ticket_id, working=working)
    except Exception:
        logger.warning("could not show the AI status on ticket %s", ticket_id, exc_info=True)


def _default_threshold() -> float:
    return Department._meta.get_field("ai_confidence_threshold").default
