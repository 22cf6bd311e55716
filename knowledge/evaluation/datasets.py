"""The public FAQ datasets as articles and queries, read in place (never copied into the project), and
how queries are sampled and split. Detected by their files:

- **stackfaq**: ``kb.json`` (help threads: id, question, answers) and ``queries.json`` (query,
  gold_id); optional held-out ``queries_test.json``.
- **covid_faq_deepset**: ``faq_covidbert.csv`` (FAQ: question, answer, link) and
  ``question_pairs.csv`` (question_1 = an FAQ question, question_2 = a user question, similar 0/1);
  optional held-out ``question_pairs_test.csv``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from supportflow.evaluation import DatasetError


@dataclass
class EvalArticle:
    external_id: str
    title: str
    body: str
    link: str = ""


@dataclass
class EvalQuery:
    """One user question. ``gold``: external ids of the articles that answer it (duplicates of one FAQ
    count as the same answer). ``forbidden``: articles a hard-negative pair says do NOT answer it."""

    text: str
    gold: frozenset[str] = frozenset()
    forbidden: frozenset[str] = frozenset()
    group: str = ""  # the FAQ the pair is about (for grouped splits)
    known_gold: frozenset[str] = frozenset()  # hard negative whose text is also a positive pair's question

    @property
    def positive(self) -> bool:
        return bool(self.gold)


@dataclass
class Dataset:
    name: str
    path: Path
    articles: list[EvalArticle]
    dev: list[EvalQuery]
    test: list[EvalQuery] | None
    dev_file: str
    test_file: str
    notes: list[str] = field(default_factory=list)

    @property
    def report(self) -> list[EvalQuery]:
        """The queries the figures are reported on: the test file when present, else development."""
        return self.test if self.test is not None else self.dev

    @property
    def reported_on(self) -> str:
        if self.test is not None:
            return f"{self.test_file} (held-out test part)"
        return f"{self.dev_file} (development part: no {self.test_file} in the folder)"


def _stackfaq_threads(raw) -> list[dict]:
    """Threads as [{id, question, answers: [str]}]; also accepts the upstream {"root": {"qapair": [...]}}."""
    if isinstance(raw, dict):
        raw = [
            {"id": i, "question": t.get("question", ""), "answers": t.get("answer", [])}
            for i, t in enumerate(raw.get("root", {}).get("qapair", []))
        ]
    threads = []
    for thread in raw:
        answers = thread.get("answers") or []
        if isinstance(answers, str):  # a thread with one answer is stored as a bare string
            answers = [answers]
        threads.append({"id": thread["id"], "question": thread["question"], "answers": answers})
    return threads


def _clean_text(text: str) -> str:
    return " ".join((text or "").split())


def stackfaq_body(question: str, answers: Iterable[str]) -> str:
    """The thread as one markdown article: the question, then each answer as its own paragraph."""
    parts = [_clean_text(question)] + [_clean_text(a) for a in answers if _clean_text(a)]
    return "\n\n".join(parts)


def _stackfaq_queries(path: Path, known: set[str]) -> list[EvalQuery]:
    out = []
    for row in json.loads(path.read_text(encoding="utf-8")):
        text, gold = _clean_text(row.get("query", "")), str(row.get("gold_id", ""))
        if not text or text == "*" or gold not in known:
            continue
        out.append(EvalQuery(text=text, gold=frozenset([gold]), group=gold))
    return out


def load_stackfaq(path: Path) -> Dataset:
    threads = _stackfaq_threads(json.loads((path / "kb.json").read_text(encoding="utf-8")))
    articles = [
        EvalArticle(
            external_id=str(t["id"]), title=_clean_text(t["question"]), body=stackfaq_body(t["question"], t["answers"])
        )
        for t in threads
    ]
    known = {a.external_id for a in articles}
    test_path = path / "queries_test.json"
    return Dataset(
        name="stackfaq",
        path=path,
        articles=articles,
        dev=_stackfaq_queries(path / "queries.json", known),
        test=_stackfaq_queries(test_path, known) if test_path.exists() else None,
        dev_file="queries.json",
        test_file="queries_test.json",
        notes=["article = one thread: title = its question; body = the question, then each answer as a paragraph"],
    )


def _covid_pairs(path: Path, by_question: dict[str, list[str]]) -> tuple[list[EvalQuery], int]:
    """Positive pairs → a query whose gold is the FAQ question_1; negative pairs → a query for which
    that FAQ is the wrong answer. Pairs whose question_1 is not an FAQ of the KB are skipped (counted)."""
    out, skipped = [], 0
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            faq, text = _clean_text(row["question_1"]), _clean_text(row["question_2"])
            ids = by_question.get(faq.lower())
            if not ids or not text:
                skipped += 1
                continue
            if str(row["similar"]).strip() == "1":
                out.append(EvalQuery(text=text, gold=frozenset(ids), group=faq))
            else:
                out.append(EvalQuery(text=text, forbidden=frozenset(ids), group=faq))
    # Most hard negatives are paraphrases written for *another* FAQ of the same file: their right answer
    # is known, so an answer with some other FAQ can be judged too.
    answers: dict[str, set[str]] = {}
    for q in out:
        answers.setdefault(q.text, set()).update(q.gold)
    for q in out:
        if not q.positive and answers.get(q.text):
            q.known_gold = frozenset(answers[q.text])
    return out, skipped


def load_covid(path: Path) -> Dataset:
    articles, by_question = [], {}
    with (path / "faq_covidbert.csv").open(encoding="utf-8", newline="") as f:
        for number, row in enumerate(csv.DictReader(f), start=1):
            title, body = _clean_text(row["question"]), (row.get("answer") or "").strip()
            if not title or not body:
                continue
            external_id = f"faq-{number}"
            articles.append(
                EvalArticle(external_id=external_id, title=title, body=body, link=row.get("link", "").strip())
            )
            # FAQs repeated verbatim by the source (same question) are one answer: either one is right.
            by_question.setdefault(title.lower(), []).append(external_id)
    dev, skipped_dev = _covid_pairs(path / "question_pairs.csv", by_question)
    test_path = path / "question_pairs_test.csv"
    test, skipped_test = _covid_pairs(test_path, by_question) if test_path.exists() else (None, 0)
    notes = [
        "article = one FAQ row: title = its question, body = its answer (row number = external id)",
        "a positive pair (similar=1) is a query (question_2) whose gold is the FAQ question_1 "
        "(FAQ rows repeating the same question all count as that answer)",
    ]
    if skipped_dev or skipped_test:
        notes.append(f"pairs skipped, question_1 not an FAQ of the KB: {skipped_dev} dev, {skipped_test} test")
    return Dataset(
        name="covid_faq_deepset",
        path=path,
        articles=articles,
        dev=dev,
        test=test,
        dev_file="question_pairs.csv",
        test_file="question_pairs_test.csv",
        notes=notes,
    )


def load_dataset(path: str | Path) -> Dataset:
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path}: not a folder.")
    if (path / "kb.json").exists() and (path / "queries.json").exists():
        return load_stackfaq(path)
    if (path / "faq_covidbert.csv").exists() and (path / "question_pairs.csv").exists():
        return load_covid(path)
    raise DatasetError(
        f"{path}: unknown dataset (expected kb.json + queries.json, or faq_covidbert.csv + question_pairs.csv)."
    )


def sample(queries: list[EvalQuery], limit: int | None) -> list[EvalQuery]:
    """``limit`` queries spread evenly over the file (files are grouped by FAQ, so not the first N)."""
    if not limit or limit >= len(queries):
        return queries
    return [queries[i * len(queries) // limit] for i in range(limit)]


def split_by_group(queries: Sequence[EvalQuery]) -> tuple[list[EvalQuery], list[EvalQuery]]:
    """Two halves by a stable hash of the question's group (its FAQ / gold thread; without a group, its
    gold and forbidden articles): no FAQ is in both."""
    halves: tuple[list[EvalQuery], list[EvalQuery]] = ([], [])
    for q in queries:
        key = q.group or "|".join(sorted(q.gold | q.forbidden))
        halves[hashlib.sha256(key.encode()).digest()[0] % 2].append(q)
    return halves
