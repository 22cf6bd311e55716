"""The guard's classifier and the guard itself.

The classifier: logistic regression on MiniLM sentence embeddings, damped far from known examples,
trained once per process from ``data/seed.jsonl`` (our own writing), deterministically. Text is scored
in sentences and two-sentence windows (plus the whole text when short) and the highest window counts,
so an instruction hidden in the middle of a long email is not averaged away. ``Guard`` combines it with
the rules (``rules.py``): the noisy-OR of the rule weights and the classifier probability; the text is
flagged when a strong rule fires or the score reaches the threshold of its source.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tickets.ai.guard.rules import STRONG, heuristic_signals, normalise

SOURCES = ("customer", "email", "passage")
# Score (noisy-OR of rules and classifier) at which a text is flagged, per source, chosen on the development
# parts (``eval_guard --sweep``, docs/eval-guard.md): customer/email — the lowest threshold with every
# benign customer set under half the 1 % target (margin for unseen text); passage — help articles read
# like instructions, so higher.
THRESHOLDS = {"customer": 0.6, "email": 0.6, "passage": 0.8}
L2 = 1.0  # ridge on the logistic-regression weights (embeddings are unit vectors)
MARGIN_SCALE = 10.0  # steepness of the nearest-neighbour factor (cosine margins are small numbers)
MAX_SENTENCES = 200  # classifier windows per text; the rules always read the whole text
WHOLE_TEXT_CHARS = 1000  # shorter texts are also scored as one window
MIN_WINDOW_WORDS = 3  # shorter fragments ("#fail", "Kind regards,") are only scored as the whole text

Embedder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    score: float
    signals: tuple[str, ...]


# --- classifier -------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\s*\n\s*|(?<=[.!?])(?=[A-Z][a-z])")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_WORD = re.compile(r"[^\W\d_]{2,}")
_TABLE_RULE = re.compile(r"^\s*\|?(\s*:?-{3,}:?\s*\|)+\s*(:?-{3,}:?)?\s*$")
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")


def _split_tables(text: str) -> tuple[str, list[str]]:
    """A text without its Markdown tables, and the tables' cells. Pipes and rule lines are layout, and a
    row of short cells ("| Create and edit | Yes | Yes | Yes |") reads to the model like a reply to an
    instruction, so a table is read cell by cell; a cell that holds an instruction is a window of its own."""
    if "|" not in text:
        return text, []
    lines, cells = [], []
    for line in text.split("\n"):
        if _TABLE_RULE.match(line):
            continue
        row = _TABLE_ROW.match(line)
        if row:
            cells += [cell.strip() for cell in row.group(1).split("|") if cell.strip()]
        else:
            lines.append(line)
    return "\n".join(lines), cells


def windows(text: str) -> list[str]:
    """What the classifier scores: sentences and pairs of neighbouring sentences of at least three
    words, and the whole text when it is short. Sentences and lines are split the same way, so an
    instruction on its own line (how BIPIA inserts attacks) is its own window. The classifier is
    unreliable on two-word fragments; the rules still read them. Markdown tables are read by cell."""
    prose, cells = _split_tables(normalise(text))
    norm = _SPACES.sub(" ", prose).strip()
    cells = [_SPACES.sub(" ", cell) for cell in cells]
    if not norm and not cells:
        return []
    sentences = [s.strip() for s in _SENTENCE_END.split(norm) if s and s.strip()]
    sentences = [s for s in sentences if len(s) >= 2][:MAX_SENTENCES]
    out: list[str] = []
    for i, sentence in enumerate(sentences):
        out.append(sentence)
        if i + 1 < len(sentences):
            out.append(f"{sentence} {sentences[i + 1]}")
    out = [w for w in [*out, *cells[:MAX_SENTENCES]] if len(_WORD.findall(w)) >= MIN_WINDOW_WORDS]
    whole = " ".join([*norm.split(), *cells])
    if len(whole) <= WHOLE_TEXT_CHARS and (len(sentences) + len(cells) > 2 or not out):
        out.append(whole)
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Classifier:
    """Logistic regression on sentence embeddings, trusted only near known examples:

    ``p = sigmoid(x · w + b) · sigmoid(MARGIN_SCALE · (max cos(x, injection anchors) − max cos(x, benign anchors)))``

    A linear model is confidently wrong far from its training data (a two-line tweet full of hashtags
    is neither support text nor attack); the nearest-neighbour factor keeps the probability low unless
    the window is closer to a known injection than to any known benign text."""

    weights: np.ndarray
    bias: float
    injection_anchors: np.ndarray
    benign_anchors: np.ndarray

    def predict(self, vectors: np.ndarray) -> np.ndarray:
        if len(vectors) == 0:
            return np.zeros(0)
        x = np.asarray(vectors, dtype=np.float64)
        linear = 1.0 / (1.0 + np.exp(-np.clip(x @ self.weights + self.bias, -40, 40)))
        margin = (x @ self.injection_anchors.T).max(axis=1) - (x @ self.benign_anchors.T).max(axis=1)
        return linear / (1.0 + np.exp(-MARGIN_SCALE * margin))


def train_classifier(
    vectors: np.ndarray, labels: np.ndarray, *, anchors: int | None = None, l2: float = L2, iterations: int = 50
) -> Classifier:
    """Newton's method (IRLS) with class-balanced weights and a ridge penalty on the weights (not the
    bias). Deterministic: no random start, no sampling. The first ``anchors`` rows (default: all) are
    the nearest-neighbour anchors; later rows are augmentations that only train the linear part."""
    x = np.asarray(vectors, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    n, d = x.shape
    positives = max(float(y.sum()), 1.0)
    negatives = max(float(n - y.sum()), 1.0)
    sample = np.where(y == 1, n / (2 * positives), n / (2 * negatives))
    xb = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    ridge = np.full(d + 1, l2)
    ridge[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ theta, -40, 40)))
        gradient = xb.T @ (sample * (p - y)) + ridge * theta
        hessian = (xb * (sample * p * (1 - p))[:, None]).T @ xb + np.diag(ridge) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    k = n if anchors is None else anchors
    return Classifier(
        weights=theta[:-1],
        bias=float(theta[-1]),
        injection_anchors=x[:k][y[:k] == 1],
        benign_anchors=x[:k][y[:k] == 0],
    )


SEED_FILE = Path(__file__).resolve().parent / "data" / "seed.jsonl"
SEED_LABELS = ("injection", "benign")


@lru_cache(maxsize=1)
def seed_lines() -> dict[str, tuple[str, ...]]:
    """The classifier's labelled lines from ``SEED_FILE``, per label, in file order (the order is part of
    the training: anchors, augmentation pairs and the embedding cache key all follow it). Read once."""
    by_label: dict[str, list[str]] = {label: [] for label in SEED_LABELS}
    with SEED_FILE.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                by_label[row["label"]].append(row["text"])
    return {label: tuple(texts) for label, texts in by_label.items()}


def seed_examples() -> tuple[list[str], list[int]]:
    """Training texts from ``SEED_FILE``: first every line on its own (these are also the
    classifier's anchors), then augmentations — every injection joined to an ordinary support sentence
    (attacks ride on legitimate-looking text) and pairs of benign lines as negatives, so two-sentence
    windows look like what was trained on."""
    injections, benign = seed_lines()["injection"], seed_lines()["benign"]
    texts = list(injections) + list(benign)
    labels = [1] * len(injections) + [0] * len(benign)
    for i, injection in enumerate(injections):
        carrier = benign[(i * 7) % len(benign)]
        texts.append(f"{carrier} {injection}" if i % 2 else f"{injection} {carrier}")
        labels.append(1)
    for i, line in enumerate(benign):
        texts.append(f"{line} {benign[(i * 11 + 5) % len(benign)]}")
        labels.append(0)
    return texts, labels


def seed_anchor_count() -> int:
    return sum(len(texts) for texts in seed_lines().values())


def default_embedder(texts: list[str]) -> np.ndarray:
    """The shared per-process cache: the pipeline embeds a message's windows with its other texts."""
    from knowledge.embeddings import embed_cached

    return embed_cached(texts)


def _embed_uncached(texts: list[str]) -> np.ndarray:
    """For the ~1,600 seed lines: embedded once, kept on disk, and no use in the per-text cache."""
    from knowledge.embeddings import embed

    return embed(texts)


_seed_classifier: Classifier | None = None
_seed_vectors: np.ndarray | None = None
_seed_lock = threading.RLock()


def seed_vectors(*, embed: Embedder | None = None) -> np.ndarray:
    """Embeddings of ``seed_examples()``, computed once per process and kept on disk under
    ``DATA_DIR/cache`` keyed by the model and the exact texts (a restarted worker or a test run does not
    re-embed ~1,600 lines). The cache is only a speed-up: unreadable or stale files are ignored."""
    global _seed_vectors
    with _seed_lock:
        if _seed_vectors is None:
            texts, _ = seed_examples()
            path = _seed_cache_path(texts)
            vectors = None
            if path is not None and path.exists():
                try:
                    vectors = np.load(path, allow_pickle=False)
                except (OSError, ValueError):
                    vectors = None
                if vectors is not None and vectors.shape != (len(texts), vectors.shape[-1]):
                    vectors = None
            if vectors is None:
                vectors = np.asarray((embed or _embed_uncached)(texts), dtype=np.float32)
                _save_quietly(path, vectors)
            _seed_vectors = vectors
        return _seed_vectors


def _seed_cache_path(texts: list[str]) -> Path | None:
    from django.conf import settings

    from knowledge.embeddings import model_name

    data_dir = getattr(settings, "DATA_DIR", None)
    if not data_dir:
        return None
    digest = hashlib.sha256("\x00".join([model_name(), *texts]).encode()).hexdigest()[:20]
    return Path(data_dir) / "cache" / f"guard-seed-{digest}.npy"


def _save_quietly(path: Path | None, vectors: np.ndarray) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp.npy")
        np.save(tmp, vectors, allow_pickle=False)
        tmp.replace(path)
    except OSError:
        pass


def seed_classifier(*, embed: Embedder | None = None) -> Classifier:
    """The shipped classifier, trained on first use and kept for the life of the process. ``embed``
    only matters for that first call (any embedder of the same model gives the same vectors)."""
    global _seed_classifier
    with _seed_lock:
        if _seed_classifier is None:
            _, labels = seed_examples()
            _seed_classifier = train_classifier(
                seed_vectors(embed=embed), np.asarray(labels), anchors=seed_anchor_count()
            )
        return _seed_classifier


# --- the guard --------------------------------------------------------------------------------


class Guard:
    """Rules + classifier. The module-level functions use one shared instance; the evaluation builds
    others (a caching embedder, a classifier trained on extra data)."""

    def __init__(
        self,
        *,
        embed: Embedder | None = None,
        classifier: Classifier | None = None,
        thresholds: dict[str, float] | None = None,
    ) -> None:
        self.embed = embed or default_embedder
        self.thresholds = dict(THRESHOLDS if thresholds is None else thresholds)
        self._classifier = classifier

    @property
    def classifier(self) -> Classifier:
        if self._classifier is None:
            self._classifier = seed_classifier(embed=self.embed)
        return self._classifier

    def classifier_scores(self, texts: Sequence[str]) -> list[float]:
        """Per text, the highest classifier probability over its windows (0 for empty text)."""
        per_text = [windows(t) for t in texts]
        distinct = list(dict.fromkeys(w for ws in per_text for w in ws))
        if not distinct:
            return [0.0] * len(texts)
        probs = dict(zip(distinct, self.classifier.predict(self.embed(distinct)).tolist(), strict=True))
        return [max((probs[w] for w in ws), default=0.0) for ws in per_text]

    def scan_many(self, texts: Iterable[str], *, source: str = "customer") -> list[Verdict]:
        if source not in SOURCES:
            raise ValueError(f"Unknown source {source!r}; expected one of {SOURCES}.")
        texts = [t or "" for t in texts]
        threshold = self.thresholds[source]
        verdicts = []
        for text, p in zip(texts, self.classifier_scores(texts), strict=True):
            rules = heuristic_signals(text)
            keep = 1.0 - p
            for weight in rules.values():
                keep *= 1.0 - weight
            score = round(1.0 - keep, 4)
            signals = sorted(rules, key=lambda s: (-rules[s], s))
            if p >= threshold:
                signals.append("classifier")
            flagged = score >= threshold or any(w >= STRONG for w in rules.values())
            verdicts.append(Verdict(flagged=flagged, score=score, signals=tuple(signals)))
        return verdicts

    def scan(self, text: str, *, source: str = "customer") -> Verdict:
        return self.scan_many([text], source=source)[0]


_default: Guard | None = None
_default_lock = threading.Lock()


def default_guard() -> Guard:
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Guard()
    return _default


def scan(text: str, *, source: str = "customer") -> Verdict:
    """Is ``text`` trying to instruct the model? ``source`` is where it came from: a chat message
    (``customer``), an inbound email (``email``) or a knowledge-base passage (``passage``)."""
    return default_guard().scan(text, source=source)


def scan_many(texts: Iterable[str], *, source: str = "customer") -> list[Verdict]:
    """``scan`` for several texts with one batched embedding call (retrieved passages)."""
    return default_guard().scan_many(texts, source=source)
