"""The local triage model's numbers: one multinomial logistic regression per head on standardised
sentence embeddings, fitted in numpy by accelerated gradient descent (deterministic: zero start, step 1/L,
fixed step count, one BLAS thread), cross-validated to measure each head and to choose the out-of-scope
thresholds, and stored as a numpy ``.npz`` (no pickle). Pure numpy, no Django: ``local.py`` trains and
predicts through these functions, and so does the evaluation command.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from threadpoolctl import ThreadpoolController

L2 = 1e-2  # ridge penalty on standardised features (chosen on inner splits of the dev data, docs/eval-triage.md)
STEPS = 300
FOLDS = 5
DEPARTMENT_FROM_CATEGORY = 0.5  # weight of the category head's view of the department (see LocalModel.proba)
CATEGORY_IN_ONE_DEPARTMENT = 0.8  # ...used only for categories whose examples are (mostly) in one department
SCOPE_MIN_KEPT = 0.95  # out-of-scope thresholds keep at least this share of in-scope messages


@dataclass(frozen=True)
class Head:
    labels: tuple[str, ...]
    weights: np.ndarray  # (features, classes)
    bias: np.ndarray  # (classes,)

    def proba(self, features: np.ndarray) -> np.ndarray:
        return _softmax(features @ self.weights + self.bias)


@dataclass(frozen=True)
class LocalModel:
    """A fitted triage classifier. Immutable, so threads share it freely."""

    mean: np.ndarray
    scale: np.ndarray
    heads: dict[str, Head]
    exemplars: np.ndarray  # L2-normalised embeddings of the training texts
    min_similarity: float = -1.0
    min_confidence: float = 0.0
    version: int = 0
    metrics: dict = field(default_factory=dict)
    # Row c: how training examples of category c spread over the departments (zeros when unknown).
    category_department: np.ndarray | None = None

    def features(self, vectors: np.ndarray) -> np.ndarray:
        return (np.asarray(vectors, dtype=np.float64) - self.mean) / self.scale

    def proba(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """Per field, class probabilities. The department is read two ways and averaged: its own head,
        and the category head's probabilities carried over to the departments those categories belong
        to (categories are finer, so the second view often separates better; see docs/eval-triage.md)."""
        features = self.features(vectors)
        proba = {name: head.proba(features) for name, head in self.heads.items()}
        if self.category_department is not None and "category" in proba and "department" in proba:
            own = proba["department"]
            carried = proba["category"] @ self.category_department
            unknown = 1.0 - carried.sum(axis=1, keepdims=True)  # mass of categories with no department
            proba["department"] = (1 - DEPARTMENT_FROM_CATEGORY) * own + DEPARTMENT_FROM_CATEGORY * (
                carried + unknown * own
            )
        return proba

    def similarity(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine similarity of each vector to its nearest training example."""
        if not len(self.exemplars):
            return np.zeros(len(vectors))
        return (np.asarray(vectors, dtype=np.float32) @ self.exemplars.T).max(axis=1).astype(np.float64)


# --- fitting (pure numpy; the evaluation command fits through the same functions) -----------------


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_blas_thread():
    """Run numpy's BLAS on one thread: our products are small, and OpenBLAS worker threads spinning
    next to PyTorch's on a busy machine made each embedding 10x slower (measured: predict p50 720 ms
    → 18 ms). Also keeps sums in a fixed order, so fits are bit-for-bit reproducible."""
    return _blas_controller().limit(limits=1, user_api="blas")


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=-1, keepdims=True)
    np.exp(logits, out=logits)
    return logits / logits.sum(axis=-1, keepdims=True)


def _largest_eigenvalue(matrix: np.ndarray, iterations: int = 50) -> float:
    vector = np.ones(matrix.shape[0]) / np.sqrt(matrix.shape[0])
    value = 0.0
    for _ in range(iterations):
        product = matrix @ vector
        value = float(np.linalg.norm(product))
        if value == 0.0:
            return 0.0
        vector = product / value
    return value


