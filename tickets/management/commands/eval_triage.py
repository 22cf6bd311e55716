"""Measure the local triage provider on a public dataset folder; the last stdout line is one JSON object.

    make eval EVAL="eval_triage --data ../shared/datasets/bitext_customer_support"

Datasets: bitext_customer_support, clinc150, openticketai_support_tickets, twitter_airline_sentiment,
banking77, recognised by their files; figures on the contract's test file when the folder has it, else
on a seeded stratified split (the JSON says which). Embeddings are cached in ``--cache-dir``. Tables go
to stdout, progress to stderr. The evaluation itself is ``tickets.ai.evaluation.triage``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from supportflow.evaluation import EvaluationError
from tickets.ai.evaluation import triage


class Command(BaseCommand):
    help = "Evaluate local triage on a dataset folder (bitext, clinc150, openticketai, twitter, banking77)."

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="Dataset folder (layout per ../shared/datasets/README.md).")
        parser.add_argument("--limit", type=int, default=None, help="Use at most N rows of each part (seeded sample).")
        parser.add_argument(
            "--cache-dir",
            default=str(Path(tempfile.gettempdir()) / "supportflow-eval-cache"),
            help="Where the embedding cache lives (default: <tmp>/supportflow-eval-cache).",
        )

    def handle(self, *args, **options):
        data = Path(options["data"]).expanduser()
        quiet = options["verbosity"] == 0

        def progress(message: str) -> None:
            if not quiet:
                self.stderr.write(message)

        try:
            figures = triage.run(data, limit=options["limit"], cache_dir=Path(options["cache_dir"]), progress=progress)
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"\n{figures['dataset']} — {figures['split']}\n")
        rows = triage.table(figures)
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            self.stdout.write(f"  {key:<{width}}  {value}")
        self.stdout.write(json.dumps(figures, ensure_ascii=False, sort_keys=False))
        sys.stdout.flush()
