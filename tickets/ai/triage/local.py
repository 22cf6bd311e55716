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
(a numpy ``.npz``, no pickle) and puts it through the registry's gate (``registry.py``: activated only
if not worse than the active version on held-out examples); ``predict`` uses the active version, or
until one exists, the same fit made in memory (``model_version`` 0).

Out of scope: the nearest training example is less similar than ``min_similarity``, or the category
head's top probability is below ``min_confidence``. Both are chosen at training time on data: the
seed cross-validated (in scope) against the ``OUT_OF_SCOPE`` seed messages (small talk, other
products), catching as many as possible while keeping ``model.SCOPE_MIN_KEPT`` of the in-scope ones; they
are stored with the model. Messages under three words are never called out of scope.

How a prediction becomes a triage result (priority floors, who needs a human, the summary) is
``decide.py``.

``predict`` is safe to call from many threads: a loaded model is immutable, loading takes a lock, and
the active version is re-read from the database at most every ``RECHECK_SECONDS``, and at once when the
cache's generation key changed (a promotion or rollback in any process bumps it). It uses the ORM, so
call it from sync code (``sync_to_async`` from async code).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from knowledge import embeddings
from supportflow import generations
from tickets.ai.rules import CATEGORY_DEPARTMENT
from tickets.ai.triage.decide import MAX_TEXT_CHARS, TriageResult, decide, empty_result
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
# The sentiment head's own penalty, chosen without tweets: leave-one-domain-out cross-validation on our own
# sentiment seed (``tickets/ai/evaluation/sentiment_tuning.py``, docs/eval-triage.md). Others keep model.L2.
SENTIMENT_L2 = 0.3
HEAD_L2 = {"sentiment": SENTIMENT_L2}

CORRECTION_WEIGHT = 3.0
RECHECK_SECONDS = 30.0
MAX_CORRECTED_TICKETS = 20_000
CUSTOMER_MESSAGES_PER_EXAMPLE = 3

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


def example_vectors(examples: Sequence[Example]) -> np.ndarray:
    """The examples' embeddings (the seed's computed once per process)."""
    return _vectors([e.text for e in examples]) if examples else _embed([])


def fit_examples(examples: Sequence[Example]) -> LocalModel:
    vectors = example_vectors(examples)
    weight = np.array([CORRECTION_WEIGHT if e.source == "correction" else 1.0 for e in examples])
    return fit_with_scope(
        vectors,
        {name: [e.label(name) for e in examples] for name in HEADS},
        _vectors(OUT_OF_SCOPE),
        sample_weight=weight,
        evaluate=np.array([e.source == "seed" for e in examples]),
        exemplar_fields=FIELDS,
        scale_fields=FIELDS,  # sentiment-only examples do not move the other heads' standardisation
        head_l2=HEAD_L2,
    )


# --- versions -------------------------------------------------------------------------------------


def active_version() -> int:
    """The active ``TriageModel`` version, 0 when none was trained yet (predict then uses the seed)."""
    return TriageModel.objects.filter(is_active=True).values_list("version", flat=True).first() or 0


def train(
    *, include_corrections: bool = True, activate: bool = True, examples: Sequence[Example] | None = None
) -> TriageModel:
    """Fit a new version on the seed set (+ agents' corrections, less the held-out ones) and store it as a
    candidate; with ``activate``, the registry's gate then promotes or rejects it (else it waits for a
    manager). ``examples`` replaces the training set (an experiment; the tests' degraded retrain).

    The fitting (embedding ~200 texts, a few seconds) runs outside any transaction; the version number
    is taken in a short one, retried if another ``train()`` took the same number first.
    """
    from tickets.ai.triage import registry  # it builds on this module

    everything = training_examples()
    trainable, held_out = registry.split(everything)
    if examples is None:
        examples = trainable if include_corrections else seed_examples()
    model = fit_examples(examples)
    labels = {name: list(head.labels) for name, head in model.heads.items()}
    counts = {
        "seed": sum(e.source == "seed" and bool(e.category) for e in examples),
        "sentiment_seed": sum(e.source == "seed" and not e.category for e in examples),
        "corrections": sum(e.source == "correction" for e in examples),
        "out_of_scope_seed": len(OUT_OF_SCOPE),
        "held_out_corrections": len(held_out),
    }
    payload = model_to_bytes(model)
    for attempt in range(3):
        try:
            with transaction.atomic():
                version = (TriageModel.objects.aggregate(latest=Max("version"))["latest"] or 0) + 1
                row = TriageModel.objects.create(
                    version=version,
                    algorithm=ALGORITHM,
                    embedding_model=embeddings.model_name(),
                    labels=labels,
                    weights=payload,
                    trained_on=counts,
                    metrics=model.metrics,
                    status=TriageModel.Status.CANDIDATE,
                )
            break
        except IntegrityError:
            if attempt == 2:
                raise
    if not activate:
        return row
    return registry.triage_model_gate(row=row, model=model, examples=registry.evaluation_examples(everything, held_out))


def _generation() -> object:
    """None without the cache: predictions go on, and the 30 s re-check still applies."""
    return generations.current(TriageModel.GENERATION_CACHE_KEY)


# --- the in-process model cache -------------------------------------------------------------------


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model: LocalModel | None = None
        self.seed_model: LocalModel | None = None
        self.checked_at = float("-inf")
        self.generation: object = None

    def clear(self) -> None:
        with self.lock:
            self.model, self.checked_at = None, float("-inf")

    def fresh(self, now: float, generation: object) -> bool:
        return self.model is not None and now - self.checked_at < RECHECK_SECONDS and generation == self.generation

    def current(self) -> LocalModel:
        model, now, generation = self.model, time.monotonic(), _generation()
        if model is not None and self.fresh(now, generation):
            return model
        with self.lock:
            if self.fresh(now, generation):
                return self.model
            self.generation = generation
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


def predict(text: str, *, customer_messages: int = 1, is_vip: bool = False) -> TriageResult:
    """Triage the conversation's customer text (recent turns joined). One embedding per call."""
    model = current_model()
    prepared = prepare_text(text)
    if not prepared:
        return empty_result(model.version)
    vectors = np.asarray(embeddings.embed_cached([prepared]), dtype=np.float32)
    return predict_many(model, [text], vectors, customer_messages=customer_messages, is_vip=is_vip)[0]