def fit_head(
    features: np.ndarray, labels: Sequence[str], *, sample_weight: np.ndarray | None = None, l2: float = L2
) -> Head:
    """Multinomial logistic regression, L2-penalised (not the bias), by Nesterov-accelerated gradient
    descent with step 1/L: deterministic, and converged enough in ``STEPS`` steps on 384 features.
    On one BLAS thread (``one_blas_thread``)."""
    classes = tuple(sorted(set(labels)))
    n, d = features.shape
    if len(classes) < 2:
        return Head(classes, np.zeros((d, len(classes))), np.zeros(len(classes)))
    index = {label: i for i, label in enumerate(classes)}
    targets = np.zeros((n, len(classes)))
    targets[np.arange(n), [index[label] for label in labels]] = 1.0
    weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    weight = weight / weight.sum()
    x = np.hstack([features, np.ones((n, 1))])
    # The softmax loss's Hessian is at most 1/2 · Xᵀ diag(w) X (Böhning), plus the ridge term.
    lipschitz = 0.5 * _largest_eigenvalue(x.T @ (x * weight[:, None])) + l2
    step = 1.0 / lipschitz
    penalty = np.ones((d + 1, 1))
    penalty[-1] = 0.0
    theta = previous = np.zeros((d + 1, len(classes)))
    with one_blas_thread():
        for t in range(STEPS):
            lookahead = theta + (t / (t + 3)) * (theta - previous)
            residual = (_softmax(x @ lookahead) - targets) * weight[:, None]
            gradient = x.T @ residual + l2 * penalty * lookahead
            previous, theta = theta, lookahead - step * gradient
    return Head(classes, theta[:-1].copy(), theta[-1].copy())


