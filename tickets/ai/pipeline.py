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
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from knowledge.models import DEFAULT_NAMESPACE
from supportflow.logs import set_log_context
from tickets import realtime, services
from tickets.ai import answer as answering
from tickets.ai import calibration, conversation, followup, phrases, reply, rules, runs, versions
from tickets.ai.passages import kb_passages_flags
from tickets.ai.reply import holding_draft
from tickets.ai.triage import cues, sentiment
from tickets.ai.triage.language import detect as detect_language
from tickets.ai.triage.step import triage_apply, triage_message
from tickets.models import AIDraft, Department, EscalationRule, Message, Ticket

logger = logging.getLogger(__name__)

AuthorKind = Message.AuthorKind
Condition = EscalationRule.Condition
OPENED_BY_AGENT_REASON = "An agent opened this ticket for the customer: the AI only drafts"


# --- the service -------------------------------------------------------------------------------------


def process_message(*, message_id: int, namespace: str = DEFAULT_NAMESPACE) -> str:
    """Triage and answer (or hand over) one customer message. Returns the outcome, e.g. ``sent``."""
    if not runs.message_lock(message_id, timeout=getattr(settings, "AI_MESSAGE_LOCK_SECONDS", 150)):
        return "busy"
    try:
        return _process(message_id, namespace)
    finally:
        runs.message_unlock(message_id)


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
    counts = _thread_counts(ticket, message)
    if counts["later"]:
        return "superseded"  # the newer message's own task answers the conversation, this one included

    started = time.monotonic()
    stages: dict[str, int] = {}
    _status(ticket, working=True)
    try:
        state = conversation.State.from_dict(ticket.conversation)
        reading = conversation.read(message.body, answered_before=state.last_outcome == "answered")
        state.entities.update(followup.extract_entities(message.body))
        turns = _customer_turns(ticket, message)

        t = time.monotonic()
        from tickets.ai import guard

        _embed_together(message, reading, state, turns)
        verdict = guard.scan(message.body, source="email" if ticket.channel == Ticket.Channel.EMAIL else "customer")
        stages["guard_ms"] = _ms(t)

        # a person has the conversation: an agent replied, or opened the ticket for the customer (a call, a visit)
        agent_replied = ticket.opened_by_id is not None or counts["agent"] > 0
        detected = detect_language(message.body)
        ai_settings = versions.snapshot()  # one read of the configuration for this message
        config = ai_settings.config_for(ticket.pk)  # this conversation's prompts, models, threshold
        gate = {"act": str(reading.act), "stages_ms": stages, "config_version": config.label}
        if config.experiment_id:
            gate["experiment"] = {"id": config.experiment_id, "arm": config.arm}

        # the gate is read once, after triage has routed the ticket; a greeting only asks whether it may reply
        social = reading.act in conversation.SOCIAL_ACTS and not verdict.flagged
        gate_settings = partial(
            _gate_settings, agent_replied=agent_replied, namespace=namespace, calibrated=ai_settings.calibrated
        )
        if social and gate_settings(ticket.department)[1]:
            language = conversation.reply_language(message.body, detected=detected, state=state)
            state.language = language
            state.last_outcome = "answered" if reading.act == conversation.Act.THANKS else str(reading.act)
            if ticket.channel == Ticket.Channel.EMAIL and reading.act in conversation.CLOSING_ACTS:
                # a "thank you" email is not answered with another email
                return services.ai_acknowledge(
                    ticket=ticket, in_reply_to=message, gate={**gate, "reply": "act"}, conversation=state.to_dict()
                )
            body = reply.act_reply(reading.act, language=language, ticket=ticket, waiting=ticket.escalated)
            return _say(ticket, message, body, gate=gate, started=started, state=state)

        t = time.monotonic()
        query, passages = _retrieve(ticket, message, reading, state, namespace=namespace)
        flags = kb_passages_flags(chunks={p.hit.chunk_id: p.hit.text for p in passages})
        for passage in passages:
            passage.flagged = flags.get(passage.hit.chunk_id, True)
        stages["retrieve_ms"] = _ms(t)
        gate["query"] = query[:300]

        t = time.monotonic()
        # triage reads the conversation's recent customer turns, so "still broken" keeps its topic and mood
        triage = triage_message(
            ticket,
            message,
            answering.conversation_query(turns),
            injection=verdict.flagged,
            config=config,
            customer_messages=counts["customer"],
        )
        triage["injection"] = {"flagged": verdict.flagged, "score": round(verdict.score, 3), "signals": verdict.signals}
        ticket = triage_apply(ticket, triage, routing=not verdict.flagged)
        stages["triage_ms"] = _ms(t)
        language = conversation.reply_language(message.body, detected=triage.get("language", ""), state=state)
        state.language = language
        # A request for a person counts when this message makes it, or an earlier one did and nobody took
        # over yet (a superseded turn). Once handed over it was honoured: the turns after it are read on
        # their own, so a question asked while waiting is answered instead of handed over again.
        human_requested = cues.human_requested(message.body) or (
            "human_requested" in triage.get("signals", ()) and not ticket.escalated
        )
        department = ticket.department
        threshold, auto, source = gate_settings(department)
        if config.threshold is not None:  # the version's own threshold is part of what it tests
            threshold, source = config.threshold, "version"

        t = time.monotonic()
        if reading.act == conversation.Act.QUESTION:
            answer, problems = reply.reply_compose(
                ticket, message, query, passages, triage, injection=verdict.flagged, config=config
            )
        else:  # vague, or feedback on the last answer: nothing to answer
            answer, problems = answering.Answer(body="", citations=[], confidence=0.0, answerable=False), []
        stages["answer_ms"] = _ms(t)

        confident = answer.answerable and answer.confidence >= threshold and not problems
        unanswered_now = not confident and not verdict.flagged
        ctx = rules.Context(
            text=message.body,
            priority=ticket.priority,
            category=ticket.category,
            sentiment=triage.get("sentiment", ""),
            # anger is judged on what the customer says now: "what if my card fails?" after "I lost my phone"
            # is a calm question, however the lexicon scores the conversation's words together
            sentiment_score=sentiment.score(message.body),
            human_requested=human_requested,
            injection=verdict.flagged,
            out_of_scope=bool(triage.get("out_of_scope")),
            has_answer=answer.answerable,
            confidence=answer.confidence,
            threshold=threshold,
            customer_messages=counts["customer"],
            ai_replies=counts["ai"],
            is_vip=ticket.customer.is_vip,
            signals=set(triage.get("signals", ())),
            negative_feedback=reading.act == conversation.Act.NEGATIVE_FEEDBACK,
            unanswered_streak=state.unanswered_streak + int(unanswered_now),
        )
        triggers = [rules.Trigger("Output guard", f"AI reply blocked ({p})") for p in problems]
        if answer.unsupported:  # the draft says more than the articles: a person checks it, asking would not help
            triggers.append(rules.Trigger("Unsupported statements", "The AI draft says things the articles do not"))
        if ticket.opened_by_id is not None:  # why the draft waits, as the console shows it
            triggers.append(rules.Trigger("Opened by an agent", OPENED_BY_AGENT_REASON))
        escalation_rules = list(ai_settings.rules)
        triggers += rules.evaluate(ctx, escalation_rules)
        hard = [tr for tr in triggers if not tr.unanswered and tr.condition != Condition.UNANSWERED_STREAK]
        limit = rules.streak_limit(escalation_rules)
        stop_asking = limit is None or ctx.unanswered_streak >= limit
        handed_over = ticket.escalated
        if handed_over:
            # The ticket is already with a person: what sent it there (its priority, a VIP, the request for
            # a person) must not silence the assistant while they are on the way; only what this message
            # itself carries (injection, security or legal words, anger, a blocked draft) keeps it quiet.
            asked_again = cues.human_requested(message.body)  # this message asks (again) for a person
            hard = [tr for tr in hard if tr.condition not in rules.HANDED_OVER_ALREADY]
            # nothing clear to answer while a person comes (or asked for them again): say they are coming
            if auto and not hard and (asked_again or not confident):
                state.last_outcome = "handed_over"
                body = phrases.phrase("person_on_the_way", language)
                return _say(ticket, message, body, gate=gate, started=started, state=state)
        gate.update(
            confidence=answer.confidence,
            threshold=threshold,
            threshold_source=source,
            auto_reply_allowed=auto,
            human_engaged=agent_replied,
            handed_over=handed_over,
            unanswered_streak=ctx.unanswered_streak,
            triggers=[asdict(tr) for tr in triggers],
            evidence=answer.evidence,
            unsupported=answer.unsupported[:5],
            total_ms=_ms(started),
        )
        record = partial(services.ai_reply_record, ticket=ticket, in_reply_to=message, provider=answer.provider)

        if auto and confident and not hard:
            state.asked(reading.text)
            state.answered(
                article_ids=[c["article_id"] for c in answer.citations], titles=[c["title"] for c in answer.citations]
            )
            said_in = answer.language or language  # the frame around an answer speaks the answer's language
            body = reply.while_you_wait(answer.body, language=said_in) if handed_over else answer.body
            return record(
                body=body,
                citations=answer.citations,
                confidence=answer.confidence,
                model=answer.model,
                gate=gate,
                send=True,
                conversation=state.to_dict(),
            )
        if auto and not hard and not stop_asking and not handed_over:
            state.asked(reading.text)
            state.unanswered(reading.text, "clarified")
            body, options = reply.clarify_reply(passages, language=language)
            gate["answer_citations"] = answer.citations  # what it would have answered with (evaluations)
            return record(
                body=body,
                citations=options,
                confidence=answer.confidence,
                model="conversation",
                gate=gate,
                send=True,
                kind="clarify",
                conversation=state.to_dict(),
            )
        reasons = hard or [tr for tr in triggers if tr.condition == Condition.UNANSWERED_STREAK] or triggers
        state.asked(reading.text)
        state.unanswered(reading.text, "handed_over")
        state.unanswered_streak = 0  # a person takes it from here; the count starts again
        return record(
            body=answer.body or holding_draft(ticket),
            citations=answer.citations,
            confidence=answer.confidence,
            model=answer.model,
            gate=gate,
            send=False,
            escalation_reason=reasons[0].reason if reasons else "AI not confident enough to answer",
            escalation_priority=rules.raised_priority(ticket.priority, triggers),
            conversation=state.to_dict(),
        )
    finally:
        _status(ticket, working=False)


