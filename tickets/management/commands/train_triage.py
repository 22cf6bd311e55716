"""Train a new version of the local triage model from the seed set and agents' corrections.

    python manage.py train_triage [--no-corrections] [--no-activate]

Prints the new version, its registry status (active, rejected, or a candidate with --no-activate), the
example counts, the held-out figures that decided it and the cross-validated figures stored with it.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from tickets.ai.triage import local as triage_local


class Command(BaseCommand):
    help = "Train a new local triage model version (seed set + agents' corrections); activate it if not worse."

    def add_arguments(self, parser):
        parser.add_argument("--no-corrections", action="store_true", help="Train on the seed set only.")
        parser.add_argument("--no-activate", action="store_true", help="Store it as a candidate only.")

    def handle(self, *args, **options):
        row = triage_local.train(include_corrections=not options["no_corrections"], activate=not options["no_activate"])
        self.stdout.write(
            self.style.SUCCESS(f"Triage model v{row.version} ({row.status}), {row.algorithm} on {row.embedding_model}")
        )
        if row.reason:
            self.stdout.write(row.reason)
        self.stdout.write(f"Trained on: {json.dumps(row.trained_on)}")
        if row.evaluation:
            self.stdout.write(f"Held-out evaluation: {json.dumps(row.evaluation)}")
        for name in triage_local.HEADS:
            figures = row.metrics.get(name)
            if figures:
                self.stdout.write(
                    f"  {name:<10} {len(row.labels.get(name, []))} labels, cross-validated on {figures['examples']} "
                    f"seed examples: accuracy {figures['cv_accuracy']:.3f}, macro-F1 {figures['cv_macro_f1']:.3f}"
                )
        scope = row.metrics.get("out_of_scope")
        if scope:
            self.stdout.write(
                f"  out of scope: similarity < {scope['min_similarity']:.3f}"
                f" or confidence < {scope['min_confidence']:.3f}"
                f" (cross-validated: in-scope kept {scope['cv_in_scope_kept']:.3f},"
                f" out-of-scope caught {scope['cv_out_of_scope_recall']:.3f})"
            )