def fit_model(
    vectors: np.ndarray,
    targets: dict[str, Sequence[str]],
    *,
    sample_weight: np.ndarray | None = None,
    l2: float = L2,
    head_l2: Mapping[str, float] | None = None,
    exemplar_fields: Sequence[str] | None = None,
    scale_fields: Sequence[str] | None = None,
) -> LocalModel:
    """One head per field in ``targets`` (labels aligned with ``vectors``; "" = unknown, skipped).

    ``head_l2``: a penalty of its own for some heads (default ``l2`` for all).
    ``exemplar_fields``: only rows labelled for one of these count as exemplars for the nearest-example
    similarity (sentiment-only examples say nothing about scope); default all rows.
    ``scale_fields``: only rows labelled for one of these set the feature standardisation (mean, scale),
    so adding examples for another head (the sentiment seed) does not move the others; default all rows."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scaling = vectors
    if scale_fields is not None:
        scaling = vectors[_labelled_for(targets, scale_fields, len(vectors))]
        if not len(scaling):
            scaling = vectors
    mean = scaling.mean(axis=0, dtype=np.float64)
    scale = scaling.std(axis=0, dtype=np.float64) + 1e-3
    features = (vectors.astype(np.float64) - mean) / scale
    weight = np.ones(len(vectors)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    heads = {}
    for name, labels in targets.items():
        rows = np.array([i for i, label in enumerate(labels) if label], dtype=int)
        if len(rows):
            penalty = (head_l2 or {}).get(name, l2)
            heads[name] = fit_head(features[rows], [labels[i] for i in rows], sample_weight=weight[rows], l2=penalty)
    mapping = None
    if "category" in heads and "department" in heads:
        categories, departments = heads["category"].labels, heads["department"].labels
        mapping = np.zeros((len(categories), len(departments)))
        row_of = {label: i for i, label in enumerate(categories)}
        column_of = {label: i for i, label in enumerate(departments)}
        for category, department in zip(targets["category"], targets["department"], strict=True):
            if category and department:
                mapping[row_of[category], column_of[department]] += 1.0
        mapping /= np.maximum(mapping.sum(axis=1, keepdims=True), 1.0)
        mapping[mapping.max(axis=1) < CATEGORY_IN_ONE_DEPARTMENT] = 0.0  # a category spread over queues says little
    exemplars = vectors
    if exemplar_fields is not None:
        exemplars = vectors[_labelled_for(targets, exemplar_fields, len(vectors))]
    return LocalModel(mean=mean, scale=scale, heads=heads, exemplars=exemplars, category_department=mapping)


def _labelled_for(targets: dict[str, Sequence[str]], fields: Sequence[str], n: int) -> np.ndarray:
    """Boolean mask of the rows labelled for at least one of ``fields``."""
    return np.array([any(targets[f][i] for f in fields if f in targets) for i in range(n)], dtype=bool).reshape(n)


def choose_scope_thresholds(
    in_similarity: np.ndarray,
    in_confidence: np.ndarray,
    out_similarity: np.ndarray,
    out_confidence: np.ndarray,
    *,
    min_kept: float = SCOPE_MIN_KEPT,
) -> tuple[float, float, float]:
    """(min_similarity, min_confidence, balanced accuracy) over a grid of the observed scores.

    The operating point: catch as many out-of-scope messages as possible while keeping at least
    ``min_kept`` of the in-scope ones (an out-of-scope flag sends a ticket to a person, so false flags
    cost agents' time); if no point keeps that many, the best balanced accuracy (mean of kept and
    caught). Ties go to the more permissive thresholds; either may end up disabled (-1 / 0).
    """

    def grid(values: np.ndarray, floor: float) -> np.ndarray:
        return np.unique(np.concatenate([[floor], np.quantile(values, np.linspace(0, 1, 101))]))

    sim_grid = grid(np.concatenate([in_similarity, out_similarity]), -1.0)
    conf_grid = grid(np.concatenate([in_confidence, out_confidence]), 0.0)
    constrained, balanced = None, None
    for s in sim_grid:
        in_low_sim, out_low_sim = in_similarity < s, out_similarity < s
        for c in conf_grid:
            kept = 1.0 - float(np.mean(in_low_sim | (in_confidence < c)))
            caught = float(np.mean(out_low_sim | (out_confidence < c)))
            point = (0.5 * (kept + caught), float(s), float(c))
            if kept >= min_kept and (constrained is None or (caught, kept) > constrained[0]):
                constrained = ((caught, kept), point)
            if balanced is None or point[0] > balanced[0] + 1e-12:
                balanced = point
    score, s, c = constrained[1] if constrained is not None else balanced
    return s, c, score


def stratified_folds(labels: Sequence[str], folds: int = FOLDS, seed: int = 13) -> np.ndarray:
    """Fold number per row, each label spread evenly over the folds; seeded, so reproducible."""
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(labels), dtype=int)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    offset = 0
    for label in sorted(by_label):
        rows = np.array(by_label[label])[rng.permutation(len(by_label[label]))]
        assignment[rows] = (np.arange(len(rows)) + offset) % folds
        offset += len(rows)
    return assignment


def accuracy_and_macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> tuple[float, float]:
    if not gold:
        return 0.0, 0.0
    gold_arr, pred_arr = np.asarray(gold), np.asarray(predicted)
    accuracy = float(np.mean(gold_arr == pred_arr))
    f1s = []
    for label in sorted(set(gold)):
        tp = np.sum((pred_arr == label) & (gold_arr == label))
        fp = np.sum((pred_arr == label) & (gold_arr != label))
        fn = np.sum((pred_arr != label) & (gold_arr == label))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return accuracy, float(np.mean(f1s))


def _argmax_labels(head: Head, proba: np.ndarray) -> list[str]:
    return [head.labels[i] for i in proba.argmax(axis=1)]


def fit_with_scope(
    vectors: np.ndarray,
    targets: dict[str, Sequence[str]],
    out_of_scope_vectors: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
    evaluate: np.ndarray | None = None,
    scope_field: str = "category",
    exemplar_fields: Sequence[str] | None = None,
    scale_fields: Sequence[str] | None = None,
    head_l2: Mapping[str, float] | None = None,
) -> LocalModel:
    """Fit on everything, and cross-validate to measure each head and choose the scope thresholds.

    ``evaluate``: boolean mask of the rows that are cross-validated (the others — agent corrections —
    are always in the training part). Out-of-fold in-scope scores are compared with the
    out-of-scope messages scored by the same fold models.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    evaluate = np.ones(n, dtype=bool) if evaluate is None else np.asarray(evaluate, dtype=bool)
    strat = [label if evaluate[i] else "" for i, label in enumerate(targets[scope_field])]
    fold_of = stratified_folds(strat)
    fold_of[~evaluate] = -1
    predicted = {name: [""] * n for name in targets}
    in_sim, in_conf, out_sim, out_conf = [], [], [], []
    for fold in range(FOLDS):
        test = np.flatnonzero(fold_of == fold)
        train_rows = np.flatnonzero(fold_of != fold)
        if not len(test):
            continue
        model = fit_model(
            vectors[train_rows],
            {name: [labels[i] for i in train_rows] for name, labels in targets.items()},
            sample_weight=None if sample_weight is None else np.asarray(sample_weight)[train_rows],
            exemplar_fields=exemplar_fields,
            scale_fields=scale_fields,
            head_l2=head_l2,
        )
        proba = model.proba(vectors[test])
        for name, head in model.heads.items():
            for row, label in zip(test, _argmax_labels(head, proba[name]), strict=True):
                predicted[name][row] = label
        scoped = np.array([bool(targets[scope_field][i]) for i in test])
        in_sim.append(model.similarity(vectors[test[scoped]]))
        in_conf.append(proba[scope_field][scoped].max(axis=1))
        if len(out_of_scope_vectors):
            out_sim.append(model.similarity(out_of_scope_vectors))
            out_conf.append(model.proba(out_of_scope_vectors)[scope_field].max(axis=1))
    metrics: dict = {"folds": FOLDS, "cross_validated_examples": int(evaluate.sum())}
    for name, labels in targets.items():
        rows = [i for i in np.flatnonzero(evaluate) if labels[i]]
        acc, f1 = accuracy_and_macro_f1([labels[i] for i in rows], [predicted[name][i] for i in rows])
        metrics[name] = {"cv_accuracy": round(acc, 4), "cv_macro_f1": round(f1, 4), "examples": len(rows)}
    min_similarity, min_confidence = -1.0, 0.0
    if out_sim and in_sim:
        in_s, in_c = np.concatenate(in_sim), np.concatenate(in_conf)
        out_s, out_c = np.concatenate(out_sim), np.concatenate(out_conf)
        min_similarity, min_confidence, balanced = choose_scope_thresholds(in_s, in_c, out_s, out_c)
        metrics["out_of_scope"] = {
            "min_similarity": round(min_similarity, 4),
            "min_confidence": round(min_confidence, 4),
            "cv_in_scope_kept": round(float(np.mean((in_s >= min_similarity) & (in_c >= min_confidence))), 4),
            "cv_out_of_scope_recall": round(float(np.mean((out_s < min_similarity) | (out_c < min_confidence))), 4),
            "cv_balanced_accuracy": round(balanced, 4),
        }
    full = fit_model(
        vectors,
        targets,
        sample_weight=sample_weight,
        exemplar_fields=exemplar_fields,
        scale_fields=scale_fields,
        head_l2=head_l2,
    )
    return replace(full, min_similarity=min_similarity, min_confidence=min_confidence, metrics=metrics)