# --- steps -------------------------------------------------------------------------------------------


def _say(ticket: Ticket, message: Message, body: str, *, gate: dict, started: float, state: conversation.State) -> str:
    """Send a conversational reply that cites nothing (a greeting, a thanks, "a person is on the way")."""
    return services.ai_reply_record(
        ticket=ticket,
        in_reply_to=message,
        body=body,
        citations=[],
        confidence=0.0,
        provider="local",
        model="conversation",
        gate={**gate, "acknowledged": True, "total_ms": _ms(started)},
        send=True,
        kind="act",
        conversation=state.to_dict(),
    )


def _ms(since: float) -> int:
    return round((time.monotonic() - since) * 1000)


def _status(ticket: Ticket, *, working: bool) -> None:
    try:
        realtime.ai_status(ticket.pk, working=working, ticket=ticket)
    except Exception:
        logger.warning("could not show the AI status on ticket %s", ticket.pk, exc_info=True)


def _thread_counts(ticket: Ticket, message: Message) -> dict[str, int]:
    """What the pipeline asks of the conversation's messages, in one statement: customer messages after
    this one (it is superseded), the agents' public replies (a person has it), and the customer's and
    the assistant's messages (triage and the escalation rules count them)."""
    return ticket.messages.aggregate(
        later=Count("pk", filter=Q(author_kind=AuthorKind.CUSTOMER, seq__gt=message.seq)),
        agent=Count("pk", filter=Q(author_kind=AuthorKind.AGENT, is_internal=False)),
        customer=Count("pk", filter=Q(author_kind=AuthorKind.CUSTOMER)),
        ai=Count("pk", filter=Q(author_kind=AuthorKind.AI, is_internal=False)),
    )


