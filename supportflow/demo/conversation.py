"""The scripts of a ticket's life: the first message and its triage, then the customer's reaction to an AI
answer or an agent taking over, reopening and CSAT, cut where the simulated period ends."""

# ruff: noqa: S311 — ``random`` draws synthetic data reproducibly

from __future__ import annotations

import datetime as dt
import random

from supportflow.demo.ai import CATEGORY_DEPARTMENT
from supportflow.demo.assistant import Sim
from supportflow.demo.context import Context, Rule
from supportflow.demo.rows import Batch
from supportflow.demo.texts import (
    ACKS,
    AGENT_ANSWER,
    AGENT_ASK,
    AGENT_DONE,
    AGENT_I18N,
    ANGRY,
    CATEGORY_ARTICLES,
    CUSTOMER_DONE,
    CUSTOMER_INFO,
    FOLLOW_UP_HUMAN,
    FOLLOW_UP_UNHELPFUL,
    GAP_TOPICS,
    GREETINGS,
    HUMAN_ASK,
    LEGAL_THREAT,
    QUESTIONS,
    QUESTIONS_I18N,
    REOPEN,
    SIGN_OFFS,
)
from supportflow.demo.ticket import ACTIVE, P_RANK, K, S, Spec, Stop, agent_time, clamp, fill, lognormal_minutes


