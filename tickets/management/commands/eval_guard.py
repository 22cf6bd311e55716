"""Measure the prompt-injection guard: precision/recall on deepset_prompt_injections, detection of
BIPIA attacks hidden in emails, and the false-positive rate on real (benign) customer texts.

    make eval EVAL="eval_guard --data ../shared/datasets/deepset_prompt_injections"

``--data`` is a dataset folder (deepset_prompt_injections or bipia layout). ``--benign`` folders
(default: the five triage sets beside the project) give the false-positive rate. Tables go to stdout,
progress to stderr, and the last line of stdout is one JSON object with every figure. Embeddings are
cached on disk by text hash (``--cache-dir``). The evaluation itself is ``tickets.ai.evaluation.guard``;
see docs/eval-guard.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from supportflow.evaluation import EvaluationError
from tickets.ai.evaluation import guard as ev


def _paths(values: list[str] | None) -> list[Path] | None:
    return [Path(v) for v in values] if values else None


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
        parser.add_argument("--benign-per-set", type=int, default=ev.BENIGN_PER_SET, help="Seeded sample per set.")
        parser.add_argument(
            "--cache-dir",
            default=str(Path(tempfile.gettempdir()) / "supportflow-eval-guard"),
            help="Embedding cache directory ('' disables).",
        )
        parser.add_argument("--seed", type=int, default=ev.SEED)
        parser.add_argument(
            "--sweep",
            action="store_true",
            help="Also print recall / false-positive rate at other thresholds (how the shipped ones were chosen).",
        )

    def handle(self, *args, **options):
        settings = ev.Options(
            data=Path(options["data"]),
            benign=_paths(options["benign"]),
            no_benign=options["no_benign"],
            passages=_paths(options["passages"]),
            no_passages=options["no_passages"],
            limit=options["limit"],
            benign_per_set=options["benign_per_set"],
            cache_dir=Path(options["cache_dir"]) if options["cache_dir"] else None,
            seed=options["seed"],
            sweep=options["sweep"],
        )
        log = self.stderr.write if options["verbosity"] else (lambda message: None)
        try:
            summary = ev.GuardEvaluation(settings, write=self.stdout.write, log=log).run()
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        sys.stderr.flush()
        self.stdout.write(json.dumps(summary, ensure_ascii=False))
