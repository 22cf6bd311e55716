"""Local (no-network) triage: category, department and priority from a classifier on sentence
embeddings, plus sentiment, language, rule signals (``cues.py``), an extractive summary and whether a
human is needed.

The classifier (``model.py``) is one multinomial logistic regression per head (category, department,
priority and a sentiment view) on standardised all-MiniLM-L6-v2 embeddings, fitted in numpy by accelerated
gradient descent (deterministic: zero start, step 1/L, fixed step count, one BLAS thread). The department
is the average of its own head and the category head carried over to the departments its categories
belong to. It learns from the seed set we wrote (``seed.py``: the files in ``data/``) and from agents'
corrections (``TicketEvent`` rows by agents), which replace the seed label of the same text and weigh
``CORRECTION_WEIGHT`` times as much. ``train()`` stores each fit as a new ``TriageModel`` version
(a numpy ``.npz``, no pickle) and activates it; ``predict`` uses the active version, or until one
exists, the same fit made in memory (``model_version`` 0).

Out of scope: the nearest training example is less similar than ``min_similarity``, or the category
head's top probability is below ``min_confidence``. Both are chosen at training time on data: the
seed cross-validated (in scope) against the ``OUT_OF_SCOPE`` seed messages (small talk, other
products), catching as many as possible while keeping ``model.SCOPE_MIN_KEPT`` of the in-scope ones; they
are stored with the model. Messages under three words are never called out of scope.

Priority: the classifier's, raised to at least ``high`` by security, fraud, outage, legal, data-loss
or time-pressure words, then one level for an angry customer or repeated contact and one for a VIP.

``predict`` is safe to call from many threads: a loaded model is immutable, loading takes a lock, and
the active version is re-read from the database at most every ``RECHECK_SECONDS``. It uses the ORM, so
call it from sync code (``sync_to_async`` from async code).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from knowledge import embeddings
from tickets.ai.rules import CATEGORY_DEPARTMENT
from tickets.ai.triage import cues, language, sentiment
from tickets.ai.triage.model import (
    LocalModel,
    fit_with_scope,
    model_from_bytes,
    model_to_bytes,
    one_blas_thread,
)
from tickets.ai.triage.seed import OUT_OF_SCOPE, SEED, SENTIMENT_SEED
from tickets.models import ActorKind, Department, Message, Priority, Ticket, TicketEvent, TriageModel

logger = logging.getLogger(__name__)

ALGORITHM = "logreg-l2-nesterov/v1"
FIELDS = ("category", "department", "priority")
HEADS = (*FIELDS, "sentiment")  # sentiment: the embedding view, blended with VADER (see sentiment.py)
PRIORITIES = ("low", "normal", "high", "urgent")

CORRECTION_WEIGHT = 3.0
RECHECK_SECONDS = 30.0
MAX_TEXT_CHARS = 2000
MAX_CORRECTED_TICKETS = 20_000
CUSTOMER_MESSAGES_PER_EXAMPLE = 3
REPEATED_CONTACT_AT = 3  # customer messages in the conversation
RULE_CONFIDENCE = 0.8  # reported for a priority set by a keyword rule rather than the classifier
SUMMARY_CHARS = 140

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


# --- data types -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One labelled text. An empty label means "unknown" for that field (that head skips it)."""

    text: str
    category: str = ""
    department: str = ""
    priority: str = ""
    sentiment: str = ""
    source: str = "seed"  # seed | correction
    ticket_id: int | None = None

    def label(self, name: str) -> str:
        return getattr(self, name)


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


# --- training data --------------------------------------------------------------------------------


def prepare_text(text: str) -> str:
    """What gets embedded: whitespace collapsed, at most ``MAX_TEXT_CHARS`` (the encoder reads ~256 tokens)."""
    return " ".join(text.split())[:MAX_TEXT_CHARS]


def _key(text: str) -> str:
    return prepare_text(text).casefold()


def seed_examples() -> list[Example]:
    """The triage seed (category, department, priority) and the sentiment seed (sentiment only)."""
    return [
        Example(text=text, category=category, department=CATEGORY_DEPARTMENT[category], priority=priority)
        for text, category, priority in SEED
    ] + [Example(text=text, sentiment=label) for text, label in SENTIMENT_SEED]