def simulate(ctx: Context, spec: Spec, end: dt.datetime, batch: Batch, seed: int) -> None:
    rng = random.Random(seed * 1_000_003 + spec.index)
    sim = Sim(ctx, spec, rng, end, batch)
    first = spec.customer_first

    # The first message and what triage will make of it.
    if spec.gap:
        _, paraphrases = GAP_TOPICS[spec.gap]
        text = rng.choice(paraphrases)
        subject = text.rstrip("?")[:60]
    elif spec.language != "en":
        options = QUESTIONS_I18N[spec.language]
        _, subject, text = next((o for o in options if o[0] == spec.category), options[0])
        text = fill(rng, text)
    else:
        subject, text = rng.choice(QUESTIONS[spec.category])
        subject, text = fill(rng, subject), fill(rng, text)
    roll = rng.random()
    sentiment = "negative" if roll < 0.25 else "neutral" if roll < 0.8 else "positive"
    angry = sentiment == "negative" and rng.random() < 0.2
    human_asked = rng.random() < 0.04
    legal = rng.random() < 0.006
    if spec.language == "en" and not spec.gap:
        text = rng.choice(GREETINGS) + text + (rng.choice(ANGRY) if angry else "")
        text += rng.choice(HUMAN_ASK) if human_asked else ""
        text += rng.choice(LEGAL_THREAT) if legal else ""
        text += rng.choice(SIGN_OFFS).format(first=first)
    priority_roll = rng.random()
    true_priority = (
        "urgent"
        if spec.category == "account_security" and priority_roll < 0.5
        else "low"
        if priority_roll < 0.2
        else "normal"
        if priority_roll < 0.72
        else "high"
        if priority_roll < 0.93
        else "urgent"
    )
    category_confidence = clamp(rng.betavariate(6, 1.6), 0.2, 0.995)
    guess = spec.category
    if rng.random() > 0.55 + 0.45 * category_confidence:  # the triage model is wrong more often when unsure
        same = [c for c, d in CATEGORY_DEPARTMENT.items() if d == CATEGORY_DEPARTMENT[spec.category]]
        pool = same if rng.random() < 0.7 else list(CATEGORY_DEPARTMENT)
        guess = rng.choice([c for c in pool if c != spec.category] or pool)
        category_confidence *= 0.7
    sim.triage = {"category": guess, "sentiment": sentiment, "priority": true_priority}
    sim.priority = "low" if true_priority == "low" else "normal"

    if spec.gap:
        answerable = rng.random() < 0.4  # a passage on a neighbouring topic, weakly matching
        confidence = clamp(rng.gauss(0.42, 0.08), 0.2, 0.66) if answerable else 0.0
    else:
        answerable = bool(CATEGORY_ARTICLES.get(spec.category))
        confidence = clamp(rng.gauss(0.74, 0.13), 0.15, 0.98)
        if guess != spec.category:
            confidence *= 0.8
    details = {
        "category": guess,
        "category_confidence": round(category_confidence, 4),
        "department": "" if spec.unrouted else ctx.by_category[guess],
        "department_confidence": round(clamp(category_confidence + rng.gauss(0.03, 0.03)), 4),
        "priority": true_priority,
        "priority_confidence": round(rng.uniform(0.45, 0.95), 4),
        "sentiment": sentiment,
        "sentiment_score": round(
            rng.uniform(-1, -0.6)
            if angry
            else rng.uniform(-0.6, -0.1)
            if sentiment == "negative"
            else rng.uniform(0.2, 0.9)
            if sentiment == "positive"
            else rng.uniform(-0.1, 0.2),
            3,
        ),
        "language": spec.language,
        "needs_human": human_asked or legal or spec.vip,
        "needs_human_reason": "human requested" if human_asked else "",
        "out_of_scope": spec.unrouted,
        "summary": subject[:140],
        "signals": ["human_requested"] if human_asked else [],
        "model_version": ctx.model_version,
        "injection": {"flagged": False, "score": round(rng.uniform(0.01, 0.2), 3), "signals": []},
    }
    sim.triage.update(details)

    def matches(rule: Rule) -> bool:
        c = rule.condition
        return (
            (c == "human_requested" and human_asked)
            or (
                c == "keywords"
                and rule.reason.startswith("Security")
                and spec.category == "account_security"
                and spec.language == "en"
                and not spec.gap
            )
            or (c == "keywords" and rule.reason.startswith("Legal") and legal)
            or (c == "priority_at_least" and P_RANK[true_priority] >= P_RANK.get(rule.value, 3))
            or (c == "sentiment_is" and angry)
            or (c == "vip" and spec.vip)
            or (c == "out_of_scope" and spec.unrouted)
            or (c == "no_answer" and not answerable)
        )

    triggers = [r for r in ctx.rules if matches(r)]
    sim.base_confidence, sim.base_answerable = confidence, answerable

    try:
        sim.event(K.CREATED, actor_kind="customer", to_value=spec.channel)
        m1 = sim.message("customer", text)
        outcome = sim.pipeline(m1, first=True, confidence=confidence, answerable=answerable, triggers=triggers)
        quality, by_ai = _after_first(sim, rng, spec, outcome, confidence, guess)
        if _maybe_reopen(sim, rng, spec, quality):
            quality, by_ai = min(quality, 0.5), False
        _maybe_rate(sim, rng, quality, ai=by_ai)
        if sim.status == S.RESOLVED and ctx.auto_close_days > 0:  # the beat closes it after N days
            days = ctx.auto_close_days
            sim.at(sim.resolved_at + dt.timedelta(days=days, minutes=rng.uniform(0, 2)))
            sim.transition(S.CLOSED, note=f"Resolved for {days} days")
            sim.event(K.AUTO_CLOSED, note=f"Resolved for {days} days")
    except Stop:
        sim.sweep(end)
    sim.finish({"subject": subject[:255], "summary": subject[:140], "details": sim.triage})


