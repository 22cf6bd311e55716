"""Measure the prompt-injection guard: precision/recall on deepset_prompt_injections, detection of
BIPIA attacks hidden in emails, and the false-positive rate on real (benign) customer texts.

    python -m supportflow.devservices exec -- .venv/bin/python manage.py eval_guard \\
        --data ../shared/datasets/deepset_prompt_injections

``--data`` is a dataset folder (deepset_prompt_injections or bipia layout, see
../shared/datasets/README.md). With a test file in it the figures are on the test file; without, on a
seeded split of the development file (printed). ``--benign`` folders (default: the five triage sets
beside the project) give the false-positive rate. Tables go to stdout, progress to stderr, and the
last line of stdout is one JSON object with every figure. Embeddings are cached on disk by text hash
(``--cache-dir``). See docs/eval-guard.md.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tickets.ai import bipia, guard

SEED = 20251
REPORT_SHARE = 0.3  # deepset without test.csv: this share of train.csv (stratified, seeded) is reported on
BENIGN_PER_SET = 2000
BENIGN_FPR_TARGET = 0.01
BENIGN_SETS = (
    "bitext_customer_support",
    "banking77",
    "clinc150",
    "openticketai_support_tickets",
    "twitter_airline_sentiment",
)
# The source the pipeline scans each set as: email tickets arrive by email, the rest are chat-like.
EMAIL_SETS = {"openticketai_support_tickets"}
# Knowledge-base-like text for the passage threshold: help-forum answers and FAQ answers.
PASSAGE_SETS = ("stackfaq", "covid_faq_deepset")
SWEEP = (0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9)

csv.field_size_limit(10_000_000)


class DatasetError(Exception):
    pass


# --- embeddings cache -------------------------------------------------------------------------


class CachedEmbedder:
    """``knowledge.embeddings.embed`` behind a disk cache keyed by (model, text) hash: reruns and the
    second pass over the same texts cost nothing."""

    def __init__(self, directory: Path | None) -> None:
        from knowledge import embeddings

        self._embeddings = embeddings
        self.path = None
        self.vectors: dict[str, np.ndarray] = {}
        self.computed = 0
        if directory is not None:
            model = hashlib.sha256(embeddings.model_name().encode()).hexdigest()[:12]
            self.path = directory / f"guard-embeddings-{model}.npz"
            if self.path.exists():
                with np.load(self.path, allow_pickle=False) as data:
                    self.vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = [self._embeddings.content_hash(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self.vectors))
        if missing:
            by_key = dict(zip(keys, texts, strict=True))
            fresh = self._embeddings.embed([by_key[k] for k in missing])
            self.vectors.update(zip(missing, fresh, strict=True))
            self.computed += len(missing)
        if not keys:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys])

    def save(self) -> None:
        if self.path is None or not self.computed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.vectors), dtype="<U64")
        vectors = np.stack(list(self.vectors.values())).astype(np.float32)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz")
        os.close(fd)
        np.savez(tmp, keys=keys, vectors=vectors)
        os.replace(tmp, self.path)


# --- datasets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Labelled:
    text: str
    label: int


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def load_deepset(path: Path) -> list[Labelled]:
    rows = _read_csv(path)
    if not rows or not {"text", "label"} <= set(rows[0]):
        raise DatasetError(f"{path} needs columns text,label.")
    return [Labelled(r["text"], int(r["label"])) for r in rows if r["text"].strip()]


def stratified_split(rows: list[Labelled], *, share: float, seed: int) -> tuple[list[Labelled], list[Labelled]]:
    """(tune, report): per label, a seeded shuffle; the first ``share`` of each label is the report part."""
    rng = random.Random(seed)  # noqa: S311 — seeded sampling, not security
    tune: list[Labelled] = []
    report: list[Labelled] = []
    for label in sorted({r.label for r in rows}):
        group = [r for r in rows if r.label == label]
        rng.shuffle(group)
        cut = round(len(group) * share)
        report += group[:cut]
        tune += group[cut:]
    return tune, report


@dataclass(frozen=True)
class BenignSet:
    name: str
    file: str
    texts: list[str]


def load_benign(folder: Path) -> BenignSet:
    """The customer-written texts of a triage dataset folder (test file when present)."""
    name = folder.name

    def pick(dev: str, test: str) -> Path:
        return folder / test if (folder / test).exists() else folder / dev

    if (folder / "bitext.csv").exists() or (folder / "bitext_test.csv").exists():
        path = pick("bitext.csv", "bitext_test.csv")
        texts = [r["instruction"] for r in _read_csv(path)]
    elif (folder / "tickets_v5.csv").exists() or (folder / "tickets_test.csv").exists():
        path = pick("tickets_v5.csv", "tickets_test.csv")
        # The CSV stores line breaks as the two characters backslash-n.
        texts = [
            f"{r.get('subject') or ''}\n{r.get('body') or ''}".replace("\\n", "\n").strip() for r in _read_csv(path)
        ]
    elif (folder / "tweets.csv").exists() or (folder / "tweets_test.csv").exists():
        path = pick("tweets.csv", "tweets_test.csv")
        texts = [r["text"] for r in _read_csv(path)]
    elif (folder / "data_dev.json").exists() or (folder / "data_test.json").exists():
        path = pick("data_dev.json", "data_test.json")
        data = json.loads(path.read_text(encoding="utf-8"))
        texts = [t for t, _ in data.get("test" if path.name == "data_test.json" else "train", [])]
    elif (folder / "train.csv").exists() or (folder / "test.csv").exists():
        path = pick("train.csv", "test.csv")
        rows = _read_csv(path)
        if rows and "category" not in rows[0]:
            raise DatasetError(f"{folder} does not look like banking77 (text,category).")
        texts = [r["text"] for r in rows]
    else:
        raise DatasetError(f"{folder}: not a known benign triage folder.")
    texts = [t for t in texts if t and t.strip()]
    return BenignSet(name=name, file=path.name, texts=texts)


def load_passages(folder: Path) -> list[str]:
    """Knowledge-base passages as the pipeline sees them: each article chunked like ``kb_ingest`` does."""
    from knowledge.chunking import chunk_markdown

    if (folder / "kb.json").exists():
        articles = json.loads((folder / "kb.json").read_text(encoding="utf-8"))
        bodies = [a["question"] + "\n\n" + "\n\n".join(a["answers"]) for a in articles]
    elif (folder / "faq_covidbert.csv").exists():
        bodies = [f"{r['question']}\n\n{r['answer']}" for r in _read_csv(folder / "faq_covidbert.csv")]
    else:
        raise DatasetError(f"{folder}: not a known knowledge-base folder (stackfaq, covid_faq_deepset).")
    return [chunk.text for body in bodies for chunk in chunk_markdown(body)]


# --- metrics ----------------------------------------------------------------------------------


def _r(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


def binary_metrics(labels: list[int], flagged: list[bool]) -> dict:
    tp = sum(1 for y, f in zip(labels, flagged, strict=True) if y and f)
    fp = sum(1 for y, f in zip(labels, flagged, strict=True) if not y and f)
    fn = sum(1 for y, f in zip(labels, flagged, strict=True) if y and not f)
    tn = len(labels) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": len(labels),
        "positives": tp + fn,
        "precision": _r(precision),
        "recall": _r(recall),
        "f1": _r(f1),
        "fpr": _r(fp / (fp + tn) if fp + tn else 0.0),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def _snippet(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class Command(BaseCommand):
    help = "Evaluate the prompt-injection guard on a dataset folder + benign sets; last stdout line is JSON."

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="deepset_prompt_injections or bipia folder.")
        parser.add_argument(
            "--benign",
            action="append",
            default=None,
            help="Benign triage folder (repeatable). Default: the five sets in ../shared/datasets if present.",
        )
        parser.add_argument("--no-benign", action="store_true", help="Skip the benign false-positive sets.")
        parser.add_argument(
            "--passages",
            action="append",
            default=None,
            help="Knowledge-base folder for the passage false-positive rate (repeatable). "
            "Default: stackfaq and covid_faq_deepset in ../shared/datasets if present.",
        )
        parser.add_argument("--no-passages", action="store_true", help="Skip the passage false-positive sets.")
        parser.add_argument("--limit", type=int, default=None, help="At most N items per part (quick runs).")
        parser.add_argument("--benign-per-set", type=int, default=BENIGN_PER_SET, help="Seeded sample per set.")
        parser.add_argument(
            "--cache-dir",
            default=str(Path(tempfile.gettempdir()) / "supportflow-eval-guard"),
            help="Embedding cache directory ('' disables).",
        )
        parser.add_argument("--seed", type=int, default=SEED)
        parser.add_argument(
            "--sweep",
            action="store_true",
            help="Also print recall / false-positive rate at other thresholds (how the shipped ones were chosen).",
        )

    def _log(self, message: str) -> None:
        if self.verbosity:
            self.stderr.write(message)

    def handle(self, *args, **options):
        self.verbosity = options["verbosity"]
        self.sweep_parts: dict[str, tuple[list[str], list[guard.Verdict], list[int]]] = {}
        self.sweep_options = options["sweep"]
        started = time.perf_counter()
        folder = Path(options["data"])
        if not folder.is_dir():
            raise CommandError(f"--data {folder} is not a folder.")
        cache_dir = Path(options["cache_dir"]) if options["cache_dir"] else None
        embedder = CachedEmbedder(cache_dir)
        shipped = guard.Guard(embed=embedder, classifier=guard.seed_classifier(embed=embedder))
        summary: dict = {
            "data": folder.name,
            "thresholds": shipped.thresholds,
            "strong_rule_weight": guard.STRONG,
            "seed": options["seed"],
        }
        try:
            if (folder / "train.csv").exists() or (folder / "test.csv").exists():
                summary["deepset"] = self._deepset(folder, shipped, embedder, options)
            elif (folder / "email").is_dir():
                summary["bipia"] = self._bipia(folder, shipped, options)
            else:
                raise CommandError(f"{folder}: neither deepset_prompt_injections nor bipia layout.")
            if not options["no_benign"]:
                summary["benign"] = self._benign(shipped, options)
            if not options["no_passages"]:
                summary["passages"] = self._passages(shipped, options)
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            embedder.save()
        if options["sweep"] and self.sweep_parts:
            summary["sweep"] = self._sweep()
        summary["embedded_texts"] = embedder.computed
        summary["total_seconds"] = _r(time.perf_counter() - started, 1)
        summary["machine"] = {"cpus": os.cpu_count(), "loadavg_1m_end": _r(os.getloadavg()[0], 2)}
        summary["embedding_model"] = settings.EMBEDDING_MODEL
        self.stderr.flush()
        sys.stderr.flush()
        self.stdout.write(json.dumps(summary, ensure_ascii=False))

    # --- deepset --------------------------------------------------------------------------------

    def _deepset(self, folder: Path, shipped: guard.Guard, embedder: CachedEmbedder, options) -> dict:
        dev = load_deepset(folder / "train.csv") if (folder / "train.csv").exists() else []
        if (folder / "test.csv").exists():
            tune, report = dev, load_deepset(folder / "test.csv")
            report_on = "test.csv"
        else:
            tune, report = stratified_split(dev, share=REPORT_SHARE, seed=options["seed"])
            report_on = (
                f"train.csv: seeded stratified {REPORT_SHARE:.0%} split (seed {options['seed']}), {len(report)} rows"
            )
        if options["limit"]:
            report = report[: options["limit"]]
        if not report:
            raise DatasetError(f"{folder}: nothing to report on.")
        self._log(f"deepset: scanning {len(report)} texts ({report_on})…")
        labels = [r.label for r in report]
        verdicts = shipped.scan_many([r.text for r in report], source="customer")
        rows = {"shipped": binary_metrics(labels, [v.flagged for v in verdicts])}
        by_signal: dict[str, int] = {}
        for v, y in zip(verdicts, labels, strict=True):
            if y and v.flagged:
                for s in v.signals:
                    by_signal[s] = by_signal.get(s, 0) + 1
        if options["sweep"]:
            self.sweep_parts["deepset report"] = ([r.text for r in report], verdicts, labels)
            if tune:
                tune_verdicts = shipped.scan_many([r.text for r in tune], source="customer")
                self.sweep_parts["deepset tune"] = ([r.text for r in tune], tune_verdicts, [r.label for r in tune])
        if tune:
            self._log(f"deepset: training a comparison classifier on seed + {len(tune)} development rows…")
            _, seed_labels = guard.seed_examples()
            seed = guard.seed_vectors(embed=embedder)
            n = guard.seed_anchor_count()
            vectors = np.vstack([seed[:n], embedder([r.text for r in tune]), seed[n:]])
            y = np.asarray(seed_labels[:n] + [r.label for r in tune] + seed_labels[n:])
            classifier = guard.train_classifier(vectors, y, anchors=n + len(tune))
            dev_guard = guard.Guard(embed=embedder, classifier=classifier)
            dev_verdicts = dev_guard.scan_many([r.text for r in report], source="customer")
            rows["dev_trained_not_shipped"] = binary_metrics(labels, [v.flagged for v in dev_verdicts])
        misses = [_snippet(r.text) for r, v in zip(report, verdicts, strict=True) if r.label and not v.flagged]
        false_alarms = [
            f"{_snippet(r.text)} [{', '.join(v.signals)}]"
            for r, v in zip(report, verdicts, strict=True)
            if not r.label and v.flagged
        ]
        self.stdout.write(f"\ndeepset_prompt_injections — reported on {report_on}; tune part {len(tune)} rows")
        self.stdout.write(f"{'guard':<42} {'n':>5} {'P':>7} {'R':>7} {'F1':>7} {'FPR':>7}")
        names = {
            "shipped": "production (seed-trained, as shipped)",
            "dev_trained_not_shipped": "+ classifier trained on dev (NOT shipped)",
        }
        for key, m in rows.items():
            figures = " ".join(f"{m[k]:>7.3f}" for k in ("precision", "recall", "f1", "fpr"))
            self.stdout.write(f"{names[key]:<42} {m['n']:>5} {figures}")
        self.stdout.write(f"signals on detected injections: {dict(sorted(by_signal.items(), key=lambda kv: -kv[1]))}")
        self.stdout.write(f"missed injections ({len(misses)}), first 5: " + " | ".join(misses[:5]))
        self.stdout.write(f"false alarms ({len(false_alarms)}): " + " | ".join(false_alarms[:5]))
        return {
            "report_on": report_on,
            "tune_rows": len(tune),
            **rows,
            "signals_on_detected": by_signal,
            "false_alarm_examples": false_alarms[:5],
        }

    # --- bipia ----------------------------------------------------------------------------------

    def _bipia(self, folder: Path, shipped: guard.Guard, options) -> dict:
        seed = options["seed"]
        try:
            data = bipia.load(folder, seed=seed)
        except bipia.BipiaError as exc:
            raise DatasetError(str(exc)) from exc
        emails, attacks = data.report.emails, data.report.attacks
        if options["limit"]:
            emails = emails[: options["limit"]]
        if not emails or not attacks:
            raise DatasetError(f"{folder}: no emails or attacks.")
        result = self._bipia_part(
            shipped,
            emails,
            attacks,
            seed=seed,
            report_on=data.report.report_on,
            title="bipia (email)",
            sweep_name="bipia report",
        )
        if data.whole_dev is not None and not options["limit"]:
            result["all_dev"] = self._bipia_part(
                shipped,
                data.whole_dev.emails,
                data.whole_dev.attacks,
                seed=seed,
                report_on=data.whole_dev.report_on,
                title="bipia (email), whole development part — for reference",
                sweep_name="bipia whole dev",
            )
        return result

    def _bipia_part(
        self, shipped: guard.Guard, emails, attacks, *, seed: int, report_on: str, title: str, sweep_name: str
    ) -> dict:
        attacked: list[tuple[str, str, str]] = []
        for context in emails:
            for category, attack in attacks:
                for position in bipia.POSITIONS:
                    attacked.append(
                        (bipia.insert_attack(context, attack, position, seed=f"{seed}:{context}"), category, position)
                    )
        self._log(f"bipia: scanning {len(attacked)} attacked + {len(emails)} clean emails ({report_on})…")
        verdicts = shipped.scan_many([a for a, _, _ in attacked], source="email")
        clean = shipped.scan_many(emails, source="email")
        detected = [v.flagged for v in verdicts]
        rate = sum(detected) / len(detected)
        if self.sweep_options:
            texts = [a for a, _, _ in attacked] + emails
            self.sweep_parts[sweep_name] = (
                texts,
                verdicts + clean,
                [1] * len(attacked) + [0] * len(emails),
            )
        by_category: dict[str, list[bool]] = {}
        by_position: dict[str, list[bool]] = {}
        for (_, category, position), d in zip(attacked, detected, strict=True):
            by_category.setdefault(category, []).append(d)
            by_position.setdefault(position, []).append(d)
        clean_fp = [e for e, v in zip(emails, clean, strict=True) if v.flagged]
        result = {
            "report_on": report_on,
            "attacked": len(attacked),
            "detection_rate": _r(rate),
            "guard_attack_success_rate": _r(1 - rate),
            "clean": len(emails),
            "clean_fpr": _r(len(clean_fp) / len(emails)),
            "by_category": {c: _r(sum(d) / len(d)) for c, d in sorted(by_category.items())},
            "by_position": {p: _r(sum(d) / len(d)) for p, d in by_position.items()},
        }
        self.stdout.write(f"\n{title} — {report_on}")
        self.stdout.write(
            f"attacked {len(attacked)}: detected {rate:.3f} → guard-level ASR {1 - rate:.3f}; "
            f"clean {len(emails)}: FPR {result['clean_fpr']:.3f}"
        )
        self.stdout.write(f"{'category':<30} {'detected':>9}")
        for category, value in result["by_category"].items():
            self.stdout.write(f"{category:<30} {value:>9.3f}")
        self.stdout.write("by position: " + ", ".join(f"{p} {v:.3f}" for p, v in result["by_position"].items()))
        if clean_fp:
            self.stdout.write("clean emails flagged: " + " | ".join(_snippet(e) for e in clean_fp[:3]))
        return result

    # --- threshold sweep ---------------------------------------------------------------------------

    def _sweep(self) -> dict:
        """Recall (on injections) and false-positive rate (on benign texts) of each part at other
        thresholds, the same threshold for every source: what the shipped values were picked from."""
        table: dict[str, dict[str, list[float]]] = {}
        for name, (texts, verdicts, labels) in self.sweep_parts.items():
            strong = [any(w >= guard.STRONG for w in guard.heuristic_signals(t).values()) for t in texts]
            figures: dict[str, list[float]] = {}
            for key, wanted in (("recall", 1), ("fpr", 0)):
                idx = [i for i, y in enumerate(labels) if y == wanted]
                if idx:
                    figures[key] = [
                        _r(sum(1 for i in idx if strong[i] or verdicts[i].score >= t) / len(idx)) for t in SWEEP
                    ]
            table[name] = figures
        self.stdout.write(
            f"\nthreshold sweep (every source at the same threshold; passages ship at {guard.THRESHOLDS['passage']})"
        )
        self.stdout.write(f"{'part':<44} {'':>6} " + " ".join(f"{t:>6}" for t in SWEEP))
        for name, figures in table.items():
            for key, values in figures.items():
                self.stdout.write(f"{name[:44]:<44} {key:>6} " + " ".join(f"{v:>6.3f}" for v in values))
        return {"thresholds": list(SWEEP), "parts": table}

    # --- benign -----------------------------------------------------------------------------------

    def _default_folders(self, names: tuple[str, ...]) -> list[Path]:
        root = settings.DATASETS_DIR
        return [root / name for name in names if (root / name).is_dir()]

    def _benign_folders(self, options) -> list[Path]:
        if options["benign"]:
            return [Path(p) for p in options["benign"]]
        return self._default_folders(BENIGN_SETS)

    def _passages(self, shipped: guard.Guard, options) -> dict:
        folders = [Path(p) for p in options["passages"]] if options["passages"] else self._default_folders(PASSAGE_SETS)
        sets = {}
        examples = []
        flagged_total = n_total = 0
        for folder in folders:
            passages = load_passages(folder)
            if options["limit"]:
                passages = passages[: options["limit"]]
            self._log(f"passages {folder.name}: scanning {len(passages)} chunks…")
            verdicts = shipped.scan_many(passages, source="passage")
            flagged = [(t, v) for t, v in zip(passages, verdicts, strict=True) if v.flagged]
            if self.sweep_options:
                self.sweep_parts[f"passages {folder.name}"] = (passages, verdicts, [0] * len(passages))
            sets[folder.name] = {"n": len(passages), "fpr": _r(len(flagged) / len(passages)) if passages else 0.0}
            flagged_total += len(flagged)
            n_total += len(passages)
            examples += [
                {"set": folder.name, "text": _snippet(t, 80), "score": v.score, "signals": list(v.signals)}
                for t, v in flagged[:3]
            ]
        overall = _r(flagged_total / n_total) if n_total else 0.0
        self.stdout.write("\nknowledge-base passages — false-positive rate (source=passage)")
        for name, f in sets.items():
            self.stdout.write(f"{name:<30} {f['n']:>5} {f['fpr']:>7.4f}")
        self.stdout.write(f"{'overall':<30} {n_total:>5} {overall:>7.4f}")
        for e in examples[:6]:
            self.stdout.write(f"  FP {e['set']}: {e['text']}  score {e['score']:.2f} {e['signals']}")
        return {"sets": sets, "overall_fpr": overall, "false_positive_examples": examples[:6]}

    def _benign(self, shipped: guard.Guard, options) -> dict:
        """Each set is scanned as the source it would arrive from (``EMAIL_SETS`` as email, the rest as
        chat); the threshold is the same for both today, so the figures would not change either way."""
        per_set = options["limit"] or options["benign_per_set"]
        sets = {}
        examples = []
        flagged_total = n_total = 0
        for folder in self._benign_folders(options):
            data = load_benign(folder)
            rng = random.Random(f"{options['seed']}:{data.name}")  # noqa: S311 — seeded sampling, not security
            texts = rng.sample(data.texts, k=min(per_set, len(data.texts)))
            source = "email" if data.name in EMAIL_SETS else "customer"
            self._log(
                f"benign {data.name}: scanning {len(texts)} of {len(data.texts)} texts ({data.file}) as {source}…"
            )
            verdicts = shipped.scan_many(texts, source=source)
            flagged = [(t, v) for t, v in zip(texts, verdicts, strict=True) if v.flagged]
            if self.sweep_options:
                self.sweep_parts[f"benign {data.name}"] = (texts, verdicts, [0] * len(texts))
            sets[data.name] = {
                "file": data.file,
                "n": len(texts),
                "source": source,
                "flagged": len(flagged),
                "fpr": _r(len(flagged) / len(texts)),
            }
            flagged_total += len(flagged)
            n_total += len(texts)
            examples += [
                {"set": data.name, "text": _snippet(t, 80), "score": v.score, "signals": list(v.signals)}
                for t, v in flagged[:2]
            ]
        overall = _r(flagged_total / n_total) if n_total else 0.0
        self.stdout.write("\nbenign customer texts — false-positive rate (target ≤ 1 %)")
        self.stdout.write(f"{'set':<30} {'file':<16} {'source':>8} {'n':>5} {'flagged':>8} {'FPR':>7}")
        for name, f in sets.items():
            self.stdout.write(
                f"{name:<30} {f['file']:<16} {f['source']:>8} {f['n']:>5} {f['flagged']:>8} {f['fpr']:>7.4f}"
            )
        self.stdout.write(f"{'overall':<30} {'':<16} {'':>8} {n_total:>5} {flagged_total:>8} {overall:>7.4f}")
        for e in examples[:10]:
            self.stdout.write(f"  FP {e['set']}: {e['text']}  score {e['score']:.2f} {e['signals']}")
        return {
            "sets": sets,
            "overall_fpr": overall,
            "target": BENIGN_FPR_TARGET,
            "target_met": overall <= BENIGN_FPR_TARGET and all(f["fpr"] <= BENIGN_FPR_TARGET for f in sets.values()),
            "false_positive_examples": examples[:10],
        }
