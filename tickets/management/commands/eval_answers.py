"""Answering evaluation through the whole AI pipeline: auto-answered correctly / wrongly / escalated.

    python -m supportflow.devservices exec -- .venv/bin/python manage.py eval_answers \
        --data ../shared/datasets/stackfaq [--limit N] [--fit]

Follows the evaluation contract (../shared/datasets/README.md): the folder's development file tunes,
its test file (if present) is reported on; without a test file the development part is split in two
halves by FAQ — the threshold is chosen on one half and reported on the other. ``--fit`` also fits the
evidence weights (on the tuning part only) and reports the gate with them. The last stdout line is
one JSON object. See docs/eval-answers.md.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from knowledge import evaluation as kbev
from tickets import services
from tickets.ai import answer as answering
from tickets.ai import evaluation as ev


class Command(BaseCommand):
    help = "Replay a FAQ dataset's questions through the AI pipeline; last stdout line is JSON."

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="Dataset folder (stackfaq or covid_faq_deepset layout).")
        parser.add_argument("--limit", type=int, default=None, help="Use only N questions of each part.")
        parser.add_argument("--namespace", default=None, help="Namespace to load into (default eval-answers-<name>).")
        parser.add_argument("--keep", action="store_true", help="Keep the namespace after the run.")
        parser.add_argument("--fit", action="store_true", help="Also fit the evidence weights on the tuning part.")

    def _progress(self, label: str, total: int):
        step = max(1, total // 10)

        def report(done: int) -> None:
            if self.verbosity and (done % step == 0 or done == total):
                self.stderr.write(f"  {label}: {done}/{total}")

        return report

    def handle(self, *args, **options):
        self.verbosity = options["verbosity"]
        try:
            dataset = kbev.load_dataset(options["data"])
        except kbev.DatasetError as exc:
            raise CommandError(str(exc)) from exc
        namespace = options["namespace"] or f"eval-answers-{dataset.name}"[:50]
        try:
            kbev.check_namespace(namespace)
        except kbev.DatasetError as exc:
            raise CommandError(str(exc)) from exc
        limit = options["limit"]
        if dataset.test is not None:
            tune, report = kbev.sample(dataset.dev, limit), kbev.sample(dataset.test, limit)
            protocol = f"tuned on {dataset.dev_file}, reported on {dataset.test_file}"
        else:
            tune, report = ev.split_half(kbev.sample(dataset.dev, limit))
            protocol = f"{dataset.dev_file} split in two halves by FAQ: tuned on one, reported on the other"

        started = time.perf_counter()
        self.stderr.write(f"Loading {len(dataset.articles)} articles into {namespace!r}…")
        pk_to_external = kbev.load_namespace(
            namespace, dataset.articles, progress=self._progress("indexed", len(dataset.articles))
        )
        try:
            kbev.warm_up(namespace)
            self.stderr.write("Scanning the passages with the injection guard (as the beat sweep does)…")
            services.kb_passages_scan_pending(namespace=namespace, limit=None)
            tune_runs = ev.replay(
                tune, namespace=namespace, pk_to_external=pk_to_external, progress=self._progress("tune", len(tune))
            )
            report_runs = ev.replay(
                report,
                namespace=namespace,
                pk_to_external=pk_to_external,
                progress=self._progress("report", len(report)),
            )
        finally:
            if not options["keep"]:
                kbev.wipe_namespace(namespace)

        shipped = dict(answering.CONFIDENCE_WEIGHTS)
        chosen = ev.best_threshold(tune_runs)
        result = {
            "evaluation": "answers",
            "dataset": dataset.name,
            "protocol": protocol,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "weights": shipped,
            "threshold_chosen_on_tuning_part": chosen["threshold"],
            "tuning": chosen,
            "report": ev.tally(report_runs, chosen["threshold"]),
            "report_at_default_threshold_0_6": ev.tally(report_runs, 0.6),
            "blocked_by_rules": round(sum(1 for r in report_runs if r.blocked_by_rules) / max(1, len(report_runs)), 4),
            "retrieval_top1_correct": round(
                sum(1 for r in report_runs if r.correct_if_sent) / max(1, len(report_runs)), 4
            ),
            "latency_ms": ev.stage_latency(report_runs),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if options["fit"]:
            fitted = ev.fit_weights(tune_runs)
            fitted_choice = ev.best_threshold(tune_runs, fitted)
            result["fitted"] = {
                "weights": fitted,
                "threshold": fitted_choice["threshold"],
                "tuning": fitted_choice,
                "report": ev.tally(report_runs, fitted_choice["threshold"], fitted),
            }
        rules_hit: dict[str, int] = {}
        examples: dict[str, list[dict]] = {}
        for r in report_runs:
            for rule, reason in zip(r.blocked_by_rules, r.reasons or [""] * len(r.blocked_by_rules), strict=False):
                rules_hit[rule] = rules_hit.get(rule, 0) + 1
                if len(examples.setdefault(rule, [])) < 3:
                    examples[rule].append({"question": r.query.text[:160], "reason": reason[:200]})
        result["rules_that_blocked"] = rules_hit
        result["rules_that_blocked_examples"] = examples

        rep = result["report"]
        self.stdout.write(f"{dataset.name}: {protocol}")
        self.stdout.write(
            f"  threshold {chosen['threshold']:.3f} (chosen on the tuning part: wrong ≤ {ev.WRONG_CAP:.0%})\n"
            f"  reported on {rep['questions']} questions: auto-correct {rep['auto_correct']:.1%}, "
            f"auto-wrong {rep['auto_wrong']:.1%}, escalated {rep['escalated']:.1%}"
        )
        if "fitted" in result:
            f = result["fitted"]["report"]
            self.stdout.write(
                f"  with fitted weights {result['fitted']['weights']}: threshold {result['fitted']['threshold']:.3f}, "
                f"auto-correct {f['auto_correct']:.1%}, auto-wrong {f['auto_wrong']:.1%}"
            )
        self.stdout.write(json.dumps(result, ensure_ascii=False))
