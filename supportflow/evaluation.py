"""What every evaluation shares, whatever it measures: reading the dataset files, rounding, percentiles
and paired bootstrap intervals. Infrastructure: imports no app, so ``knowledge.evaluation`` (retrieval)
and ``tickets.ai.evaluation`` (triage, guard, attacks, answers, email) both build on it.

Datasets follow the evaluation contract of ``../shared/datasets/README.md``: a folder (``--data DIR``)
with development files and, optionally, the test file of the same format the figures are reported on.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

csv.field_size_limit(10_000_000)  # some datasets hold whole emails and forum threads in one cell


class EvaluationError(Exception):
    """An evaluation cannot run as asked; the message says why (commands print it as their error)."""


class DatasetError(EvaluationError):
    """The folder is not a dataset this evaluation understands; the message says why."""


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def dev_or_test(folder: Path, dev: str, test: str) -> Path:
    """The contract's test file when the folder holds it, else the development file."""
    return folder / test if (folder / test).exists() else folder / dev


def rounded(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


def share(count: float, total: int) -> float:
    """``count / total`` rounded to 4 digits; 0 of nothing is 0."""
    return round(count / total, 4) if total else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, rounds: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of a − b with a 95% percentile-bootstrap interval over queries (paired)."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    if not diffs:
        return 0.0, 0.0, 0.0
    rng = random.Random(seed)  # noqa: S311 — resampling, not security
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    return sum(diffs) / n, means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def binary_counts(gold: Sequence, predicted: Sequence) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of a yes/no detection; any truthy value is a yes."""
    tp = sum(1 for y, p in zip(gold, predicted, strict=True) if y and p)
    fp = sum(1 for y, p in zip(gold, predicted, strict=True) if not y and p)
    fn = sum(1 for y, p in zip(gold, predicted, strict=True) if y and not p)
    return tp, fp, fn, len(gold) - tp - fp - fn


def precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def tenths(log: Callable[[str], None] | None, label: str, total: int) -> Callable[[int], None]:
    """A progress callback that logs ``label: done/total`` every tenth of the way (``log=None``: silent)."""
    step = max(1, total // 10)

    def report(done: int) -> None:
        if log is not None and (done % step == 0 or done == total):
            log(f"  {label}: {done}/{total}")

    return report
