"""Dialogue memory on DSTC11 track 5: knowledge-seeking turn detection and knowledge selection, with
the dialogue history and from the last turn alone, side by side in one run.

    make eval EVAL="eval_dialogue --data ../shared/datasets/dstc11_track5 [--limit N]"

Follows the evaluation contract (../shared/datasets/README.md): with ``logs_test.json`` and
``labels_test.json`` in the folder it fits and tunes on ``logs.json`` and reports on the test files;
otherwise ``logs.json`` is split in two seeded halves by dialogue. The last stdout line is one JSON
object. The evaluation itself is ``tickets.ai.evaluation.dialogue``; see docs/eval-dialogue.md.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from supportflow.evaluation import EvaluationError
from tickets.ai.evaluation import dialogue


class Command(BaseCommand):
    help = "Detection and knowledge selection on DSTC11 track 5, history vs last turn; last stdout line is JSON."

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="Dataset folder (DSTC11 track 5 layout).")
        parser.add_argument("--limit", type=int, default=None, help="Use a seeded sample of N turns of each part.")
        parser.add_argument(
            "--cache-dir",
            default=str(Path(tempfile.gettempdir()) / "supportflow-eval-cache"),
            help="Embedding cache directory (default: <tmp>/supportflow-eval-cache; '' disables).",
        )

    def handle(self, *args, **options):
        try:
            result = dialogue.run(
                options["data"],
                limit=options["limit"],
                cache_dir=Path(options["cache_dir"]) if options["cache_dir"] else None,
                log=self.stderr.write if options["verbosity"] else (lambda message: None),
            )
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        for line in dialogue.summary_lines(result):
            self.stdout.write(line)
        self.stdout.write(json.dumps(result, ensure_ascii=False))
