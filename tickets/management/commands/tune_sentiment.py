"""Re-run how the shipped sentiment blend's numbers were chosen; the last stdout line is one JSON object.

    make eval EVAL="tune_sentiment"                                                   # seed only
    make eval EVAL="tune_sentiment --data ../shared/datasets/twitter_airline_sentiment"  # + cut-offs

Step 1 (the sentiment head's L2, leave-one-domain-out CV on our seed) and step 2 (blend weights, 5-fold
CV on our seed) read no tweets; step 3 (cut-offs) reads only the 600-tweet tuning slice of the train
part. The procedure is ``tickets.ai.evaluation.sentiment_tuning``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand

from tickets.ai.evaluation import sentiment_tuning


class Command(BaseCommand):
    help = "Choose the sentiment head's L2, the blend weights (seed CV) and the cut-offs (tweet tuning slice)."

    def add_arguments(self, parser):
        parser.add_argument("--data", default=None, help="twitter_airline_sentiment folder (only for the cut-offs).")
        parser.add_argument(
            "--cache-dir",
            default=str(Path(tempfile.gettempdir()) / "supportflow-eval-cache"),
            help="Where the embedding cache lives (default: <tmp>/supportflow-eval-cache).",
        )

    def handle(self, *args, **options):
        data = Path(options["data"]).expanduser() if options["data"] else None
        quiet = options["verbosity"] == 0
        figures = sentiment_tuning.run(
            data,
            cache_dir=Path(options["cache_dir"]),
            progress=(lambda message: None) if quiet else self.stderr.write,
        )
        self.stdout.write(json.dumps(figures, ensure_ascii=False))
        sys.stdout.flush()