def _after_first(
    sim: Sim, rng: random.Random, spec: Spec, outcome: str, confidence: float, guess: str
) -> tuple[float, bool]:
    """Everything after the AI's first decision up to the first resolution: the customer's reaction to an
    AI answer (better answers satisfy more often), or agents. Returns (how good the help was, 0–1;
    whether the AI alone resolved it), which drive reopening and CSAT."""
    first = spec.customer_first
    if outcome == "sent":
        wrong = spec.gap != "" or guess != spec.category
        p_ok = clamp(0.35 + 1.2 * (confidence - 0.6) - (0.3 if wrong else 0.0), 0.05, 0.9)
        roll = rng.random()
        if roll < p_ok * 0.55:  # "thanks, that worked"
            sim.at(sim.t + dt.timedelta(minutes=lognormal_minutes(rng, 6, 1.0)))
            ack = sim.message("customer", rng.choice(ACKS))
            sim.pipeline(ack, first=False, confidence=0.0, answerable=False, triggers=[], acknowledgement=True)
            _tidy_resolve(sim, rng, hours=rng.uniform(0.2, 3))
            return confidence, True
        if roll < p_ok:  # silent but satisfied: an agent resolves it while tidying the queue
            _tidy_resolve(sim, rng, hours=rng.uniform(1, 8))
            return confidence, True
        if rng.random() < 0.25:  # gave up without a word
            _tidy_resolve(sim, rng, hours=rng.uniform(2, 20))
            return confidence * 0.6, True
        sim.at(sim.t + dt.timedelta(minutes=lognormal_minutes(rng, 12, 1.0)))
        asks_human = rng.random() < 0.4
        follow = sim.message("customer", rng.choice(FOLLOW_UP_HUMAN if asks_human else FOLLOW_UP_UNHELPFUL))
        rules = {r.condition: r for r in sim.ctx.rules}
        triggers = [rules["human_requested"]] if asks_human and "human_requested" in rules else []
        if not triggers and "ai_replies_at_least" in rules and sim.ai_replies >= 2:
            triggers = [rules["ai_replies_at_least"]]
        second = clamp(confidence - rng.uniform(0.1, 0.3))
        sim.pipeline(follow, first=False, confidence=second, answerable=True, triggers=triggers)
        if sim.status == S.OPEN and sim.escalated_at is None:  # answered again by the AI; the customer goes quiet
            _tidy_resolve(sim, rng, hours=rng.uniform(2, 12))
            return second * 0.7, True
        _human(sim, rng, spec, first, guess)
        return 0.55, False
    _human(sim, rng, spec, first, guess)
    return 0.75, False


def _tidy_resolve(sim: Sim, rng: random.Random, hours: float) -> None:
    """An AI-answered ticket resolved by an agent going through the queue (no reply of their own)."""
    agent = sim.pick_agent()
    sim.at(agent_time(rng, sim.t, hours * 60, sim.priority))
    sim.transition(S.RESOLVED, actor=agent, actor_kind="agent", note="Answered by the AI")


