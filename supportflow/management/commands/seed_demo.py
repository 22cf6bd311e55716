"""``manage.py seed_demo``: the demo data for a fresh install, once; see ``supportflow.demo.seed``."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from supportflow.demo.seed import demo_seed


class Command(BaseCommand):
    help = "Load the demo queues, staff, conversations and knowledge base once; print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-kb", action="store_true", help="Skip the demo knowledge base (embedding takes ~15 s)."
        )
        parser.add_argument(
            "--tickets",
            type=int,
            default=0,
            help="Then add this many simulated tickets for analytics (supportflow.demo); each run adds more.",
        )
        parser.add_argument("--days", type=int, default=365, help="With --tickets: spread over this many days.")
        parser.add_argument("--seed", type=int, default=1, help="With --tickets: random seed (same seed, same data).")

    def handle(self, *args, **options) -> None:
        demo_seed(
            kb=not options["no_kb"],
            tickets=options["tickets"],
            days=options["days"],
            seed=options["seed"],
            stdout=self.stdout,
            stderr=self.stderr,
            success=self.style.SUCCESS,
        )
