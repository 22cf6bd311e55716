"""One simulated ticket: its clock, the state machine, SLA due times and the sweep's breach flags,
escalation, assignment, AI runs, and the row it becomes. It follows the rules the services apply, but writes
batch-local rows (``rows.Batch``) instead of calling them."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from supportflow import i18n
from supportflow.demo.context import Context, Queue
from supportflow.demo.texts import AMOUNTS, PLATFORMS, VERSIONS
from supportflow.llm import cost_for
from tickets import sla
from tickets.models import Ticket, TicketEvent

if TYPE_CHECKING:
    from supportflow.demo.rows import Batch

OPENAI_MODEL = "gpt-4o-mini"
PRIORITIES = ("low", "normal", "high", "urgent")
P_RANK = {p: i for i, p in enumerate(PRIORITIES)}
K = TicketEvent.Kind
S = Ticket.Status
ACTIVE = {S.NEW, S.OPEN, S.PENDING}


def fill(rng: random.Random, text: str, first: str = "") -> str:
    return text.format(
        p=rng.choice(PLATFORMS), v=rng.choice(VERSIONS), a=rng.choice(AMOUNTS), n=rng.randint(2, 95), first=first
    )


def clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo if x < lo else hi if x > hi else x


def lognormal_minutes(rng: random.Random, median: float, sigma: float = 0.9) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def agent_time(rng: random.Random, t: dt.datetime, minutes: float, priority: str) -> dt.datetime:
    """When an agent gets to it: after ``minutes`` of queue time, but most agents work 05–23 UTC on
    weekdays and 07–21 at weekends (urgent tickets are picked up around the clock)."""
    when = t + dt.timedelta(minutes=minutes)
    if priority == "urgent" or rng.random() < 0.3:
        return when
    start, stop = (5, 23) if when.weekday() < 5 else (7, 21)
    if start <= when.hour < stop:
        return when
    day = when.date() if when.hour < start else when.date() + dt.timedelta(days=1)
    opens = 5 if day.weekday() < 5 else 7
    return dt.datetime.combine(day, dt.time(opens), dt.UTC) + dt.timedelta(minutes=rng.uniform(2, 90))


class Stop(Exception):
    """The next step happens after ``end``: the ticket stays as it is."""


@dataclass
class Spec:
    index: int
    created: dt.datetime
    customer: int  # index into the batch's customers
    customer_first: str
    vip: bool
    channel: str
    language: str
    category: str  # the true one
    gap: str  # knowledge-gap topic, or ""
    unrouted: bool


class TicketSim:
    """One ticket simulated through the services' rules; rows use batch-local indexes, made ids on flush."""

    def __init__(self, ctx: Context, spec: Spec, rng: random.Random, end: dt.datetime, batch: Batch) -> None:
        self.ctx, self.spec, self.rng, self.end, self.batch = ctx, spec, rng, end, batch
        self.t = spec.created
        self.status = S.NEW
        self.seq = 0
        self.first_response_at: dt.datetime | None = None
        self.last_customer_at: dt.datetime | None = None
        self.resolved_at: dt.datetime | None = None
        self.closed_at: dt.datetime | None = None
        self.reopen_count = 0
        self.paused_at: dt.datetime | None = None
        self.paused_minutes = 0
        self.fr_breached = self.res_breached = False
        self.escalated_at: dt.datetime | None = None
        self.escalation_reason = ""
        self.needs_human = False
        self.assignee: tuple[int, str] | None = None
        self.department: Queue | None = None
        self.priority = "normal"
        self.category = self.sentiment = self.language = ""
        self.csat: tuple[int, str, dt.datetime] | None = None
        self.ai_cost = Decimal(0)
        self.agent_replied = False
        self.ai_replies = 0
        self.last_activity = spec.created
        self.triage: dict = {}
        self.base_confidence, self.base_answerable = 0.0, True  # the first message's retrieval
        self.pending_drafts: list[int] = []  # batch indexes of drafts waiting for an agent
        self.events: list[tuple] = []
        self.ticket_idx = len(batch.tickets)
        batch.tickets.append(None)  # placeholder, filled by finish()

    # -- primitives

    def at(self, t: dt.datetime) -> dt.datetime:
        """Move the clock to ``t`` (not before now); the SLA sweep runs on the way; past ``end``: stop."""
        t = max(t, self.t + dt.timedelta(milliseconds=1))
        self.sweep(t)
        if t > self.end:
            raise Stop
        self.t = t
        self.last_activity = t
        return t

    def event(
        self,
        kind: str,
        *,
        t: dt.datetime | None = None,
        actor: tuple[int, str] | None = None,
        actor_kind: str = "system",
        field: str = "",
        from_value: object = "",
        to_value: object = "",
        note: str = "",
    ) -> None:
        self.events.append(
            (
                t or self.t,
                kind,
                field,
                str(from_value)[:255],
                str(to_value)[:255],
                note,
                actor[0] if actor else None,
                actor_kind,
            )
        )

    def message(
        self,
        author_kind: str,
        body: str,
        *,
        user: tuple[int, str] | None = None,
        internal: bool = False,
        confidence: float | None = None,
        citations: list | None = None,
        feedback: str = "",
    ) -> int:
        """``feedback``: the customer's vote under an AI answer ("yes" / "no"), given a minute later."""
        self.seq += 1
        idx = len(self.batch.messages)
        self.batch.messages.append(
            [
                self.ticket_idx,
                self.seq,
                author_kind,
                user[0] if user else None,
                body,
                internal,
                confidence,
                json.dumps(citations or []),
                self.t,
                feedback,
                self.t + dt.timedelta(minutes=1) if feedback else None,
            ]
        )
        if author_kind == "customer":
            self.last_customer_at = self.t
            if self.status in (S.PENDING, S.RESOLVED):
                self.transition(S.OPEN, actor_kind="customer")
        elif author_kind in ("agent", "ai") and not internal:
            if author_kind == "ai":
                self.ai_replies += 1
            if self.first_response_at is None:
                self.first_response_at = self.t
                due = self.fr_due()
                if due and self.t > due:
                    self.fr_breached = True
                self.event(K.FIRST_RESPONSE, actor=user, actor_kind=author_kind, to_value=author_kind)
            if self.status == S.NEW:
                self.transition(S.OPEN, actor=user, actor_kind=author_kind)
        return idx

    def transition(
        self, to: str, *, actor: tuple[int, str] | None = None, actor_kind: str = "system", note: str = ""
    ) -> None:
        before = self.status
        if before == S.PENDING and self.paused_at is not None:
            calendar = self.department.calendar if self.department else None
            self.paused_minutes += round(sla.minutes_between(self.paused_at, self.t, calendar))
            self.paused_at = None
        if to == S.PENDING and self.paused_at is None:
            self.paused_at = self.t
        if to == S.RESOLVED:
            self.resolved_at = self.t
            due = self.res_due()
            if due and self.t > due:
                self.res_breached = True
        if to == S.CLOSED:
            self.closed_at = self.t
            self.resolved_at = self.resolved_at or self.t
        if before == S.RESOLVED and to == S.OPEN:
            self.reopen_count += 1
            self.resolved_at = None
        self.status = to
        self.event(
            K.STATUS_CHANGED,
            actor=actor,
            actor_kind=actor_kind,
            field="status",
            from_value=before,
            to_value=to,
            note=note,
        )

    def _target(self) -> tuple[int, int] | None:
        if self.department is None:
            return None
        return self.department.targets.get(self.priority)

    def fr_due(self) -> dt.datetime | None:
        target = self._target()
        return sla.add_minutes(self.spec.created, target[0], self.department.calendar) if target else None

    def res_due(self) -> dt.datetime | None:
        target = self._target()
        if not target:
            return None
        return sla.add_minutes(self.spec.created, target[1] + self.paused_minutes, self.department.calendar)

    def sweep(self, until: dt.datetime) -> None:
        """What the minute-by-minute SLA sweep would have done between now and ``until``."""
        until = min(until, self.end)
        if not self.fr_breached and self.first_response_at is None and self.status in ACTIVE:
            due = self.fr_due()
            if due and due < until:
                self._breach(
                    "first_response", min(until, max(due, self.t) + dt.timedelta(seconds=self.rng.uniform(1, 59)))
                )
        if not self.res_breached and self.status in (S.NEW, S.OPEN) and self.paused_at is None:
            due = self.res_due()
            if due and due < until:
                self._breach("resolution", min(until, max(due, self.t) + dt.timedelta(seconds=self.rng.uniform(1, 59))))

    def _breach(self, what: str, t: dt.datetime) -> None:
        if what == "first_response":
            self.fr_breached = True
        else:
            self.res_breached = True
        self.event(K.SLA_BREACHED, t=t, field=what)
        if self.escalated_at is None:
            label = "first response" if what == "first_response" else "resolution"
            self.escalate(f"SLA breached: {label} overdue", t=t)

    def escalate(
        self,
        reason: str,
        *,
        t: dt.datetime | None = None,
        actor_kind: str = "system",
        actor: tuple[int, str] | None = None,
    ) -> None:
        self.escalated_at = t or self.t
        self.escalation_reason = reason[:255]
        self.needs_human = True
        self.event(K.ESCALATED, t=t, actor=actor, actor_kind=actor_kind, note=reason)

    def set_priority(self, priority: str, *, actor: tuple[int, str] | None = None, actor_kind: str = "ai") -> None:
        if priority != self.priority:
            self.event(
                K.PRIORITY_CHANGED,
                actor=actor,
                actor_kind=actor_kind,
                field="priority",
                from_value=self.priority,
                to_value=priority,
            )
            self.priority = priority

    def correct_triage(self, field: str, value: str, *, agent: tuple[int, str]) -> None:
        """An agent fixes the AI's triage ``field`` (``category`` or ``sentiment``)."""
        self.event(
            K.TRIAGE_CHANGED,
            actor=agent,
            actor_kind="agent",
            field=field,
            from_value=getattr(self, field),
            to_value=value,
        )
        setattr(self, field, value)

    def set_department(
        self, dep: Queue | None, *, actor: tuple[int, str] | None = None, actor_kind: str = "ai"
    ) -> None:
        if dep is None or dep is self.department:
            return
        self.event(
            K.DEPARTMENT_CHANGED,
            actor=actor,
            actor_kind=actor_kind,
            field="department",
            from_value=self.department.name if self.department else "",
            to_value=dep.name,
        )
        self.department = dep
        if self.assignee and self.assignee not in dep.agents:
            self.event(
                K.ASSIGNED,
                actor=actor,
                actor_kind=actor_kind,
                field="assignee",
                from_value=self.assignee[1],
                note="Assignee does not work the new queue.",
            )
            self.assignee = None

    def assign(self, who: tuple[int, str], *, by: tuple[int, str] | None = None) -> None:
        if self.assignee == who:
            return
        self.event(
            K.ASSIGNED,
            actor=by,
            actor_kind="agent" if by else "system",
            field="assignee",
            from_value=self.assignee[1] if self.assignee else "",
            to_value=who[1],
        )
        self.assignee = who

    def pick_agent(self) -> tuple[int, str]:
        dep = self.department
        if dep and dep.agents:
            return self.rng.choices(dep.agents, weights=dep.agent_weights)[0]
        return self.ctx.floaters[0] if self.rng.random() < 0.7 else self.rng.choice(self.ctx.floaters)

    def run(
        self,
        kind: str,
        provider: str,
        model: str,
        message_idx: int,
        *,
        key: str,
        tokens: tuple[int, int] = (0, 0),
        latency: int,
        failed: str = "",
        fallback: bool = False,
        meta: dict | None = None,
    ) -> None:
        cost = cost_for(model, *tokens) if provider == "openai" and not failed else Decimal(0)
        self.ai_cost += cost
        started = self.t - dt.timedelta(milliseconds=latency)
        self.batch.runs.append(
            [
                key,
                self.ticket_idx,
                message_idx,
                kind,
                provider,
                model,
                tokens[0],
                tokens[1],
                cost,
                latency,
                "failed" if failed else "succeeded",
                failed,
                2 if failed else 1,
                fallback,
                json.dumps(meta or {}),
                started,
                self.t,
            ]
        )

    # -- the row

    def promised_reply(self):
        """What the customer was told at the handover (``tickets.reply_estimates``): the SLA bound — the history
        keeps no queue medians to beat it with."""
        target = self._target()
        if self.escalated_at is None or not target:
            return None
        due = self.fr_due()
        if due > self.escalated_at:
            return due
        return sla.add_minutes(self.escalated_at, target[0], self.department.calendar)

    def finish(self, triage: dict) -> None:
        self.events.sort(key=lambda e: e[0])
        for e in self.events:
            self.batch.events.append([self.ticket_idx, *e])
        self.last_activity = max([self.last_activity, *(e[0] for e in self.events)])
        spec = self.spec
        self.batch.tickets[self.ticket_idx] = [
            triage["subject"],
            spec.customer,
            self.status,
            self.priority,
            spec.channel,
            self.category,
            self.sentiment,
            self.language,
            self.department.id if self.department else None,
            self.assignee[0] if self.assignee else None,
            self.escalated_at is not None,
            self.escalation_reason,
            self.escalated_at,
            self.needs_human,
            triage["summary"],
            json.dumps(triage["details"]),
            self.fr_due(),
            self.res_due(),
            self.paused_at,
            self.paused_minutes,
            self.fr_breached,
            self.res_breached,
            spec.created,
            self.last_activity,
            self.first_response_at,
            self.last_customer_at,
            self.resolved_at,
            self.closed_at,
            self.reopen_count,
            self.csat[0] if self.csat else None,
            self.csat[1] if self.csat else "",
            self.csat[2] if self.csat else None,
            self.ai_cost,
            self.seq,
            json.dumps({}),
            i18n.supported(spec.language) if spec.channel == "chat" else "",  # the page language: the browser's
            False,
            None,  # opened_by: the history's tickets came in through the channels
            None,  # merged_into
            self.promised_reply(),
        ]
