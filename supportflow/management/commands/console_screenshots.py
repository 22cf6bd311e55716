"""``manage.py console_screenshots``: the screenshots of docs/console.md; see ``supportflow.demo.screenshots``."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from supportflow.demo.screenshots import SHOT_NAMES, console_screenshots


class Command(BaseCommand):
    help = "Screenshot the console, chat, help center and analytics in light and dark (needs the demo data)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--out", type=Path, default=Path(settings.BASE_DIR) / "docs" / "img", help="Where the PNGs go."
        )
        parser.add_argument("--only", nargs="*", default=None, choices=SHOT_NAMES, help="Only these shots.")

    def handle(self, *args, **options) -> None:
        written = console_screenshots(out_dir=options["out"], only=set(options["only"] or ()), write=self.stdout.write)
        self.stdout.write(self.style.SUCCESS(f"{len(written)} screenshots written."))
