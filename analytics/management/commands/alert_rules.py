"""Write the Prometheus alert rules from the ALERT_* settings (docs/operations.md, "Alerts"):

python manage.py alert_rules                    # deploy/prometheus/alerts.yml
python manage.py alert_rules --output FILE      # elsewhere ("-": standard output)
python manage.py alert_rules --check            # exit 1 if the file differs from the settings
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analytics import alerts


class Command(BaseCommand):
    help = "Write (or --check) the Prometheus alert rules generated from the ALERT_* settings."

    def add_arguments(self, parser):
        parser.add_argument("--output", default=str(alerts.RULES_PATH), help="Where to write; '-' for stdout.")
        parser.add_argument("--check", action="store_true", help="Compare instead of writing; exit 1 on a difference.")

    def handle(self, *args, output: str, check: bool, **options):
        text = alerts.rules_yaml(alerts.Thresholds.from_settings())
        if output == "-":
            self.stdout.write(text, ending="")
            return
        path = Path(output)
        if check:
            current = path.read_text() if path.is_file() else ""
            if current != text:
                raise CommandError(f"{path} differs from the ALERT_* settings: run `python manage.py alert_rules`.")
            self.stdout.write(f"{path} matches the settings.")
            return
        try:
            path.write_text(text)
        except OSError as exc:
            raise CommandError(f"Cannot write {path}: {exc}") from exc
        self.stdout.write(f"Wrote {path}.")
