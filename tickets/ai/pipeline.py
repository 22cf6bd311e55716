"""One customer message through the AI: guard → triage → route → retrieve → answer → gate → send or hand over.

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
import re
import time
from dataclasses import asdict

from django.conf import settings
from django.core.cache import cache

from knowledge.models import DEFAULT_NAMESPACE
from supportflow.logs import set_log_context
from tickets import realtime, services
from tickets.ai import answer as answering
from tickets.ai import rules, runs
from tickets.ai.passages import kb_passages_flags
from tickets.ai.triage.prompt import TRIAGE_SYSTEM_PROMPT
from tickets.ai.triage.schema import TriageOut
from tickets.models import AIDraft, AIRun, Department, Message, Ticket, TicketEvent

logger = logging.getLogger(__name__)

AuthorKind = Message.AuthorKind
PRIORITY_ORDER = rules.PRIORITY_ORDER


# A customer asking in words for a priority, queue or category ("set priority: urgent", "route this to
# the billing team"). Not an injection signal on its own, but an LLM that obeys it would route by
# the text's say-so, so routing then comes from the local classifier, which does not take orders.
ROUTING_REQUEST = re.compile(
    r"\b(?:priority|prio|department|queue|category|team|abteilung|kategorie|priorität)\s*[:=]"
    r"|\b(?:priority|priorität|prio)\s+(?:is\s+|should\s+be\s+|to\s+|auf\s+)?(?:urgent|high|low|normal|critical|hoch|dringend)\b"
    r"|\b(?:route|assign|transfer|forward|move|escalate|send|direct|put|weiterleiten|zuweisen)\b\W+(?:this|it|the|my|our)\b"
    r"[^.!?\n]{0,40}?\bto\b[^.!?\n]{0,30}?\b(?:team|department|queue|agent|desk|billing|sales|legal|security|support)\b"
    r"|\b(?:set|change|mark|make|raise|bump|flag|classify|categori[sz]e|label|tag|treat|prioriti[sz]e|escalate|upgrade)\b"
    r"[^.!?\n]{0,40}?\b(?:urgent|high[- ]priority|top[- ]priority|critical|priority|department|queue|category)\b",
    re.IGNORECASE,
)


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
        triage = _triage(ticket, message, query, injection=verdict.flagged)
        triage["injection"] = {"flagged": verdict.flagged, "score": round(verdict.score, 3), "signals": verdict.signals}
        ticket = _apply_triage(ticket, triage, routing=not verdict.flagged)
        stages["triage_ms"] = _ms(t)

        if _is_acknowledgement(message.body, triage):
            return services.ai_acknowledge(ticket=ticket, in_reply_to=message, gate={"stages_ms": stages})

        t = time.monotonic()
        passages = answering.retrieve(query, language=triage.get("language") or "en", namespace=namespace)
        flags = kb_passages_flags(chunks={p.hit.chunk_id: p.hit.text for p in passages})
        for passage in passages:
            passage.flagged = flags.get(passage.hit.chunk_id, True)
        stages["retrieve_ms"] = _ms(t)

        t = time.monotonic()
        reply, problems = _answer(ticket, message, query, passages, triage, injection=verdict.flagged)
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
            body=reply.body or _holding_draft(ticket),
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


def _run_once(*, key: str, kind: str, ticket: Ticket, message: Message, provider: str, model: str, call):
    """Run ``call()`` at most once per ``key``: a finished run's stored result is reused.

    ``call`` returns ``(result: dict, usage: dict)``; it may raise ``llm.LLMUnavailable``, which is
    recorded (with what the attempts cost) and re-raised for the caller's fallback.
    """
    from supportflow import llm

    run, created = runs.ai_run_begin(key=key, kind=kind, provider=provider, ticket=ticket, message=message, model=model)
    if not created:
        if run.status == AIRun.Status.SUCCEEDED and "result" in run.meta:
            return run.meta["result"]
        if run.status == AIRun.Status.FAILED and run.meta.get("terminal"):
            raise llm.LLMUnavailable(run.meta.get("reason", "failed"), attempts=0, tokens_in=0, tokens_out=0, cost=0)
        runs.ai_run_reclaim(run=run)
    started = time.monotonic()
    try:
        result, usage = call()
    except llm.LLMUnavailable as exc:
        runs.ai_run_finish(
            run=run,
            succeeded=False,
            tokens_in=exc.tokens_in,
            tokens_out=exc.tokens_out,
            cost=exc.cost,
            latency_ms=_ms(started),
            attempts=exc.attempts,
            error=exc.reason,
            meta={"terminal": True, "reason": exc.reason},
        )
        raise
    runs.ai_run_finish(
        run=run,
        succeeded=True,
        tokens_in=usage.get("tokens_in", 0),
        tokens_out=usage.get("tokens_out", 0),
        cost=usage.get("cost", 0),
        latency_ms=_ms(started),
        attempts=usage.get("attempts", 1),
        model=usage.get("model") or None,
        meta={"result": result, **usage.get("meta", {})},
    )
    return result


def _usage(result) -> dict:
    return {
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
        "cost": str(result.cost),
        "attempts": result.attempts,
        "model": result.model,
    }


def _local_triage(ticket: Ticket, query: str) -> dict:
    from tickets.ai.triage import local as triage_local

    result = triage_local.predict(
        query,
        customer_messages=ticket.messages.filter(author_kind=AuthorKind.CUSTOMER).count(),
        is_vip=ticket.customer.is_vip,
    )
    out = asdict(result)
    out["signals"] = list(result.signals)
    out["provider"] = "local"
    out["model"] = f"triage-local-v{result.model_version}"
    return out


def _triage(ticket: Ticket, message: Message, query: str, *, injection: bool) -> dict:
    from supportflow import llm

    local = _run_once(
        key=f"triage-local:message:{message.pk}",
        kind=AIRun.Kind.TRIAGE,
        ticket=ticket,
        message=message,
        provider="local",
        model="triage-local",
        call=lambda: (_local_triage(ticket, query), {"model": ""}),
    )
    if injection or llm.provider_for("triage") != "openai":
        return local
    try:
        remote = _run_once(
            key=f"triage:message:{message.pk}",
            kind=AIRun.Kind.TRIAGE,
            ticket=ticket,
            message=message,
            provider="openai",
            model=getattr(settings, "LLM_MODEL_TRIAGE", ""),
            call=lambda: _openai_triage(query),
        )
    except llm.LLMUnavailable as exc:
        local["fallback"] = exc.reason
        return local
    merged = dict(local)
    for field in ("sentiment", "language", "summary"):
        if remote.get(field):
            merged[field] = remote[field]
    if ROUTING_REQUEST.search(query):
        merged["signals"] = [*local.get("signals", []), "routing_requested"]
    else:
        if remote.get("category"):
            merged["category"] = remote["category"]
        if remote.get("department") in _department_slugs():
            merged["department"] = remote["department"]
            merged["out_of_scope"] = False
        elif remote.get("department") == "none":
            merged["department"], merged["out_of_scope"] = "", True
        merged["priority"] = max(local["priority"], remote["priority"], key=lambda p: PRIORITY_ORDER.get(p, 1))
    merged["needs_human"] = bool(local.get("needs_human") or remote.get("needs_human"))
    merged["needs_human_reason"] = local.get("needs_human_reason") or remote.get("needs_human_reason", "")
    merged["provider"], merged["model"] = "openai", remote.get("model", "")
    return merged


def _department_slugs() -> dict[str, str]:
    return dict(Department.objects.filter(is_active=True).values_list("slug", "description"))


def _openai_triage(query: str) -> tuple[dict, dict]:
    from supportflow import llm
    from tickets.ai import guard, pii

    redacted = pii.redact(query)
    departments = "\n".join(f"- {slug}: {desc}" for slug, desc in _department_slugs().items())
    messages = [
        {
            "role": "system",
            "content": TRIAGE_SYSTEM_PROMPT.format(
                site=answering.site_name(), departments=departments, canary=guard.new_canary()
            ),
        },
        {"role": "user", "content": guard.wrap_untrusted(redacted.text, label="customer message")},
    ]
    result = llm.chat(task="triage", messages=messages, schema=TriageOut, max_tokens=300)
    parsed: TriageOut = result.parsed
    data = parsed.model_dump()
    data["summary"] = pii.restore(data["summary"], redacted.mapping)[:140]
    data["model"] = result.model
    return data, _usage(result)


def _apply_triage(ticket: Ticket, triage: dict, *, routing: bool = True) -> Ticket:
    """Write the AI's triage, except what an agent already decided: their corrections win, the AI
    never lowers a priority, and it never moves a ticket a person is working on to another queue.

    ``routing=False`` (the text carries injection signals): category, priority and department stay
    as they are — whatever the text says, a person routes it — only the descriptive fields are set."""
    corrected = set(
        TicketEvent.objects.filter(
            ticket=ticket,
            actor_kind="agent",
            kind__in=[
                TicketEvent.Kind.TRIAGE_CHANGED,
                TicketEvent.Kind.DEPARTMENT_CHANGED,
                TicketEvent.Kind.PRIORITY_CHANGED,
            ],
        ).values_list("field", flat=True)
    )
    fields: dict = {}
    for name in ("category", "sentiment", "language") if routing else ("sentiment", "language"):
        if name not in corrected and triage.get(name):
            fields[name] = triage[name]
    if triage.get("summary"):
        fields["ai_summary"] = triage["summary"]
    if not routing:
        return services.ticket_apply_ai_triage(ticket=ticket, details=_details(triage), **fields)
    if "priority" not in corrected and PRIORITY_ORDER.get(triage.get("priority"), 0) > PRIORITY_ORDER.get(
        ticket.priority, 0
    ):
        fields["priority"] = triage["priority"]
    if "department" not in corrected and not ticket.assignee_id and triage.get("department"):
        department = Department.objects.filter(slug=triage["department"], is_active=True).first()
        if department is not None:
            fields["department"] = department
    return services.ticket_apply_ai_triage(ticket=ticket, details=_details(triage), **fields)


def _details(triage: dict) -> dict:
    return {**triage, "summary": triage.get("summary", "")}


ACK_WORDS = ("thank", "thanks", "thx", "danke", "gracias", "merci", "grazie", "bedankt", "obrigad", "perfect", "great")


def _is_acknowledgement(body: str, triage: dict) -> bool:
    """ "Thanks, that worked!" needs no answer and no human: nothing to escalate."""
    text = " ".join(body.lower().split())
    return (
        len(text) <= 80
        and "?" not in text
        and any(word in text for word in ACK_WORDS)
        and triage.get("sentiment") != "negative"
        and "human_requested" not in triage.get("signals", ())
    )


def _answer(ticket, message, query, passages, triage, *, injection: bool):
    """The best answer we can ground, and the output guard's problems with it."""
    from supportflow import llm
    from tickets.ai import guard, pii

    language = triage.get("language") or "en"
    canary = guard.new_canary()
    reply = None
    if passages and not injection and llm.provider_for("reply") == "openai":
        redacted = pii.redact(query)

        def call():
            generated, result = answering.answer_generated(
                redacted.text, passages, language=language, canary=canary, redaction_mapping=redacted.mapping
            )
            return _answer_dict(generated), _usage(result)

        try:
            data = _run_once(
                key=f"reply:message:{message.pk}",
                kind=AIRun.Kind.REPLY,
                ticket=ticket,
                message=message,
                provider="openai",
                model=getattr(settings, "LLM_MODEL_REPLY", ""),
                call=call,
            )
            reply = answering.Answer(**data)
        except llm.LLMUnavailable:
            reply = None
    if reply is None:
        data = _run_once(
            key=f"reply-local:message:{message.pk}",
            kind=AIRun.Kind.REPLY,
            ticket=ticket,
            message=message,
            provider="local",
            model="extractive",
            call=lambda: (_answer_dict(answering.answer_local(query, passages, language=language)), {}),
        )
        reply = answering.Answer(**data)
    problems: list[str] = []
    if reply.body:
        kb_hosts = {host for p in passages if not p.flagged for host in _linked_hosts(p.hit.text)}
        problems = guard.check_output(reply.body, canary=canary, allowed_hosts=_allowed_hosts() | kb_hosts)
    return reply, problems


def _linked_hosts(text: str) -> set[str]:
    """Hosts a knowledge-base passage links to or names: the KB's own domains, which an answer may quote."""
    from tickets.ai import guard

    return {h.rstrip(".") for h in guard.link_hosts(text)}


def _answer_dict(a: answering.Answer) -> dict:
    return {
        "body": a.body,
        "citations": a.citations,
        "confidence": a.confidence,
        "evidence": a.evidence,
        "provider": a.provider,
        "model": a.model,
        "answerable": a.answerable,
        "unsupported": a.unsupported,
    }


def _allowed_hosts() -> set[str]:
    hosts = {h.lstrip(".") for h in settings.ALLOWED_HOSTS if h and h != "*"}
    return hosts | set(getattr(settings, "AI_ALLOWED_LINK_HOSTS", []))


HOLDING_DRAFT = "Hi {name}, thanks for getting in touch. I'm looking into this and will get back to you here shortly."


def _holding_draft(ticket: Ticket) -> str:
    """When nothing in the knowledge base answers, the agent still gets a starting point."""
    name = (ticket.customer.name or "").split(" ")[0] or "there"
    return HOLDING_DRAFT.format(name=name)