def _human(sim: Sim, rng: random.Random, spec: Spec, first: str, guess: str) -> None:
    """An agent takes over: corrections, questions, pending, the answer, resolve (or close)."""
    ctx = sim.ctx
    median = {"urgent": 7, "high": 35, "normal": 120, "low": 300}[sim.priority]
    sim.at(agent_time(rng, sim.t, lognormal_minutes(rng, median, 0.8), sim.priority))
    if sim.department is None:  # unrouted: a manager picks it, and routes it half of the time
        picker = ctx.floaters[0]
        sim.assign(picker, by=picker)
        if rng.random() < 0.5:
            dep = ctx.departments[ctx.by_category[spec.category]]
            sim.set_department(dep, actor=picker, actor_kind="agent")
            if sim.assignee is None:
                sim.assign(sim.pick_agent(), by=picker)
    if sim.assignee is None:
        agent = sim.pick_agent()
        sim.assign(agent, by=agent)
    agent = sim.assignee
    if sim.category != spec.category and rng.random() < 0.85:  # the triage label was wrong: the agent fixes it
        sim.correct_triage("category", spec.category, agent=agent)
        right = ctx.departments[ctx.by_category[spec.category]]
        if sim.department is not None and right is not sim.department:
            sim.set_department(right, actor=agent, actor_kind="agent")
            if sim.assignee is None:
                sim.assign(sim.pick_agent(), by=agent)
    if sim.priority == "normal" and rng.random() < 0.05:
        sim.set_priority(rng.choice(("low", "high")), actor=agent, actor_kind="agent")
    if sim.sentiment and sim.sentiment != "negative" and rng.random() < 0.03:
        sim.correct_triage("sentiment", "negative", agent=agent)
    dep_slug = sim.department.slug if sim.department else ""
    answer = AGENT_I18N.get(spec.language) or AGENT_ANSWER.get(dep_slug, AGENT_ANSWER[""])
    rounds = 0
    while rounds < 3 and rng.random() < (0.45 if rounds == 0 else 0.2):  # the agent needs more information
        rounds += 1
        sim.agent_reply(fill(rng, rng.choice(AGENT_ASK), first), pending=True)
        sim.at(sim.t + dt.timedelta(minutes=lognormal_minutes(rng, 240, 1.1)))
        info = sim.message("customer", fill(rng, rng.choice(CUSTOMER_INFO)))
        sim.follow_up(info)
        sim.at(agent_time(rng, sim.t, lognormal_minutes(rng, median * 0.8), sim.priority))
    closes_directly = rng.random() < 0.08
    sim.agent_reply(fill(rng, answer, first), resolve=not closes_directly and rng.random() < 0.65)
    if sim.status == S.OPEN and not closes_directly:
        sim.at(sim.t + dt.timedelta(minutes=lognormal_minutes(rng, 60, 1.0)))
        if rng.random() < 0.6:
            done = sim.message("customer", rng.choice(CUSTOMER_DONE))
            sim.pipeline(done, first=False, confidence=0.0, answerable=False, triggers=[], acknowledgement=True)
            sim.at(agent_time(rng, sim.t, lognormal_minutes(rng, 30), sim.priority))
            sim.agent_reply(rng.choice(AGENT_DONE), resolve=True)
        else:
            sim.at(agent_time(rng, sim.t, lognormal_minutes(rng, 240), sim.priority))
            sim.transition(S.RESOLVED, actor=sim.assignee, actor_kind="agent")
    if closes_directly and sim.status in ACTIVE:
        sim.at(sim.t + dt.timedelta(minutes=rng.uniform(1, 30)))
        sim.transition(S.CLOSED, actor=sim.assignee, actor_kind="agent")


def _maybe_reopen(sim: Sim, rng: random.Random, spec: Spec, quality: float) -> bool:
    """Customers come back on a share of resolved tickets, more often after weak help (before it is
    closed automatically); an agent handles it again. True when it was reopened."""
    if sim.status != S.RESOLVED or rng.random() > 0.015 + 0.6 * (1.0 - quality) ** 2:
        return False
    hours = min(lognormal_minutes(rng, 20, 0.9), max(1.0, sim.ctx.auto_close_days * 24 - 1.0))
    sim.at(sim.t + dt.timedelta(hours=hours))
    again = sim.message("customer", rng.choice(REOPEN))
    sim.follow_up(again, shift=-0.1)
    _human(sim, rng, spec, spec.customer_first, sim.category)
    return True


def _maybe_rate(sim: Sim, rng: random.Random, quality: float, *, ai: bool) -> None:
    """CSAT on a share of resolved tickets, minutes to a day or two after the (last) resolution; skewed
    positive, lower after weak AI answers, SLA breaches and reopenings."""
    if sim.status not in (S.RESOLVED, S.CLOSED) or rng.random() > 0.35:
        return
    sim.at(sim.t + dt.timedelta(minutes=lognormal_minutes(rng, 90, 1.3)))
    mean = 2.9 + 2.2 * quality - (0.6 if sim.fr_breached or sim.res_breached else 0.0) - 0.6 * sim.reopen_count
    mean += 0.2 if not ai else 0.0
    sim.rate(int(clamp(round(rng.gauss(mean, 0.8)), 1, 5)))
