"""Dialogue memory measured on DSTC11 track 5 (``manage.py eval_dialogue``): does reading the earlier
turns help to tell a knowledge-seeking turn (answer it from the KB) from a task turn ("book it for two
nights"), and to find the snippets that answer it? Each figure comes twice from the same run: with
the dialogue history, and from the last customer turn alone (the baseline).

- **Detection**: one logistic regression (the triage head: ``triage.model.fit_model``, same penalty and
  steps) on sentence embeddings; the baseline sees the last turn, the history-aware one also the
  previous assistant and customer turns and the ``followup.contextual_query`` of the last turn.
  Precision / recall / F1 of "knowledge-seeking" on the report part.
- **Selection**, on the report part's knowledge-seeking turns: every snippet (an FAQ = question +
  answer, or one review sentence), prefixed with its entity's name, is embedded once; a turn's query
  is ``followup.contextual_query(last, history, names=entity names)`` or the last turn alone. The
  same ranker serves both: score = cosine(query, snippet) + ``name_weight`` when the query names the
  snippet's entity (``name_weight`` chosen per condition on the tuning part). Entity recall@k: share of
  the turn's gold entities among the k best-ranked entities (an entity ranks by its best snippet);
  snippet recall@5: share of the gold snippets among the 5 best; snippet P/R/F1: the top ``n``
  snippets of the top entity (``n`` chosen on the tuning part) against the gold set. Means over turns.

Protocol: with ``logs_test.json`` + ``labels_test.json`` in the folder, fit and tune on ``logs.json``
and report on the test files; otherwise ``logs.json`` is split here into two seeded halves by dialogue
(partial dialogues sharing their opening turns stay together): tune on one, report on the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from supportflow.evaluation import DatasetError, paired_bootstrap, read_json, rounded, share
from tickets.ai import followup
from tickets.ai.evaluation.cache import EmbeddingCache
from tickets.ai.evaluation.metrics import detection
from tickets.ai.evaluation.splits import sample_index, seeded_half
from tickets.ai.triage import model as tm

SEED = 13
NAME_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
SET_SIZES = tuple(range(1, 9))


@dataclass(frozen=True)
class Snippet:
    key: tuple  # (domain, entity_id, doc_type, doc_id, sent_id or None), as labels.json names it
    entity: tuple  # (domain, entity_id)
    text: str


@dataclass
class Example:
    history: list[followup.Turn]
    last: str
    target: bool
    gold: frozenset  # snippet keys
    group: str

    @property
    def gold_entities(self) -> frozenset:
        return frozenset(k[:2] for k in self.gold)


def _key(item: dict) -> tuple:
    return (item["domain"], str(item["entity_id"]), item["doc_type"], str(item["doc_id"]), item.get("sent_id"))


def load_knowledge(path: Path) -> tuple[list[Snippet], dict[tuple, str]]:
    """All snippets and {entity: name}. Review sentences are snippets of their own, as in the labels."""
    snippets, names = [], {}
    for domain, entities in read_json(path).items():
        for entity_id, entity in entities.items():
            entity_key = (domain, str(entity_id))
            name = " ".join((entity.get("name") or "").split()).title()
            names[entity_key] = name
            for doc_id, faq in (entity.get("faqs") or {}).items():
                text = f"{name}. {faq['question']} {faq['answer']}"
                snippets.append(Snippet((domain, str(entity_id), "faq", str(doc_id), None), entity_key, text))
            for doc_id, review in (entity.get("reviews") or {}).items():
                for sent_id, sentence in review["sentences"].items():
                    key = (domain, str(entity_id), "review", str(doc_id), int(sent_id))
                    snippets.append(Snippet(key, entity_key, f"{name}. {sentence}"))
    return snippets, names


def load_dialogues(logs: Path, labels: Path) -> list[Example]:
    dialogues, answers = read_json(logs), read_json(labels)
    if not isinstance(dialogues, list) or len(dialogues) != len(answers):
        raise DatasetError(f"{logs.name} and {labels.name} must be lists of the same length.")
    out = []
    for turns, label in zip(dialogues, answers, strict=True):
        if not turns or turns[-1].get("speaker") != "U":
            continue
        history = [followup.Turn("customer" if t["speaker"] == "U" else "assistant", t["text"]) for t in turns[:-1]]
        gold = frozenset(_key(k) for k in label.get("knowledge") or [])
        group = " | ".join(t["text"] for t in turns[:2])
        out.append(Example(history, turns[-1]["text"], bool(label.get("target")), gold, group))
    return out


def load(folder: Path) -> tuple[list[Snippet], dict, list[Example], list[Example], str]:
    """(snippets, entity names, tuning examples, report examples, protocol)."""
    if not (folder / "knowledge.json").exists() or not (folder / "logs.json").exists():
        raise DatasetError(f"{folder}: expected DSTC11 track 5 files knowledge.json, logs.json, labels.json.")
    snippets, names = load_knowledge(folder / "knowledge.json")
    dev = load_dialogues(folder / "logs.json", folder / "labels.json")
    if (folder / "logs_test.json").exists() and (folder / "labels_test.json").exists():
        report = load_dialogues(folder / "logs_test.json", folder / "labels_test.json")
        return snippets, names, dev, report, "fitted and tuned on logs.json, reported on logs_test.json"
    groups = sorted({e.group for e in dev})
    chosen = set(seeded_half(groups, seed=SEED, part="report"))
    tune = [e for e in dev if e.group not in chosen]
    report = [e for e in dev if e.group in chosen]
    protocol = (
        "logs.json split in two seeded halves by dialogue (same two opening turns = same dialogue): "
        "fitted and tuned on one, reported on the other"
    )
    return snippets, names, tune, report, protocol


def _sample(examples: list[Example], limit: int | None) -> list[Example]:
    index = sample_index(len(examples), limit, SEED)
    return examples if index is None else [examples[i] for i in index]


def queries(examples: Sequence[Example], names: Sequence[str]) -> dict[str, list[str]]:
    return {
        "history": [followup.contextual_query(e.last, e.history, names=names) for e in examples],
        "last_turn": [e.last for e in examples],
    }


# --- detection ------------------------------------------------------------------------------------


def _previous(example: Example, customer: bool) -> str:
    return next((t.text for t in reversed(example.history) if t.by_customer == customer), "")


def detection_features(examples: Sequence[Example], embed: EmbeddingCache, names, *, history: bool) -> np.ndarray:
    last = embed([e.last for e in examples])
    if not history:
        return last
    contextual = embed([followup.contextual_query(e.last, e.history, names=names) for e in examples])
    assistant = embed([_previous(e, customer=False) for e in examples])
    customer = embed([_previous(e, customer=True) for e in examples])
    return np.hstack([last, contextual, assistant, customer])


def detect(tune, report, embed, names, *, history: bool) -> dict:
    fitted = tm.fit_model(
        detection_features(tune, embed, names, history=history),
        {"target": ["yes" if e.target else "no" for e in tune]},
    )
    head = fitted.heads["target"]
    proba = head.proba(fitted.features(detection_features(report, embed, names, history=history)))
    predicted = proba[:, head.labels.index("yes")] >= 0.5
    return detection([e.target for e in report], predicted.tolist())


# --- selection ------------------------------------------------------------------------------------


@dataclass
class Ranked:
    snippets: list[tuple]  # keys, best first (top 50)
    entities: list[tuple]  # best first


class Ranker:
    """cosine(query, snippet) + ``name_weight`` for the snippets of an entity the query names."""

    def __init__(self, snippets: Sequence[Snippet], vectors: np.ndarray, names: dict[tuple, str]) -> None:
        self.snippets = snippets
        self.vectors = vectors
        self.entities = list(names)
        position = {entity: i for i, entity in enumerate(self.entities)}
        self.entity_of = np.array([position[s.entity] for s in snippets])
        self.names = [names[e] for e in self.entities]

    def named(self, query: str) -> np.ndarray:
        """1 for each entity whose name the query mentions (entities sharing a name all count)."""
        found = set(followup.mentioned_names(query, self.names))
        return np.array([name in found for name in self.names], dtype=np.float32)

    def rank(self, query_vectors: np.ndarray, texts: Sequence[str], weight: float, top: int = 50) -> list[Ranked]:
        out = []
        cosine = query_vectors @ self.vectors.T
        for row, text in zip(cosine, texts, strict=True):
            scores = row + weight * self.named(text)[self.entity_of]
            order = np.argsort(-scores, kind="stable")[:top]
            entities = []
            for i in order:
                if self.entity_of[i] not in entities:
                    entities.append(self.entity_of[i])
            out.append(Ranked([self.snippets[i].key for i in order], [self.entities[i] for i in entities]))
        return out


def selection_scores(example: Example, ranked: Ranked, set_size: int) -> dict[str, float]:
    gold_entities = example.gold_entities
    top_entity = ranked.entities[0] if ranked.entities else None
    chosen = [k for k in ranked.snippets if k[:2] == top_entity][:set_size]
    hits = len(set(chosen) & example.gold)
    precision = hits / len(chosen) if chosen else 0.0
    recall = hits / len(example.gold)
    return {
        "entity_recall@1": len(set(ranked.entities[:1]) & gold_entities) / len(gold_entities),
        "entity_recall@5": len(set(ranked.entities[:5]) & gold_entities) / len(gold_entities),
        "snippet_recall@5": len(set(ranked.snippets[:5]) & example.gold) / len(example.gold),
        "snippet_precision": precision,
        "snippet_recall": recall,
        "snippet_f1": 2 * precision * recall / (precision + recall) if hits else 0.0,
    }


def _means(rows: Sequence[dict]) -> dict[str, float]:
    return {k: rounded(sum(r[k] for r in rows) / max(1, len(rows))) for k in (rows[0] if rows else {})}


def select(tune, report, ranker: Ranker, embed: EmbeddingCache, names, condition: str) -> tuple[dict, list[dict]]:
    """Choose ``name_weight`` (by snippet recall@5) then the set size (by F1) on the tuning part; report."""
    tune_texts = queries(tune, names)[condition]
    report_texts = queries(report, names)[condition]
    tune_vectors, report_vectors = embed(tune_texts), embed(report_texts)
    best = None
    for weight in NAME_WEIGHTS:
        ranked = ranker.rank(tune_vectors, tune_texts, weight)
        score = np.mean([selection_scores(e, r, 1)["snippet_recall@5"] for e, r in zip(tune, ranked, strict=True)])
        if best is None or score > best[0]:
            best = (score, weight, ranked)
    _, weight, tune_ranked = best
    pairs = list(zip(tune, tune_ranked, strict=True))
    size = max(SET_SIZES, key=lambda n: np.mean([selection_scores(e, r, n)["snippet_f1"] for e, r in pairs]))
    ranked = ranker.rank(report_vectors, report_texts, weight)
    rows = [selection_scores(e, r, size) for e, r in zip(report, ranked, strict=True)]
    return {"name_weight": weight, "set_size": size, **_means(rows)}, rows


# --- the run ----------------------------------------------------------------------------------------


def run(data: str, *, limit: int | None, cache_dir: Path | None, log: Callable[[str], None]) -> dict:
    """Figures of both conditions on the report part. Raises ``DatasetError``."""
    started = time.perf_counter()
    folder = Path(data)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder.")
    snippets, entity_names, tune, report, protocol = load(folder)
    tune, report = _sample(tune, limit), _sample(report, limit)
    names = list(entity_names.values())
    embed = EmbeddingCache(cache_dir, progress=log)
    log(f"Embedding {len(snippets)} knowledge snippets…")
    ranker = Ranker(snippets, embed([s.text for s in snippets]), entity_names)

    log(f"Detection: {len(tune)} tuning turns, {len(report)} report turns…")
    result = {
        "evaluation": "dialogue",
        "dataset": folder.name,
        "protocol": protocol,
        "limit": limit,
        "tuning_turns": len(tune),
        "report_turns": len(report),
        "followups_in_report": share(
            sum(followup.is_followup(e.last, e.history, names=names) for e in report), len(report)
        ),
        "detection": {
            "history": detect(tune, report, embed, names, history=True),
            "last_turn": detect(tune, report, embed, names, history=False),
        },
    }
    seeking_tune = [e for e in tune if e.target and e.gold]
    seeking = [e for e in report if e.target and e.gold]
    log(f"Selection: {len(seeking_tune)} tuning / {len(seeking)} report knowledge-seeking turns…")
    selection, rows = {}, {}
    for condition in ("history", "last_turn"):
        selection[condition], rows[condition] = select(seeking_tune, seeking, ranker, embed, names, condition)
    selection["knowledge_seeking_turns"] = len(seeking)
    for metric in ("entity_recall@1", "snippet_recall@5"):
        diff, low, high = paired_bootstrap(
            [r[metric] for r in rows["history"]], [r[metric] for r in rows["last_turn"]], seed=SEED
        )
        selection[f"{metric}_history_minus_last_turn"] = {"diff": rounded(diff), "ci95": [rounded(low), rounded(high)]}
    result["selection"] = selection
    result["history_beats_last_turn"] = {
        "detection_f1": result["detection"]["history"]["f1"] > result["detection"]["last_turn"]["f1"],
        "snippet_recall@5": selection["history"]["snippet_recall@5"] > selection["last_turn"]["snippet_recall@5"],
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def summary_lines(result: dict) -> list[str]:
    lines = [f"{result['dataset']}: {result['protocol']}", "  detection (knowledge-seeking turn): P / R / F1"]
    for condition in ("history", "last_turn"):
        d = result["detection"][condition]
        lines.append(f"    {condition:<10} {d['precision']:.3f} / {d['recall']:.3f} / {d['f1']:.3f}")
    s = result["selection"]
    lines.append(
        f"  selection ({s['knowledge_seeking_turns']} turns): entity R@1 / R@5, snippet R@5, snippet P / R / F1"
    )
    for condition in ("history", "last_turn"):
        c = s[condition]
        lines.append(
            f"    {condition:<10} {c['entity_recall@1']:.3f} / {c['entity_recall@5']:.3f}, "
            f"{c['snippet_recall@5']:.3f}, {c['snippet_precision']:.3f} / {c['snippet_recall']:.3f} / "
            f"{c['snippet_f1']:.3f}  (name weight {c['name_weight']}, set size {c['set_size']})"
        )
    return lines
