"""The prompt-injection guard measured (``manage.py eval_guard``): precision/recall on
deepset_prompt_injections, detection of BIPIA attacks hidden in emails, and the false-positive rate on
real (benign) customer texts and on knowledge-base passages.

``data`` is a dataset folder (deepset_prompt_injections or bipia layout, see
../shared/datasets/README.md). With a test file in it the figures are on the test file; without, on a
seeded split of the development file (printed). The benign folders (default: the five triage sets in
``settings.DATASETS_DIR``) give the false-positive rate. See docs/eval-guard.md.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from supportflow.evaluation import DatasetError, rounded
from tickets.ai import guard
from tickets.ai.evaluation import bipia
from tickets.ai.evaluation.cache import EmbeddingCache
from tickets.ai.evaluation.loaders import load_benign, load_deepset, load_passages
from tickets.ai.evaluation.metrics import binary_metrics
from tickets.ai.evaluation.splits import stratified_split

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


@dataclass(frozen=True)
class Options:
    data: Path
    benign: list[Path] | None = None  # None: BENIGN_SETS in settings.DATASETS_DIR
    no_benign: bool = False
    passages: list[Path] | None = None  # None: PASSAGE_SETS in settings.DATASETS_DIR
    no_passages: bool = False
    limit: int | None = None
    benign_per_set: int = BENIGN_PER_SET
    cache_dir: Path | None = None
    seed: int = SEED
    sweep: bool = False


def _snippet(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _false_positives(name: str, flagged: list) -> list[dict]:
    return [{"set": name, "text": _snippet(t, 80), "score": v.score, "signals": list(v.signals)} for t, v in flagged]


class GuardEvaluation:
    """One run: ``GuardEvaluation(options, write=…, log=…).run()``. ``write`` gets the tables, ``log``
    the progress."""

    def __init__(self, options: Options, *, write: Callable[[str], None], log: Callable[[str], None]) -> None:
        self.options = options
        self.write = write
        self.log = log
        self.sweep_parts: dict[str, tuple[list[str], list[guard.Verdict], list[int]]] = {}

    def run(self) -> dict:
        """Every figure, as the JSON the command prints; tables go to ``write`` on the way."""
        options = self.options
        started = time.perf_counter()
        folder = options.data
        if not folder.is_dir():
            raise DatasetError(f"--data {folder} is not a folder.")
        embedder = EmbeddingCache(options.cache_dir)
        shipped = guard.Guard(embed=embedder, classifier=guard.seed_classifier(embed=embedder))
        summary: dict = {
            "data": folder.name,
            "thresholds": shipped.thresholds,
            "strong_rule_weight": guard.STRONG,
            "seed": options.seed,
        }
        if (folder / "train.csv").exists() or (folder / "test.csv").exists():
            summary["deepset"] = self._deepset(folder, shipped, embedder)
        elif (folder / "email").is_dir():
            summary["bipia"] = self._bipia(folder, shipped)
        else:
            raise DatasetError(f"{folder}: neither deepset_prompt_injections nor bipia layout.")
        if not options.no_benign:
            summary["benign"] = self._benign(shipped)
        if not options.no_passages:
            summary["passages"] = self._passages(shipped)
        if options.sweep and self.sweep_parts:
            summary["sweep"] = self._sweep()
        summary["embedded_texts"] = embedder.encoded
        summary["total_seconds"] = rounded(time.perf_counter() - started, 1)
        summary["machine"] = {"cpus": os.cpu_count(), "loadavg_1m_end": rounded(os.getloadavg()[0], 2)}
        summary["embedding_model"] = settings.EMBEDDING_MODEL
        return summary

    # --- deepset --------------------------------------------------------------------------------

    def _deepset(self, folder: Path, shipped: guard.Guard, embedder: EmbeddingCache) -> dict:
        dev = load_deepset(folder / "train.csv") if (folder / "train.csv").exists() else []
        if (folder / "test.csv").exists():
            tune, report = dev, load_deepset(folder / "test.csv")
            report_on = "test.csv"
        else:
            tune, report = stratified_split(dev, label=lambda r: r.label, share=REPORT_SHARE, seed=self.options.seed)
            report_on = (
                f"train.csv: seeded stratified {REPORT_SHARE:.0%} split (seed {self.options.seed}), {len(report)} rows"
            )
        if self.options.limit:
            report = report[: self.options.limit]
        if not report:
            raise DatasetError(f"{folder}: nothing to report on.")
        self.log(f"deepset: scanning {len(report)} texts ({report_on})…")
        labels = [r.label for r in report]
        verdicts = shipped.scan_many([r.text for r in report], source="customer")
        rows = {"shipped": binary_metrics(labels, [v.flagged for v in verdicts])}
        by_signal: dict[str, int] = {}
        for v, y in zip(verdicts, labels, strict=True):
            if y and v.flagged:
                for s in v.signals:
                    by_signal[s] = by_signal.get(s, 0) + 1
        if self.options.sweep:
            self.sweep_parts["deepset report"] = ([r.text for r in report], verdicts, labels)
            if tune:
                tune_verdicts = shipped.scan_many([r.text for r in tune], source="customer")
                self.sweep_parts["deepset tune"] = ([r.text for r in tune], tune_verdicts, [r.label for r in tune])
        if tune:
            self.log(f"deepset: training a comparison classifier on seed + {len(tune)} development rows…")
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
        self.write(f"\ndeepset_prompt_injections — reported on {report_on}; tune part {len(tune)} rows")
        self.write(f"{'guard':<42} {'n':>5} {'P':>7} {'R':>7} {'F1':>7} {'FPR':>7}")
        names = {
            "shipped": "production (seed-trained, as shipped)",
            "dev_trained_not_shipped": "+ classifier trained on dev (NOT shipped)",
        }
        for key, m in rows.items():
            figures = " ".join(f"{m[k]:>7.3f}" for k in ("precision", "recall", "f1", "fpr"))
            self.write(f"{names[key]:<42} {m['n']:>5} {figures}")
        self.write(f"signals on detected injections: {dict(sorted(by_signal.items(), key=lambda kv: -kv[1]))}")
        self.write(f"missed injections ({len(misses)}), first 5: " + " | ".join(misses[:5]))
        self.write(f"false alarms ({len(false_alarms)}): " + " | ".join(false_alarms[:5]))
        return {
            "report_on": report_on,
            "tune_rows": len(tune),
            **rows,
            "signals_on_detected": by_signal,
            "false_alarm_examples": false_alarms[:5],
        }

    # --- bipia ----------------------------------------------------------------------------------

    def _bipia(self, folder: Path, shipped: guard.Guard) -> dict:
        seed = self.options.seed
        data = bipia.load(folder, seed=seed)
        emails, attacks = data.report.emails, data.report.attacks
        if self.options.limit:
            emails = emails[: self.options.limit]
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
        if data.whole_dev is not None and not self.options.limit:
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
        self.log(f"bipia: scanning {len(attacked)} attacked + {len(emails)} clean emails ({report_on})…")
        verdicts = shipped.scan_many([a for a, _, _ in attacked], source="email")
        clean = shipped.scan_many(emails, source="email")
        detected = [v.flagged for v in verdicts]
        rate = sum(detected) / len(detected)
        if self.options.sweep:
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
            "detection_rate": rounded(rate),
            "guard_attack_success_rate": rounded(1 - rate),
            "clean": len(emails),
            "clean_fpr": rounded(len(clean_fp) / len(emails)),
            "by_category": {c: rounded(sum(d) / len(d)) for c, d in sorted(by_category.items())},
            "by_position": {p: rounded(sum(d) / len(d)) for p, d in by_position.items()},
        }
        self.write(f"\n{title} — {report_on}")
        self.write(
            f"attacked {len(attacked)}: detected {rate:.3f} → guard-level ASR {1 - rate:.3f}; "
            f"clean {len(emails)}: FPR {result['clean_fpr']:.3f}"
        )
        self.write(f"{'category':<30} {'detected':>9}")
        for category, value in result["by_category"].items():
            self.write(f"{category:<30} {value:>9.3f}")
        self.write("by position: " + ", ".join(f"{p} {v:.3f}" for p, v in result["by_position"].items()))
        if clean_fp:
            self.write("clean emails flagged: " + " | ".join(_snippet(e) for e in clean_fp[:3]))
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
                        rounded(sum(1 for i in idx if strong[i] or verdicts[i].score >= t) / len(idx)) for t in SWEEP
                    ]
            table[name] = figures
        self.write(
            f"\nthreshold sweep (every source at the same threshold; passages ship at {guard.THRESHOLDS['passage']})"
        )
        self.write(f"{'part':<44} {'':>6} " + " ".join(f"{t:>6}" for t in SWEEP))
        for name, figures in table.items():
            for key, values in figures.items():
                self.write(f"{name[:44]:<44} {key:>6} " + " ".join(f"{v:>6.3f}" for v in values))
        return {"thresholds": list(SWEEP), "parts": table}

    # --- benign -----------------------------------------------------------------------------------

    def _default_folders(self, names: tuple[str, ...]) -> list[Path]:
        root = settings.DATASETS_DIR
        return [root / name for name in names if (root / name).is_dir()]

    def _benign_folders(self) -> list[Path]:
        if self.options.benign:
            return [Path(p) for p in self.options.benign]
        return self._default_folders(BENIGN_SETS)

    def _scan_benign(self, shipped: guard.Guard, texts: list[str], *, source: str, part: str) -> list:
        """(text, verdict) of the benign ``texts`` the guard flags; all of them go to the sweep as ``part``."""
        verdicts = shipped.scan_many(texts, source=source)
        if self.options.sweep:
            self.sweep_parts[part] = (texts, verdicts, [0] * len(texts))
        return [(t, v) for t, v in zip(texts, verdicts, strict=True) if v.flagged]

    def _passages(self, shipped: guard.Guard) -> dict:
        folders = (
            [Path(p) for p in self.options.passages] if self.options.passages else self._default_folders(PASSAGE_SETS)
        )
        sets = {}
        examples = []
        flagged_total = n_total = 0
        for folder in folders:
            passages = load_passages(folder)
            if self.options.limit:
                passages = passages[: self.options.limit]
            self.log(f"passages {folder.name}: scanning {len(passages)} chunks…")
            flagged = self._scan_benign(shipped, passages, source="passage", part=f"passages {folder.name}")
            sets[folder.name] = {"n": len(passages), "fpr": rounded(len(flagged) / len(passages)) if passages else 0.0}
            flagged_total += len(flagged)
            n_total += len(passages)
            examples += _false_positives(folder.name, flagged[:3])
        overall = rounded(flagged_total / n_total) if n_total else 0.0
        self.write("\nknowledge-base passages — false-positive rate (source=passage)")
        for name, f in sets.items():
            self.write(f"{name:<30} {f['n']:>5} {f['fpr']:>7.4f}")
        self.write(f"{'overall':<30} {n_total:>5} {overall:>7.4f}")
        for e in examples[:6]:
            self.write(f"  FP {e['set']}: {e['text']}  score {e['score']:.2f} {e['signals']}")
        return {"sets": sets, "overall_fpr": overall, "false_positive_examples": examples[:6]}

    def _benign(self, shipped: guard.Guard) -> dict:
        """Each set is scanned as the source it would arrive from (``EMAIL_SETS`` as email, the rest as
        chat); the threshold is the same for both today, so the figures would not change either way."""
        per_set = self.options.limit or self.options.benign_per_set
        sets = {}
        examples = []
        flagged_total = n_total = 0
        for folder in self._benign_folders():
            data = load_benign(folder)
            rng = random.Random(f"{self.options.seed}:{data.name}")  # noqa: S311 — seeded sampling, not security
            texts = rng.sample(data.texts, k=min(per_set, len(data.texts)))
            source = "email" if data.name in EMAIL_SETS else "customer"
            self.log(f"benign {data.name}: scanning {len(texts)} of {len(data.texts)} texts ({data.file}) as {source}…")
            flagged = self._scan_benign(shipped, texts, source=source, part=f"benign {data.name}")
            sets[data.name] = {
                "file": data.file,
                "n": len(texts),
                "source": source,
                "flagged": len(flagged),
                "fpr": rounded(len(flagged) / len(texts)),
            }
            flagged_total += len(flagged)
            n_total += len(texts)
            examples += _false_positives(data.name, flagged[:2])
        overall = rounded(flagged_total / n_total) if n_total else 0.0
        self.write("\nbenign customer texts — false-positive rate (target ≤ 1 %)")
        self.write(f"{'set':<30} {'file':<16} {'source':>8} {'n':>5} {'flagged':>8} {'FPR':>7}")
        for name, f in sets.items():
            self.write(f"{name:<30} {f['file']:<16} {f['source']:>8} {f['n']:>5} {f['flagged']:>8} {f['fpr']:>7.4f}")
        self.write(f"{'overall':<30} {'':<16} {'':>8} {n_total:>5} {flagged_total:>8} {overall:>7.4f}")
        for e in examples[:10]:
            self.write(f"  FP {e['set']}: {e['text']}  score {e['score']:.2f} {e['signals']}")
        return {
            "sets": sets,
            "overall_fpr": overall,
            "target": BENIGN_FPR_TARGET,
            "target_met": overall <= BENIGN_FPR_TARGET and all(f["fpr"] <= BENIGN_FPR_TARGET for f in sets.values()),
            "false_positive_examples": examples[:10],
        }