HISTORY_TURNS = 8
SURE_LANGUAGE_WORDS = 5


def _history(ticket: Ticket, message: Message) -> list[followup.Turn]:
    earlier = ticket.messages.filter(is_internal=False, seq__lt=message.seq).exclude(author_kind=AuthorKind.SYSTEM)
    return [
        followup.Turn(
            role="customer" if m.author_kind == AuthorKind.CUSTOMER else "assistant",
            text=m.body,
            # answers name their topic by what they cite; a clarifying question's options are not a topic
            citations=[c.get("title", "") for c in m.citations or []] if m.ai_confidence is not None else [],
        )
        for m in reversed(earlier.order_by("-seq")[:HISTORY_TURNS])
    ]


def _customer_turns(ticket: Ticket, message: Message) -> list[str]:
    """The conversation's recent customer turns up to this message, oldest first (what triage reads)."""
    return list(
        ticket.messages.filter(author_kind=AuthorKind.CUSTOMER, is_internal=False, seq__lte=message.seq)
        .order_by("-seq")
        .values_list("body", flat=True)[: answering.MAX_TURNS]
    )[::-1]


def _search_query(message: Message, reading: conversation.Reading, state: conversation.State) -> tuple[str, str]:
    """The customer's words as retrieval searches them, and the language it searches in."""
    said = " ".join(message.body.split())
    plain = conversation.expand_abbreviations(reading.text or said)[: answering.MAX_QUERY_CHARS]
    # a few words ("on mobile too?") do not tell a language apart: the conversation's language does
    detected = detect_language(plain)
    language = (detected if len(said.split()) >= SURE_LANGUAGE_WORDS else state.language or detected) or "en"
    return conversation.with_glossary(plain, language), language


