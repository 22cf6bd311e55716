"""Measure knowledge-base retrieval on a public FAQ dataset: recall@1/5/10, MRR@10, nDCG@10 and query
latency for full-text, vector and hybrid search, plus (COVID set) answer-or-refuse on hard negatives.

    make eval EVAL="kb_eval --data ../shared/datasets/stackfaq"

The dataset is loaded into its own namespace (``eval-<dataset>``, never public, wiped first and
deleted at the end unless ``--keep``). Tables go to stdout, progress to stderr, and the last line of
stdout is one JSON object with every figure. The evaluation itself is ``knowledge.evaluation.run``;
see docs/evaluation.md.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from knowledge import evaluation as ev
from supportflow.evaluation import EvaluationError


class Command(BaseCommand):
    help = "Evaluate KB retrieval (fts / vector / hybrid) on a dataset folder; last stdout line is JSON."

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="Dataset folder (stackfaq or covid_faq_deepset layout).")
        parser.add_argument("--limit", type=int, default=None, help="Use only N queries (pairs) of each part.")
        parser.add_argument("--keep", action="store_true", help="Keep the evaluation namespace after the run.")
        parser.add_argument("--namespace", default=None, help="Namespace to load into (default eval-<dataset>).")
        parser.add_argument("--k", type=int, default=50, help="Chunks per search (ranked into articles).")
        parser.add_argument("--candidates", type=int, default=50, help="Candidates per method (kb_search default).")
        parser.add_argument(
            "--variants", action="store_true", help="Also score offline fusion variants (diagnosis, development part)."
        )
        parser.add_argument(
            "--cv", action="store_true", help="Also cross-validate the fusion weights (development part, 5 folds)."
        )

    def handle(self, *args, **options):
        try:
            summary = ev.run(
                options["data"],
                limit=options["limit"],
                keep=options["keep"],
                namespace=options["namespace"],
                k=options["k"],
                candidates=options["candidates"],
                variants=options["variants"],
                cv=options["cv"],
                log=self.stderr.write,
                verbose=bool(options["verbosity"]),
            )
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        for line in ev.report_lines(summary):
            self.stdout.write(line)
        self.stderr.flush()
        sys.stderr.flush()
        self.stdout.write(json.dumps(summary, ensure_ascii=False))
