"""Scripted multi-turn conversations through the real pipeline (a Celery worker), judged turn by turn.

    make eval EVAL="eval_conversations [--provider local|openai|all] [--part dev|held|all] [--only ID]"

``--data DIR`` (default: the set in ``tickets/ai/evaluation/data``, written against the demo knowledge
base) holds ``*.jsonl`` conversations, each turn with the outcome a good human agent would give. The
departments and triage model come from ``seed_demo`` (``make eval EVAL=seed_demo`` once); missing demo
articles are loaded. Reports conversations fully right and turns right, per part (development / held
back), per category and provider, and every failing turn. The last stdout line is one JSON object. The
evaluation itself is ``tickets.ai.evaluation.conversations``; see docs/eval-conversations.md.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from supportflow.evaluation import EvaluationError
from tickets.ai.evaluation import conversations


class Command(BaseCommand):
    help = "Replay scripted conversations through the AI pipeline's Celery task; last stdout line is JSON."

    def add_arguments(self, parser):
        parser.add_argument("--data", default=None, help="Folder (or file) of *.jsonl conversations.")
        parser.add_argument("--provider", choices=[*conversations.PROVIDERS, "all"], default="local")
        parser.add_argument("--part", choices=[*conversations.PARTS, "all"], default="all",
                            help="dev: the part we iterate on; held: the part held back until the end.")  # fmt: skip
        parser.add_argument("--limit", type=int, default=None, help="Only the first N conversations.")
        parser.add_argument("--kb", default=conversations.DEMO_KB, help="Articles loaded when missing (demo KB).")
        parser.add_argument("--only", action="append", default=[], help="Only this conversation id (repeatable).")

    def handle(self, *args, **options):
        providers = conversations.PROVIDERS if options["provider"] == "all" else (options["provider"],)
        parts = conversations.PARTS if options["part"] == "all" else (options["part"],)
        try:
            result = conversations.run(
                options["data"],
                providers=providers,
                parts=parts,
                limit=options["limit"],
                only=options["only"],
                kb=options["kb"],
                log=self.stderr.write,
            )
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        for line in conversations.summary_lines(result):
            self.stdout.write(line)
        self.stdout.write(json.dumps(result, ensure_ascii=False))
