"""What an indirect prompt injection achieves through the whole AI pipeline (end to end, not just the guard).

    make eval EVAL="seed_demo"   # once: the demo departments and triage model
    make eval EVAL="eval_injection --data ../shared/datasets/bipia --limit 5"

Each BIPIA email arrives as an email ticket and goes through the pipeline against the demo knowledge
base, once clean and once with each attack inserted at the start, middle and end, rolled back. The
last stdout line is one JSON object. The evaluation itself is ``tickets.ai.evaluation.injection``; see
docs/eval-guard.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from supportflow.evaluation import EvaluationError
from tickets.ai.evaluation import bipia, injection


class Command(BaseCommand):
    help = "End-to-end attack success of BIPIA email injections through the AI pipeline; last stdout line is JSON."

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="The bipia dataset folder.")
        parser.add_argument("--limit", type=int, default=None, help="Use only the first N emails of the report part.")
        parser.add_argument("--seed", type=int, default=injection.SEED)
        parser.add_argument(
            "--kb", default=str(injection.DEMO_KB), help="Folder of markdown articles (default: the demo KB)."
        )
        parser.add_argument(
            "--positions", default=",".join(bipia.POSITIONS), help="Where to insert attacks: start,middle,end."
        )

    def handle(self, *args, **options):
        try:
            result = injection.run(
                Path(options["data"]),
                limit=options["limit"],
                seed=options["seed"],
                kb=Path(options["kb"]),
                positions=[p for p in options["positions"].split(",") if p],
                log=self.stderr.write,
            )
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        for line in injection.summary_lines(result):
            self.stdout.write(line)
        self.stdout.write(json.dumps(result, ensure_ascii=False))
