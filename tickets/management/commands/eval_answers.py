"""Answering evaluation through the whole AI pipeline: auto-answered correctly / wrongly / escalated.

    make eval EVAL="eval_answers --data ../shared/datasets/stackfaq [--limit N] [--fit]"

Follows the evaluation contract (../shared/datasets/README.md): the folder's development file tunes,
its test file (if present) is reported on; without a test file the development part is split in two
halves by FAQ — the threshold is chosen on one half and reported on the other. ``--fit`` also fits the
evidence weights (on the tuning part only) and reports the gate with them. The last stdout line is
one JSON object. The evaluation itself is ``tickets.ai.evaluation.answers``; see docs/eval-answers.md.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from supportflow.evaluation import EvaluationError
from tickets.ai.evaluation import answers


class Command(BaseCommand):
    help = "Replay a FAQ dataset's questions through the AI pipeline; last stdout line is JSON."

    def add_arguments(self, parser):
        parser.add_argument("--data", default="", help="Dataset folder (stackfaq or covid_faq_deepset layout).")
        parser.add_argument("--limit", type=int, default=None, help="Use only N questions of each part.")
        parser.add_argument("--namespace", default=None, help="Namespace to load into (default eval-answers-<name>).")
        parser.add_argument("--keep", action="store_true", help="Keep the namespace after the run.")
        parser.add_argument("--fit", action="store_true", help="Also fit the evidence weights on the tuning part.")
        parser.add_argument("--features-out", default=None, help="Write the tuning part's evidence rows (JSONL).")
        parser.add_argument("--dump", default=None, help="Write every replay and calibration probe (JSON).")
        parser.add_argument(
            "--fit-from", nargs="+", default=None, help="Only fit weights on --features-out files of several sets."
        )

    def handle(self, *args, **options):
        if options["fit_from"]:
            self.stdout.write(json.dumps(answers.fit_pooled(options["fit_from"])))
            return
        try:
            result = answers.run(
                options["data"],
                limit=options["limit"],
                namespace=options["namespace"],
                keep=options["keep"],
                fit=options["fit"],
                features_out=options["features_out"],
                dump=options["dump"],
                log=self.stderr.write,
                verbose=bool(options["verbosity"]),
            )
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        for line in answers.summary_lines(result):
            self.stdout.write(line)
        self.stdout.write(json.dumps(result, ensure_ascii=False))