def _embed_together(
    message: Message, reading: conversation.Reading, state: conversation.State, turns: list[str]
) -> None:
    """Every text this message's steps embed, in one model call, into the per-process cache the steps read
    (``embeddings.embed_cached``): the guard's windows, the search query (retrieval and the answer) and
    the turns triage reads. A greeting or a thanks only needs the guard's. Vectors are the same as the
    steps' own calls would give; only the model's per-call cost is paid once instead of three times."""
    from knowledge import embeddings

    embeddings.embed_cached(
        _texts_to_embed(message, reading, state, turns), ahead=partial(_waiting_texts, message.ticket_id)
    )


def _texts_to_embed(
    message: Message, reading: conversation.Reading, state: conversation.State, turns: list[str]
) -> list[str]:
    from tickets.ai import guard
    from tickets.ai.triage.local import prepare_text

    texts = guard.windows(message.body)
    if reading.act not in conversation.SOCIAL_ACTS:
        texts += [_search_query(message, reading, state)[0], prepare_text(answering.conversation_query(turns))]
    return [text for text in texts if text.strip()]


def _waiting_texts(ticket_id: int) -> list[str]:
    """What the customer messages waiting for the AI will embed (``_texts_to_embed``), for this message's
    model call to take along (``embeddings.embed_cached``'s ``ahead``): under load a process then encodes
    several messages' texts in one call, each text for about a third of a call of its own.

    Waiting: a customer's message of another conversation, recent (``AI_EMBED_AHEAD_WINDOW_SECONDS``), the
    last of its conversation, without an AI answer, that no process holds yet — at most ``AI_EMBED_AHEAD``
    of them, the oldest first (the queue's order). Two statements and one cache round trip, paid only when
    this message needs the model. A guess that turns out wrong (the customer writes again) costs a few
    milliseconds of encoding; the answer never depends on it."""
    limit = int(settings.AI_EMBED_AHEAD)
    if limit <= 0:
        return []
    since = timezone.now() - timedelta(seconds=settings.AI_EMBED_AHEAD_WINDOW_SECONDS)
    candidates = list(
        Message.objects.filter(
            author_kind=AuthorKind.CUSTOMER, is_internal=False, created_at__gte=since, seq=F("ticket__last_message_seq")
        )
        .exclude(ticket_id=ticket_id)
        .exclude(ticket__status=Ticket.Status.CLOSED)
        .exclude(Exists(AIDraft.objects.filter(in_reply_to=OuterRef("pk"))))
        .select_related("ticket")
        .only("id", "seq", "body", "ticket_id", "ticket__conversation")
        .order_by("created_at")[: limit * 2]
    )
    held = runs.messages_held([m.pk for m in candidates])
    waiting = [m for m in candidates if m.pk not in held][:limit]
    if not waiting:
        return []
    turns: dict[int, list[str]] = {}
    recent = (
        Message.objects.filter(ticket_id__in=[m.ticket_id for m in waiting], author_kind=AuthorKind.CUSTOMER)
        .filter(is_internal=False)
        .annotate(nth=Window(RowNumber(), partition_by=F("ticket_id"), order_by=F("seq").desc()))
        .filter(nth__lte=answering.MAX_TURNS)
        .order_by("ticket_id", "seq")
        .values_list("ticket_id", "body")
    )
    for ticket, body in recent:
        turns.setdefault(ticket, []).append(body)
    texts = []
    for m in waiting:
        state = conversation.State.from_dict(m.ticket.conversation)
        reading = conversation.read(m.body, answered_before=state.last_outcome == "answered")
        texts += _texts_to_embed(m, reading, state, turns.get(m.ticket_id, [m.body]))
    return texts


