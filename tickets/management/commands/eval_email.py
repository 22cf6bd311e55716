"""Parse every ``.eml`` under ``--data DIR`` (recursively) with the inbound parser and compare it with the
folder's ``manifest.csv`` reference (Python's stdlib parse). Prints each disagreement, then one final
JSON line of figures. No database is touched. The evaluation itself is ``tickets.ai.evaluation.email``.

    make eval EVAL="eval_email --data ../shared/datasets/email_cpython_testdata"
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from supportflow.evaluation import EvaluationError
from tickets.ai.evaluation import email


class Command(BaseCommand):
    requires_system_checks: list = []  # parsing only: no database, no URLs
    help = "Parse an email dataset folder (.eml + manifest.csv); print agreement with the manifest as JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--data", required=True, help="Folder of .eml files with a manifest.csv.")
        parser.add_argument("--quiet", action="store_true", help="Only the final JSON line.")

    def handle(self, *args, **options) -> None:
        try:
            figures, disagreements = email.run(Path(options["data"]))
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        if not options["quiet"]:
            for line in disagreements:
                self.stdout.write(line)
        self.stdout.write(json.dumps(figures, ensure_ascii=False))
