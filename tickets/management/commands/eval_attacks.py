"""Prompt-injection attacks end to end: jailbreaks, system-prompt extraction and BIPIA email injections
through chat and email, with the local provider and with a worst-case obedient model.

    make eval EVAL="seed_demo"   # once: the demo departments and triage model
    make eval EVAL="eval_attacks --providers local --channels chat --limit-bipia 5 --limit-jailbreak 5"

Full options: [--datasets ../shared/datasets] [--part report|dev] [--providers local,openai]
[--channels chat,email] [--limit-bipia N] [--limit-jailbreak N] [--limit-sysprompt N] [--limit-benign N].
What counts as a success, the obedient model and the splits are described in
``tickets.ai.evaluation.attacks``, which does the work. The last stdout line is one JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from supportflow.evaluation import EvaluationError
from tickets.ai.evaluation import attacks


class Command(BaseCommand):
    help = (
        "Jailbreak, system-prompt-extraction and BIPIA attacks through chat and email, local provider and a "
        "worst-case obedient model; attack success and false-positive rates. Last stdout line is JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--datasets", default=str(settings.DATASETS_DIR), help="The shared datasets folder.")
        parser.add_argument("--part", choices=("report", "dev"), default="report")
        parser.add_argument("--seed", type=int, default=attacks.SEED)
        parser.add_argument("--providers", default=",".join(attacks.PROVIDERS))
        parser.add_argument("--channels", default=",".join(attacks.CHANNELS))
        parser.add_argument("--limit-bipia", type=int, default=60, help="Attacked BIPIA emails (seeded sample).")
        parser.add_argument("--limit-jailbreak", type=int, default=40)
        parser.add_argument("--limit-sysprompt", type=int, default=14, help="The report part has 14.")
        parser.add_argument("--limit-benign", type=int, default=40, help="Benign messages (also the carriers).")
        parser.add_argument(
            "--carriers",
            choices=("datasets", "kb"),
            default="datasets",
            help="Benign messages and carriers: bitext/stackfaq texts, or in-scope questions from the --kb titles.",
        )
        parser.add_argument(
            "--namespace", default=attacks.NAMESPACE, help="KB namespace of this run (wiped before and after)."
        )
        parser.add_argument(
            "--kb", default=str(attacks.DEMO_KB), help="Folder of markdown articles (default: demo KB)."
        )

    def handle(self, *args, **options):
        try:
            result = attacks.run(
                Path(options["datasets"]),
                part=options["part"],
                seed=options["seed"],
                providers=[p for p in options["providers"].split(",") if p],
                channels=[c for c in options["channels"].split(",") if c],
                limits={k: options[f"limit_{k}"] for k in attacks.SETS},
                limit_benign=options["limit_benign"],
                carriers=options["carriers"],
                namespace=options["namespace"],
                kb=Path(options["kb"]),
                log=self.stderr.write,
            )
        except EvaluationError as exc:
            raise CommandError(str(exc)) from exc
        for line in attacks.summary_lines(result):
            self.stdout.write(line)
        self.stdout.write(json.dumps(result, ensure_ascii=False))
