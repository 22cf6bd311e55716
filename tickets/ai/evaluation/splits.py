"""Seeded splits and samples of a development part, for datasets without the contract's test file."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def sample_index(n: int, limit: int | None, seed: int) -> list[int] | None:
    """At most ``limit`` of ``n`` row numbers, a seeded sample in file order (None: keep them all)."""
    if limit is None or n <= limit:
        return None
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit]).tolist()


def stratified_split(
    rows: Sequence[T], *, label: Callable[[T], object], share: float, seed: int
) -> tuple[list[T], list[T]]:
    """(tune, report): per label, a seeded shuffle; the first ``share`` of each label is the report part."""
    rng = random.Random(seed)  # noqa: S311 — seeded sampling, not security
    tune: list[T] = []
    report: list[T] = []
    for value in sorted({label(r) for r in rows}):
        group = [r for r in rows if label(r) == value]
        rng.shuffle(group)
        cut = round(len(group) * share)
        report += group[:cut]
        tune += group[cut:]
    return tune, report


def seeded_half(items: Sequence[T], *, seed: int | str, part: str) -> list[T]:
    """A seeded half of ``items`` in their order: ``report`` or ``dev`` (the other half)."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)  # noqa: S311 — seeded sampling, not security
    cut = len(order) // 2
    chosen = order[:cut] if part == "report" else order[cut:]
    return [items[i] for i in sorted(chosen)]