def correction_examples() -> list[Example]:
    """Agents' corrections: per ticket, the last value an agent set for each field, on the ticket's
    first customer messages (the text triage saw)."""
    events = (
        TicketEvent.objects.filter(actor_kind=ActorKind.AGENT)
        .filter(
            Q(kind=TicketEvent.Kind.TRIAGE_CHANGED, field__in=["category", "sentiment"])
            | Q(kind=TicketEvent.Kind.DEPARTMENT_CHANGED)
            | Q(kind=TicketEvent.Kind.PRIORITY_CHANGED)
        )
        .order_by("-ticket_id", "created_at", "pk")
        .values_list("ticket_id", "kind", "field", "to_value")
    )
    field_of_kind = {TicketEvent.Kind.DEPARTMENT_CHANGED: "department", TicketEvent.Kind.PRIORITY_CHANGED: "priority"}
    labels: dict[int, dict[str, str]] = {}
    for ticket_id, kind, name, value in events.iterator(chunk_size=2000):
        if ticket_id not in labels and len(labels) >= MAX_CORRECTED_TICKETS:
            continue
        labels.setdefault(ticket_id, {})[field_of_kind.get(kind, name)] = value.strip()
    if not labels:
        return []
    names = {values["department"] for values in labels.values() if values.get("department")}
    slug_of = dict(Department.objects.filter(name__in=names).values_list("name", "slug"))
    texts: dict[int, list[str]] = {}
    messages = (
        Message.objects.filter(ticket_id__in=list(labels), author_kind=Message.AuthorKind.CUSTOMER, is_internal=False)
        .order_by("ticket_id", "seq")
        .values_list("ticket_id", "body")
    )
    for ticket_id, body in messages.iterator(chunk_size=2000):
        parts = texts.setdefault(ticket_id, [])
        if len(parts) < CUSTOMER_MESSAGES_PER_EXAMPLE:
            parts.append(body)
    examples = []
    for ticket_id in sorted(labels):
        values, text = labels[ticket_id], "\n".join(texts.get(ticket_id, []))
        priority, mood = values.get("priority", ""), values.get("sentiment", "")
        example = Example(
            text=text,
            category=values.get("category", ""),
            department=slug_of.get(values.get("department", ""), ""),
            priority=priority if priority in Priority.values else "",
            sentiment=mood if mood in Ticket.Sentiment.values else "",
            source="correction",
            ticket_id=ticket_id,
        )
        if text.strip() and any(example.label(name) for name in HEADS):
            examples.append(example)
    return examples


def training_examples() -> list[Example]:
    """Seed examples plus agents' corrections; a correction replaces the seed label of the same text."""
    corrections = correction_examples()
    corrected: dict[str, set[str]] = {}
    for example in corrections:
        corrected.setdefault(_key(example.text), set()).update(f for f in HEADS if example.label(f))
    examples = []
    for example in seed_examples():
        overridden = corrected.get(_key(example.text), set())
        if overridden:
            example = Example(
                text=example.text,
                **{name: "" if name in overridden else example.label(name) for name in HEADS},
            )
            if not any(example.label(name) for name in HEADS):
                continue
        examples.append(example)
    return examples + corrections


