"""A simulated ticket with the AI pipeline on each customer message (triage, retrieval, answer, the
confidence gate, drafts) and the people around it: the agent who replies with or without the AI's
draft, the customer who rates the help."""

from __future__ import annotations

import datetime as dt
import json

from django.utils import translation

from supportflow import i18n
from supportflow.demo.ai import INTRO, OUTRO, SEE_ALSO
from supportflow.demo.context import Rule
from supportflow.demo.texts import AI_HOLDING_REPLY, AI_STEP, CATEGORY_ARTICLES, CSAT_COMMENTS, NOTES
from supportflow.demo.ticket import OPENAI_MODEL, P_RANK, K, S, TicketSim, clamp, fill, lognormal_minutes
from tickets.services import HANDOVER_NOTICE, HANDOVER_TEAM


class Sim(TicketSim):
    """A ticket simulated through the services' rules, with the AI and the people working it."""

    # -- the AI pipeline on one customer message

    def pipeline(
        self,
        message_idx: int,
        *,
        first: bool,
        confidence: float,
        answerable: bool,
        triggers: list[Rule],
        acknowledgement: bool = False,
    ) -> str:
        """Triage, answer, gate; returns ``sent``, ``escalated``, ``drafted`` or ``acknowledged``."""
        rng = self.rng
        self.at(self.t + dt.timedelta(seconds=rng.uniform(0.3, 3.0)))
        remote = rng.random() < 0.22
        stages = {"guard_ms": rng.randint(4, 30), "triage_ms": rng.randint(15, 90)}
        self.at(self.t + dt.timedelta(milliseconds=stages["triage_ms"]))
        self.run(
            "triage",
            "local",
            "triage-local",
            message_idx,
            key="triage-local",
            latency=stages["triage_ms"],
            meta={"result": {"category": self.triage.get("category", "")}},
        )
        remote_failed = ""
        if remote:
            latency = int(lognormal_minutes(rng, 900, 0.4))
            stages["triage_ms"] += latency
            remote_failed = rng.choice(("timeout", "rate_limited", "server_error")) if rng.random() < 0.04 else ""
            self.at(self.t + dt.timedelta(milliseconds=latency))
            self.run(
                "triage",
                "openai",
                OPENAI_MODEL,
                message_idx,
                key="triage",
                tokens=(0, 0) if remote_failed else (rng.randint(320, 680), rng.randint(60, 130)),
                latency=latency,
                failed=remote_failed,
                meta={"terminal": True, "reason": remote_failed} if remote_failed else {},
            )
        if first:
            self.apply_triage(remote and not remote_failed, remote_failed)
        if acknowledgement:
            self.batch.drafts.append(
                [
                    self.ticket_idx,
                    message_idx,
                    "",
                    "[]",
                    0.0,
                    "local",
                    "",
                    json.dumps({"stages_ms": stages, "acknowledged": True}),
                    "discarded",
                    None,
                    None,
                    self.t,
                    self.t,
                ]
            )
            return "acknowledged"
        stages["retrieve_ms"] = rng.randint(25, 140)
        articles = self.citations() if answerable else []
        reply_remote = remote and answerable and bool(articles)
        reply_failed = ""
        provider, model = "local", "extractive"
        if reply_remote:
            latency = int(lognormal_minutes(rng, 2200, 0.35))
            reply_failed = rng.choice(("timeout", "server_error")) if rng.random() < 0.04 else ""
            self.at(self.t + dt.timedelta(milliseconds=stages["retrieve_ms"] + latency))
            self.run(
                "reply",
                "openai",
                OPENAI_MODEL,
                message_idx,
                key="reply",
                latency=latency,
                tokens=(0, 0) if reply_failed else (rng.randint(900, 2600), rng.randint(90, 320)),
                failed=reply_failed,
                meta={"terminal": True, "reason": reply_failed} if reply_failed else {},
            )
            stages["answer_ms"] = latency
            if not reply_failed:
                provider, model = "openai", OPENAI_MODEL
        if provider == "local":
            latency = rng.randint(40, 260)
            self.at(self.t + dt.timedelta(milliseconds=stages["retrieve_ms"] + latency))
            self.run(
                "reply",
                "local",
                "extractive",
                message_idx,
                key="reply-local",
                latency=latency,
                fallback=bool(reply_failed or remote_failed),
            )
            stages["answer_ms"] = stages.get("answer_ms", 0) + latency
        dep = self.department
        threshold = dep.threshold if dep else 0.6
        human_engaged = self.escalated_at is not None or self.agent_replied
        auto = (dep is None or dep.auto_reply) and not human_engaged
        send = auto and answerable and not triggers and confidence >= threshold
        if answerable and not triggers and confidence < threshold:
            triggers = [r for r in self.ctx.rules if r.condition == "low_confidence"][:1]
        similarity = round(clamp(0.35 + 0.55 * confidence + rng.gauss(0, 0.04)), 4) if answerable else 0.0
        gate = {
            "confidence": round(confidence, 4),
            "threshold": threshold,
            "auto_reply_allowed": auto,
            "human_engaged": human_engaged,
            "triggers": [{"rule": r.name, "reason": r.reason, "set_priority": r.set_priority} for r in triggers],
            "evidence": {
                "similarity": similarity,
                "unit": round(clamp(similarity + rng.gauss(0.05, 0.05)), 4),
                "agree": 1.0 if rng.random() < confidence else 0.0,
                "margin": round(clamp(rng.gauss(0.08, 0.05)) * confidence, 4),
            }
            if answerable
            else {"reason": "no passage"},
            "unsupported": [],
            "stages_ms": stages,
            "total_ms": sum(stages.values()) + rng.randint(5, 40),
        }
        body = self.ai_body(articles) if answerable else fill(rng, AI_HOLDING_REPLY, self.spec.customer_first)
        draft = [
            self.ticket_idx,
            message_idx,
            body,
            json.dumps(articles),
            round(confidence, 4),
            provider,
            model,
            json.dumps(gate),
            "sent" if send else "pending",
            None,
            None,
            self.t,
            self.t if send else None,
        ]
        draft_idx = len(self.batch.drafts)
        self.batch.drafts.append(draft)
        if send:
            sent = self.message(
                "ai",
                body,
                confidence=round(confidence, 4),
                citations=articles,
                feedback=answer_vote(confidence, self.seq),
            )
            draft[9] = sent
            self.event(K.AI_ANSWERED, actor_kind="ai", note=f"confidence {confidence:.2f}")
            return "sent"
        reason = triggers[0].reason if triggers else "AI not confident enough to answer"
        self.event(K.AI_DRAFTED, actor_kind="ai", note=reason)
        self.pending_drafts.append(draft_idx)
        raised = max((r.set_priority for r in triggers if r.set_priority), key=lambda p: P_RANK[p], default="")
        if self.escalated_at is None:
            self.escalate(reason, actor_kind="ai")
            if raised and P_RANK[raised] > P_RANK[self.priority]:
                self.set_priority(raised)
            with translation.override(i18n.supported(self.spec.language) or "en"):  # as the customer reads it
                team = dep.name if dep else str(HANDOVER_TEAM)
                self.message("system", HANDOVER_NOTICE.format(team=team))
            if self.assignee is None and dep and dep.agents:
                self.assign(self.pick_agent())
            return "escalated"
        if raised and P_RANK[raised] > P_RANK[self.priority]:
            self.set_priority(raised)
        return "drafted"

    def follow_up(self, message_idx: int, *, shift: float = -0.05) -> str:
        """The pipeline on a later customer message: it retrieves with the conversation so far, so the
        confidence stays near the first answer's; a person is already involved, so it only drafts."""
        answerable = self.base_answerable
        confidence = clamp(self.base_confidence + self.rng.gauss(shift, 0.08)) if answerable else 0.0
        return self.pipeline(message_idx, first=False, confidence=confidence, answerable=answerable, triggers=[])

    def apply_triage(self, remote: bool, remote_failed: str) -> None:
        """The AI's triage of the first message: its guesses (right or not) and the events they write."""
        spec, ctx = self.spec, self.ctx
        guess = self.triage["category"]
        for name, value in (("category", guess), ("sentiment", self.triage["sentiment"]), ("language", spec.language)):
            self.event(K.TRIAGE_CHANGED, actor_kind="ai", field=name, to_value=value)
        self.category, self.sentiment, self.language = guess, self.triage["sentiment"], spec.language
        if P_RANK[self.triage["priority"]] > P_RANK[self.priority]:
            self.set_priority(self.triage["priority"])
        if not spec.unrouted:
            self.set_department(ctx.departments[ctx.by_category[guess]])
        self.event(
            K.AI_TRIAGED,
            actor_kind="ai",
            to_value=guess,
            note=f"openai {OPENAI_MODEL}" if remote else f"local triage-local-v{ctx.model_version}",
        )
        if remote_failed:
            self.triage["fallback"] = remote_failed
        self.triage["provider"] = "openai" if remote else "local"
        self.triage["model"] = OPENAI_MODEL if remote else f"triage-local-v{ctx.model_version}"

    def citations(self) -> list[dict]:
        slugs = [s for s in CATEGORY_ARTICLES.get(self.spec.category, ()) if s in self.ctx.articles]
        if not slugs:
            return []
        chosen = self.rng.sample(slugs, k=min(len(slugs), 1 if self.rng.random() < 0.6 else 2))
        return [{"n": n, **self.ctx.articles[s]} for n, s in enumerate(chosen, start=1)]

    def ai_body(self, citations: list[dict]) -> str:
        language = self.spec.language if self.spec.language in INTRO else "en"
        if not citations:
            return OUTRO[language]
        lines = [
            INTRO[language].format(title=citations[0]["title"]),
            "",
            AI_STEP,
        ]
        if len(citations) > 1:
            lines += ["", SEE_ALSO[language].format(title=citations[1]["title"], ref="[2]")]
        return "\n".join([*lines, "", OUTRO[language]])

    # -- people

    def agent_reply(self, body: str, *, pending: bool = False, resolve: bool = False) -> None:
        """The assignee answers (using the AI's draft when there is one and it fits), maybe with a note."""
        rng = self.rng
        if self.assignee is None:
            self.assign(self.pick_agent(), by=None if self.department else self.ctx.floaters[0])
        agent = self.assignee
        if rng.random() < 0.25:
            self.message("agent", fill(rng, rng.choice(NOTES)), user=agent, internal=True)
            self.at(self.t + dt.timedelta(minutes=rng.uniform(1, 20)))
        used = None
        for draft_idx in self.pending_drafts:
            draft = self.batch.drafts[draft_idx]
            if used is None and not pending and draft[4] >= 0.45 and rng.random() < 0.55:
                used = draft
                body = draft[2]
            elif rng.random() < 0.5:
                draft[8], draft[10], draft[12] = "discarded", agent[0], self.t
        self.pending_drafts = [
            i for i in self.pending_drafts if self.batch.drafts[i][8] == "pending" and self.batch.drafts[i] is not used
        ]
        idx = self.message("agent", body, user=agent)
        self.agent_replied = True
        if used is not None:
            used[8], used[9], used[10], used[12] = "used", idx, agent[0], self.t
        if pending:
            self.transition(S.PENDING, actor=agent, actor_kind="agent")
        if resolve:
            self.transition(S.RESOLVED, actor=agent, actor_kind="agent")

    def rate(self, score: int) -> None:
        comment = self.rng.choice(CSAT_COMMENTS[score]) if self.rng.random() < 0.35 else ""
        self.csat = (score, comment, self.t)
        self.event(K.CSAT_RECORDED, actor_kind="customer", field="csat_score", to_value=score, note=comment)


def answer_vote(confidence: float, seq: int) -> str:
    """About a third of customers answer "Did this answer your question?"; the less sure the answer, the
    likelier a "No". Derived from the answer itself, so the history's random stream is left as it was."""
    draw = (seq * 7919 + int(confidence * 10_000)) % 100
    if draw >= 35:
        return ""
    return "no" if draw < 35 * max(0.05, 1.0 - confidence) else "yes"
