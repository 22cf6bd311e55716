"""Escalation rules are data (``tickets.models.EscalationRule``, edited in the admin); this module only
says what each condition reads. Every active rule that matches is a trigger; any trigger keeps the AI
from answering on its own and hands the ticket to a human with the first trigger's reason.

An explicit request for a human always escalates, even if an admin switched that rule off.

``CATEGORY_DEPARTMENT`` is the routing policy: the department that owns each triage category.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tickets.models import EscalationRule, Priority

Condition = EscalationRule.Condition
PRIORITY_ORDER = {p: i for i, p in enumerate(["low", "normal", "high", "urgent"])}
ANGRY_SCORE = -0.6

# Routing policy: the department that owns each triage category (the local model's department head is
# trained on these pairs, and the category head's view of the department is carried over through them).
CATEGORY_DEPARTMENT = {
    "refund": "billing",
    "payment_failed": "billing",
    "invoice": "billing",
    "plan_change": "billing",
    "sync": "technical",
    "app_crash": "technical",
    "import_export": "technical",
    "search": "technical",
    "how_to": "technical",
    "sign_in": "account-security",
    "two_factor": "account-security",
    "account_security": "account-security",
    "data_request": "account-security",
    "pricing": "sales",
    "team_plan": "sales",
    "discount": "sales",
    "quote": "sales",
}


@dataclass
class Context:
    text: str
    priority: str = Priority.NORMAL
    category: str = ""
    sentiment: str = ""
    sentiment_score: float = 0.0
    human_requested: bool = False
    injection: bool = False
    out_of_scope: bool = False
    has_answer: bool = True
    confidence: float | None = None
    threshold: float = 0.6
    customer_messages: int = 1
    ai_replies: int = 0
    is_vip: bool = False
    signals: set[str] = field(default_factory=set)
    negative_feedback: bool = False  # "no, that didn't help" about the assistant's last answer
    unanswered_streak: int = 0  # customer turns in a row left unanswered or unhelped, this one included


@dataclass(frozen=True)
class Trigger:
    rule: str
    reason: str
    set_priority: str = ""
    condition: str = ""

    @property
    def unanswered(self) -> bool:
        """The assistant could not answer (low confidence, nothing in the knowledge base, out of scope):
        on its own a reason to ask, not to hand over (``UNANSWERED_STREAK`` decides when to stop asking)."""
        return self.condition in UNANSWERED


# Conditions about the ticket rather than the message: once the ticket is with a person, they already
# did their work and must not keep the assistant from answering clear questions while the person comes.
HANDED_OVER_ALREADY = frozenset(
    {
        Condition.PRIORITY_AT_LEAST,
        Condition.VIP,
        Condition.CATEGORY_IN,
        Condition.REPEATED_CONTACT,
        Condition.AI_REPLIES_AT_LEAST,
        Condition.HUMAN_REQUESTED,
        Condition.NEGATIVE_FEEDBACK,
    }
)

# Conditions that say "the assistant could not answer" rather than "a person must take this".
UNANSWERED = frozenset({Condition.LOW_CONFIDENCE, Condition.NO_ANSWER, Condition.OUT_OF_SCOPE})


def _csv(value: str) -> list[str]:
    return [v.strip().lower() for v in value.split(",") if v.strip()]


def _int(value: str, default: int) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


def _matches(rule: EscalationRule, ctx: Context) -> bool:
    c = rule.condition
    if c == Condition.PRIORITY_AT_LEAST:
        return PRIORITY_ORDER.get(ctx.priority, 1) >= PRIORITY_ORDER.get(rule.value.strip().lower(), 3)
    if c == Condition.CATEGORY_IN:
        return ctx.category.lower() in _csv(rule.value)
    if c == Condition.SENTIMENT_IS:
        wanted = rule.value.strip().lower()
        if wanted == "angry":
            return ctx.sentiment_score <= ANGRY_SCORE
        return ctx.sentiment == wanted
    if c == Condition.KEYWORDS:
        text = " ".join(ctx.text.lower().split())
        return any(word in text for word in _csv(rule.value))
    if c == Condition.HUMAN_REQUESTED:
        return ctx.human_requested
    if c == Condition.INJECTION:
        return ctx.injection
    if c == Condition.LOW_CONFIDENCE:
        return ctx.has_answer and ctx.confidence is not None and ctx.confidence < ctx.threshold
    if c == Condition.NO_ANSWER:
        return not ctx.has_answer
    if c == Condition.REPEATED_CONTACT:
        return ctx.customer_messages >= _int(rule.value, 4)
    if c == Condition.AI_REPLIES_AT_LEAST:
        return ctx.ai_replies >= _int(rule.value, 2)
    if c == Condition.VIP:
        return ctx.is_vip
    if c == Condition.OUT_OF_SCOPE:
        return ctx.out_of_scope
    if c == Condition.UNANSWERED_STREAK:
        return ctx.unanswered_streak >= _int(rule.value, 2)
    if c == Condition.NEGATIVE_FEEDBACK:
        return ctx.negative_feedback
    return False


def active_rules() -> list[EscalationRule]:
    return list(EscalationRule.objects.filter(is_active=True).order_by("order", "pk"))


def switch_off(condition: str) -> None:
    """Deactivate every rule of ``condition`` (the evaluations, inside their rolled-back transaction): a
    bulk ``update()`` sends no signal, so the stamp that makes the pipeline re-read its rules is set here."""
    from tickets import ai_config

    EscalationRule.objects.filter(condition=condition).update(is_active=False)
    ai_config.invalidate()


def evaluate(ctx: Context, rules: list[EscalationRule] | None = None) -> list[Trigger]:
    rules = active_rules() if rules is None else rules
    triggers = [Trigger(r.name, r.reason, r.set_priority, r.condition) for r in rules if _matches(r, ctx)]
    if ctx.human_requested and not any(r.condition == Condition.HUMAN_REQUESTED for r in rules if _matches(r, ctx)):
        triggers.insert(
            0, Trigger("Customer asks for a human", "Customer asked for a human", "", Condition.HUMAN_REQUESTED)
        )
    if ctx.negative_feedback and not any(t.condition == Condition.NEGATIVE_FEEDBACK for t in triggers):
        triggers.insert(
            0,
            Trigger(
                "Answer did not help", "Customer said the AI's answer did not help", "", Condition.NEGATIVE_FEEDBACK
            ),
        )
    return triggers


def streak_limit(rules: list[EscalationRule] | None = None) -> int | None:
    """How many unanswered turns in a row hand over (the active ``UNANSWERED_STREAK`` rule), or ``None``
    when no such rule is active: then an unanswered turn hands over at once, as before the rule existed."""
    rules = active_rules() if rules is None else rules
    limits = [_int(r.value, 2) for r in rules if r.condition == Condition.UNANSWERED_STREAK]
    return min(limits) if limits else None


def raised_priority(current: str, triggers: list[Trigger]) -> str | None:
    """The highest priority any trigger asks for, if above the current one."""
    wanted = [t.set_priority for t in triggers if t.set_priority]
    if not wanted:
        return None
    best = max(wanted, key=lambda p: PRIORITY_ORDER.get(p, 0))
    return best if PRIORITY_ORDER.get(best, 0) > PRIORITY_ORDER.get(current, 0) else None