def _retrieve(
    ticket: Ticket,
    message: Message,
    reading: conversation.Reading,
    state: conversation.State,
    *,
    namespace: str,
):
    """What to search for, and what it finds. The customer's words; and when they read like a follow-up
    ("and as PDF?", "what if I lose it?"), also the question with what it leans on from earlier turns
    (``followup.contextual_query``) — kept if it finds a more confident answer. A self-contained
    question is never mixed with an old topic."""
    said = " ".join(message.body.split())
    plain, language = _search_query(message, reading, state)
    passages = answering.retrieve(plain, language=language, namespace=namespace)
    if reading.act != conversation.Act.QUESTION:
        return plain, passages
    contextual = followup.contextual_query(said, _history(ticket, message))[: answering.MAX_QUERY_CHARS]
    if contextual in (plain, said):
        return plain, passages
    # A follow-up is searched both ways: its own words can be confidently wrong ("can they edit it too?"
    # alone finds an article about editing conflicts). With the conversation, the articles are ranked by
    # how well their title fits the turn itself, so the new part of the question picks the article.
    alone = answering.answer_local(plain, passages).confidence
    leaning = answering.retrieve(contextual, language=language, namespace=namespace, about=plain)
    if answering.answer_local(contextual, leaning).confidence > alone:
        return contextual, leaning
    return plain, passages


def _gate_settings(
    department: Department | None,
    *,
    agent_replied: bool,
    namespace: str = DEFAULT_NAMESPACE,
    calibrated: dict[str, float] | None = None,
) -> tuple[float, bool, str]:
    """The queue's confidence threshold (its manager's, or calibrated: ``calibration.gate_threshold``)
    and where it came from, and whether the assistant may send on its own: not when the queue or the
    install switched auto-replies off, and never once a person has replied. ``calibrated``: the
    knowledge bases' thresholds as already read (``versions.Snapshot.calibrated``)."""
    threshold, source = calibration.gate_threshold(department, namespace=namespace, known=calibrated)
    auto = bool(
        getattr(settings, "FEATURE_AI_AUTO_REPLY", True)
        and (department is None or department.ai_auto_reply)
        and not agent_replied
    )
    return threshold, auto, source