def _embed(texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.asarray(embeddings.embed([prepare_text(t) for t in texts]), dtype=np.float32)


@lru_cache(maxsize=2)
def _seed_vectors(model_name: str) -> dict[str, np.ndarray]:
    """The seed texts' embeddings, computed once per process (they change only with the code)."""
    texts = [*(text for text, _, _ in SEED), *(text for text, _ in SENTIMENT_SEED), *OUT_OF_SCOPE]
    return dict(zip(texts, _embed(texts), strict=True))


def _vectors(texts: Sequence[str]) -> np.ndarray:
    known = _seed_vectors(embeddings.model_name())
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    fresh = dict(zip(missing, _embed(missing), strict=True))
    return np.stack([known[t] if t in known else fresh[t] for t in texts])


def fit_examples(examples: Sequence[Example]) -> LocalModel:
    vectors = _vectors([e.text for e in examples])
    weight = np.array([CORRECTION_WEIGHT if e.source == "correction" else 1.0 for e in examples])
    return fit_with_scope(
        vectors,
        {name: [e.label(name) for e in examples] for name in HEADS},
        _vectors(OUT_OF_SCOPE),
        sample_weight=weight,
        evaluate=np.array([e.source == "seed" for e in examples]),
        exemplar_fields=FIELDS,
    )


# --- versions -------------------------------------------------------------------------------------


def active_version() -> int:
    """The active ``TriageModel`` version, 0 when none was trained yet (predict then uses the seed)."""
    return TriageModel.objects.filter(is_active=True).values_list("version", flat=True).first() or 0


def train(*, include_corrections: bool = True, activate: bool = True) -> TriageModel:
    """Fit a new version on the seed set (+ agents' corrections) and store it; activate it unless told not.

    The fitting (embedding ~200 texts, a few seconds) runs outside any transaction; the version number
    is taken in a short one, retried if another ``train()`` took the same number first.
    """
    examples = training_examples() if include_corrections else seed_examples()
    model = fit_examples(examples)
    labels = {name: list(head.labels) for name, head in model.heads.items()}
    counts = {
        "seed": sum(e.source == "seed" and bool(e.category) for e in examples),
        "sentiment_seed": sum(e.source == "seed" and not e.category for e in examples),
        "corrections": sum(e.source == "correction" for e in examples),
        "out_of_scope_seed": len(OUT_OF_SCOPE),
    }
    payload = model_to_bytes(model)
    for attempt in range(3):
        try:
            with transaction.atomic():
                version = (TriageModel.objects.aggregate(latest=Max("version"))["latest"] or 0) + 1
                if activate:
                    TriageModel.objects.filter(is_active=True).update(is_active=False)
                row = TriageModel.objects.create(
                    version=version,
                    algorithm=ALGORITHM,
                    embedding_model=embeddings.model_name(),
                    labels=labels,
                    weights=payload,
                    trained_on=counts,
                    metrics=model.metrics,
                    is_active=activate,
                )
            break
        except IntegrityError:
            if attempt == 2:
                raise
    if activate:
        _cache.set(
            model_from_bytes(payload, labels, version=row.version, metrics=model.metrics), checked=time.monotonic()
        )
    return row


# --- the in-process model cache -------------------------------------------------------------------


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model: LocalModel | None = None
        self.seed_model: LocalModel | None = None
        self.checked_at = float("-inf")

    def set(self, model: LocalModel, *, checked: float) -> None:
        with self.lock:
            self.model, self.checked_at = model, checked

    def clear(self) -> None:
        with self.lock:
            self.model, self.checked_at = None, float("-inf")

    def current(self) -> LocalModel:
        model, now = self.model, time.monotonic()
        if model is not None and now - self.checked_at < RECHECK_SECONDS:
            return model
        with self.lock:
            if self.model is not None and now - self.checked_at < RECHECK_SECONDS:
                return self.model
            row = TriageModel.objects.filter(is_active=True).only("version", "embedding_model").first()
            if row is not None and row.embedding_model != embeddings.model_name():
                logger.warning(
                    "Triage model v%s was trained on %s embeddings, not %s; using the seed model until retrained.",
                    row.version,
                    row.embedding_model,
                    embeddings.model_name(),
                )
                row = None
            if row is None:
                if self.seed_model is None:
                    self.seed_model = fit_examples(seed_examples())
                self.model = self.seed_model
            elif self.model is None or self.model.version != row.version:
                full = TriageModel.objects.get(pk=row.pk)
                self.model = model_from_bytes(full.weights, full.labels, version=full.version, metrics=full.metrics)
            self.checked_at = time.monotonic()
            return self.model


_cache = _Cache()


def clear_cache() -> None:
    """Forget the loaded model, so the next ``predict`` reads the active version now (tests; a process
    that must not wait for the re-check). The in-memory seed model is kept: it depends only on the code."""
    _cache.clear()


def current_model() -> LocalModel:
    return _cache.current()


# --- prediction -----------------------------------------------------------------------------------

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
        sentiment_label = sentiment.blended_label(sentiment_score, polarity)
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


def predict_many(
    model: LocalModel, texts: Sequence[str], vectors: np.ndarray, *, customer_messages: int = 1, is_vip: bool = False
) -> list[TriageResult]:
    """``decide`` for texts whose embeddings are already known (the evaluation command batches)."""
    if not len(texts):
        return []
    with one_blas_thread():
        proba = model.proba(vectors)
        similarity = model.similarity(vectors)
        return [
            decide(
                model,
                text,
                {name: p[i] for name, p in proba.items()},
                float(similarity[i]),
                customer_messages=customer_messages,
                is_vip=is_vip,
            )
            for i, text in enumerate(texts)
        ]


def _empty_result(version: int) -> TriageResult:
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


def predict(text: str, *, customer_messages: int = 1, is_vip: bool = False) -> TriageResult:
    """Triage the conversation's customer text (recent turns joined). One embedding per call."""
    model = current_model()
    prepared = prepare_text(text)
    if not prepared:
        return _empty_result(model.version)
    vectors = np.asarray(embeddings.embed([prepared]), dtype=np.float32)
    return predict_many(model, [text], vectors, customer_messages=customer_messages, is_vip=is_vip)[0]
