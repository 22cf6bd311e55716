"""BIPIA's email task (indirect prompt injection), as the evaluations read it: the emails, the attack
texts by category, BIPIA's insertion of an attack into an email, and the report split.

Shared by the guard evaluation (does the guard flag the attacked email?), the injection and attack
evaluations (what does an attack achieve through the whole pipeline?), so all report on the same emails
and attacks.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from supportflow.evaluation import DatasetError, read_json, read_jsonl

POSITIONS = ("start", "middle", "end")
_SENTENCE_START = re.compile(r"(?<=[.!?])\s+(?=\S)")


class BipiaError(DatasetError):
    """The folder is not a BIPIA layout this evaluation understands; the message says why."""


@dataclass(frozen=True)
class Part:
    emails: list[str]
    attacks: list[tuple[str, str]]  # (category, attack text)
    report_on: str


@dataclass(frozen=True)
class Bipia:
    report: Part
    whole_dev: Part | None  # the whole development part, when the report part is a split of it


def read_attacks(path: Path) -> list[tuple[str, str]]:
    data = read_json(path)
    return [(category, text) for category, texts in data.items() for text in texts]


def insert_attack(context: str, attack: str, position: str, *, seed: int | str) -> str:
    """BIPIA's insertion (bipia/data/utils.py): the attack on its own line at the start, the end, or
    before a sentence chosen with a seeded RNG (BIPIA uses nltk's Punkt; here a regex sentence split)."""
    if position == "start":
        return f"{attack}\n{context}"
    if position == "end":
        return f"{context}\n{attack}"
    starts = [0] + [m.end() for m in _SENTENCE_START.finditer(context)]
    start = random.Random(seed).choice(starts)  # noqa: S311 — seeded sampling, not security
    return "\n".join([context[:start], attack, context[start:]])


def load(folder: Path, *, seed: int) -> Bipia:
    """With ``email/test.jsonl`` and ``text_attack_test.json`` the report part is those; without, a
    seeded split of the development files: half the emails × the attacks of a third of the categories
    (unseen categories, so rules written after reading the others are not graded on them)."""
    folder = Path(folder)
    test_emails, test_attacks = folder / "email" / "test.jsonl", folder / "text_attack_test.json"
    dev_emails, dev_attacks = folder / "email" / "train.jsonl", folder / "text_attack_train.json"
    if test_emails.exists() and test_attacks.exists():
        part = Part(
            [e["context"] for e in read_jsonl(test_emails)],
            read_attacks(test_attacks),
            "email/test.jsonl × text_attack_test.json",
        )
        return Bipia(report=part, whole_dev=None)
    if not (dev_emails.exists() and dev_attacks.exists()):
        raise BipiaError(f"{folder}: expected email/train.jsonl and text_attack_train.json (the BIPIA layout).")
    all_emails = [e["context"] for e in read_jsonl(dev_emails)]
    all_attacks = read_attacks(dev_attacks)
    rng = random.Random(seed)  # noqa: S311 — seeded sampling, not security
    email_idx = list(range(len(all_emails)))
    rng.shuffle(email_idx)
    categories = sorted({c for c, _ in all_attacks})
    rng.shuffle(categories)
    held = set(categories[: len(categories) // 3])
    report = Part(
        [all_emails[i] for i in sorted(email_idx[: len(all_emails) // 2])],
        [(c, a) for c, a in all_attacks if c in held],
        f"train files, seeded split (seed {seed}): {len(all_emails) // 2} of {len(all_emails)} emails × the attacks "
        f"of {len(held)} of {len(categories)} categories ({', '.join(sorted(held))})",
    )
    whole = Part(
        all_emails,
        all_attacks,
        f"all {len(all_emails)} train emails × all {len(all_attacks)} train attacks "
        "(rules were written after reading them)",
    )
    return Bipia(report=report, whole_dev=whole)
