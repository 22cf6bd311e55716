"""The triage decision for one text: the classifier's head probabilities and nearest-example similarity,
combined with the rule cues (urgency words, a request for a person, repeated contact), sentiment and
language, into a ``TriageResult`` with a one-line summary and whether a human is needed.

Priority: the classifier's, raised to at least ``high`` by security, fraud, outage, legal, data-loss
or time-pressure words, then one level for an angry customer or repeated contact and one for a VIP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from tickets.ai.triage import cues, language, sentiment
from tickets.ai.triage.model import LocalModel
from tickets.models import Priority

PRIORITIES = ("low", "normal", "high", "urgent")
REPEATED_CONTACT_AT = 3  # customer messages in the conversation
RULE_CONFIDENCE = 0.8  # reported for a priority set by a keyword rule rather than the classifier
SUMMARY_CHARS = 140
MAX_TEXT_CHARS = 2000  # what is read of a text (the summary reads twice as much)

# Signals that set a priority floor, and signals that by themselves need a human.
PRIORITY_FLOORS = {
    "security": "high",
    "fraud": "high",
    "outage": "high",
    "legal": "high",
    "data_loss": "high",
    "time_pressure": "high",
}
HUMAN_REASONS = (  # first match is the reason shown
    ("human_requested", "Customer asked for a human"),
    ("security", "Possible security issue: account access or suspicious activity"),
    ("fraud", "Possible fraud"),
    ("legal", "Legal or regulatory matter"),
    ("out_of_scope", "Out of scope: no department handles this"),
    ("angry", "Customer is very upset"),
)


@dataclass(frozen=True)
class TriageResult:
    category: str
    category_confidence: float
    department: str
    department_confidence: float
    priority: str
    priority_confidence: float
    sentiment: str
    sentiment_score: float
    language: str
    needs_human: bool
    needs_human_reason: str
    out_of_scope: bool
    summary: str
    signals: tuple[str, ...]
    model_version: int


_SENTENCE = re.compile(r"(?<=[.!?¡¿])\s+|\n+")
_GREETING = re.compile(
    r"^\W*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|thanks?|thank you|many thanks|cheers|best|"
    r"regards|kind regards|best regards|greetings|hallo|guten tag|liebe|lieber|danke|vielen dank|grüße|"
    r"mit freundlichen grüßen|hola|buenos días|buenas|gracias|saludos|bonjour|salut|merci|cordialement|ciao|"
    r"buongiorno|grazie|saluti|goedemorgen|bedankt|groeten|olá|bom dia|obrigad[oa])\b",
    re.IGNORECASE,
)
_PROBLEM_WORDS = re.compile(
    r"\b(?:can'?t|cannot|unable|won'?t|doesn'?t|didn'?t|not|never|error|fail\w*|crash\w*|stuck|lost|missing|"
    r"charged|refund|cancel|broken|wrong|help|how|why|where|when|what|need|want|kann nicht|funktioniert|"
    r"fehler|no puedo|no funciona|error|ne peux|marche pas|non riesco|werkt niet|não consigo)\b",
    re.IGNORECASE,
)


def summarize(text: str, limit: int = SUMMARY_CHARS) -> str:
    """One line: the most informative sentence (a question or a problem statement, not a greeting)."""
    sentences = [" ".join(s.split()) for s in _SENTENCE.split(text.strip()[: MAX_TEXT_CHARS * 2])]
    sentences = [s for s in sentences if s]
    if not sentences:
        return ""

    def score(item: tuple[int, str]) -> float:
        position, sentence = item
        words = len(sentence.split())
        if _GREETING.match(sentence) and words <= 6:
            return -1.0
        value = min(words, 25) / 5 + 2.0 * ("?" in sentence) + 2.0 * bool(_PROBLEM_WORDS.search(sentence))
        return value - 0.3 * position

    best = max(enumerate(sentences), key=score)[1]
    if len(best) <= limit:
        return best
    cut = best[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:-") + "…"


def _bump(priority: str, levels: int = 1) -> str:
    return PRIORITIES[min(len(PRIORITIES) - 1, _rank(priority) + levels)]


def _rank(priority: str) -> int:
    return PRIORITIES.index(priority) if priority in PRIORITIES else 1


def decide(
    model: LocalModel,
    text: str,
    proba: dict[str, np.ndarray],
    similarity: float,
    *,
    customer_messages: int = 1,
    is_vip: bool = False,
) -> TriageResult:
    """The triage result for one text from its head probabilities and nearest-example similarity."""

    def top(name: str) -> tuple[str, float, np.ndarray | None]:
        head = model.heads.get(name)
        if head is None or not head.labels:
            return "", 0.0, None
        p = proba[name]
        return head.labels[int(p.argmax())], float(p.max()), p

    category, category_confidence, _ = top("category")
    department, department_confidence, _ = top("department")
    predicted_priority, priority_confidence, priority_p = top("priority")
    predicted_priority = predicted_priority or Priority.NORMAL

    sentiment_score = sentiment.score(text)
    sentiment_label = sentiment.label(sentiment_score)
    if "sentiment" in proba and model.heads.get("sentiment"):
        by_label = dict(zip(model.heads["sentiment"].labels, proba["sentiment"], strict=True))
        polarity = float(by_label.get("positive", 0.0) - by_label.get("negative", 0.0))
        sentiment_label = sentiment.blended_label(
            sentiment_score, polarity, cues.sentiment_cue_score(text), hypothetical=cues.hypothetical_question(text)
        )
    found = cues.urgency_signals(text)
    flags: list[str] = []
    if cues.human_requested(text):
        flags.append("human_requested")
    flags += [name for name in cues.URGENCY_SIGNALS if name in found]
    if customer_messages >= REPEATED_CONTACT_AT or cues.repeated_contact_mentioned(text):
        flags.append("repeated_contact")
    if sentiment.is_angry(sentiment_score):
        flags.append("angry")
    if is_vip:
        flags.append("vip")

    out_of_scope = cues.out_of_scope(
        text=text,
        similarity=similarity,
        confidence=category_confidence,
        min_similarity=model.min_similarity,
        min_confidence=model.min_confidence,
    )
    if out_of_scope:
        department = ""

    priority = predicted_priority
    for name in found:
        floor = PRIORITY_FLOORS.get(name)
        if floor and _rank(floor) > _rank(priority):
            priority = floor
    if "angry" in flags or "repeated_contact" in flags:
        priority = _bump(priority)
    if is_vip:
        priority = _bump(priority)
    if priority != predicted_priority:
        at_least = 0.0
        if priority_p is not None and model.heads.get("priority"):
            labels = model.heads["priority"].labels
            at_least = float(
                sum(p for label, p in zip(labels, priority_p, strict=True) if _rank(label) >= _rank(priority))
            )
        priority_confidence = max(at_least, RULE_CONFIDENCE)

    reasons = {*flags, *(["out_of_scope"] if out_of_scope else [])}
    needs_human_reason = next((reason for key, reason in HUMAN_REASONS if key in reasons), "")
    return TriageResult(
        category=category,
        category_confidence=round(category_confidence, 4),
        department=department,
        department_confidence=round(department_confidence, 4),
        priority=priority,
        priority_confidence=round(priority_confidence, 4),
        sentiment=sentiment_label,
        sentiment_score=round(sentiment_score, 4),
        language=language.detect(text),
        needs_human=bool(needs_human_reason),
        needs_human_reason=needs_human_reason,
        out_of_scope=out_of_scope,
        summary=summarize(text),
        signals=tuple(flags),
        model_version=model.version,
    )


def empty_result(version: int) -> TriageResult:
    return TriageResult(
        category="",
        category_confidence=0.0,
        department="",
        department_confidence=0.0,
        priority=Priority.NORMAL,
        priority_confidence=0.0,
        sentiment="neutral",
        sentiment_score=0.0,
        language="",
        needs_human=False,
        needs_human_reason="",
        out_of_scope=False,
        summary="",
        signals=(),
        model_version=version,
    )
