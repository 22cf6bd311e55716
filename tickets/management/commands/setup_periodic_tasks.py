"""Create or update the beat schedule (django-celery-beat's database scheduler). Idempotent."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

# name -> (task, every seconds, why)
PERIODIC_TASKS = {
    "SLA breach sweep": (
        "tickets.tasks.sla_sweep",
        60,
        "Flags tickets whose first-response or resolution target passed, once each, for queues and analytics.",
    ),
}


class Command(BaseCommand):
    help = "Create or update SupportFlow's periodic tasks."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        for name, (task, seconds, why) in PERIODIC_TASKS.items():
            schedule, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
            PeriodicTask.objects.update_or_create(
                name=name,
                defaults={"task": task, "interval": schedule, "description": why, "enabled": True},
            )
        self.stdout.write(f"periodic tasks: {', '.join(PERIODIC_TASKS)}")