# --- serialisation --------------------------------------------------------------------------------


def model_to_bytes(model: LocalModel) -> bytes:
    arrays = {
        "mean": model.mean,
        "scale": model.scale,
        "exemplars": model.exemplars.astype(np.float16),
        "scope": np.array([model.min_similarity, model.min_confidence]),
    }
    if model.category_department is not None:
        arrays["category_department"] = model.category_department
    for name, head in model.heads.items():
        arrays[f"weights_{name}"] = head.weights
        arrays[f"bias_{name}"] = head.bias
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def model_from_bytes(data: bytes, labels: dict[str, list[str]], *, version: int = 0, metrics=None) -> LocalModel:
    with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as arrays:
        heads = {
            name: Head(tuple(names), arrays[f"weights_{name}"], arrays[f"bias_{name}"])
            for name, names in labels.items()
        }
        min_similarity, min_confidence = (float(v) for v in arrays["scope"])
        return LocalModel(
            mean=arrays["mean"],
            scale=arrays["scale"],
            heads=heads,
            exemplars=arrays["exemplars"].astype(np.float32),
            min_similarity=min_similarity,
            min_confidence=min_confidence,
            version=version,
            metrics=metrics or {},
            category_department=arrays["category_department"] if "category_department" in arrays.files else None,
        )
