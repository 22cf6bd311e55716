"""Create or update the beat schedule (django-celery-beat's database scheduler). Idempotent: run by
``make run`` and the compose ``migrate`` service after every migrate. Entries are keyed by name, so a
task that moved (say into the AI wing's door) is repointed on the next run."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

# name -> (task, schedule: seconds between runs, or a "minute hour" crontab in UTC, why)
PERIODIC_TASKS = {
    "SLA breach sweep": (
        "tickets.tasks.sla_sweep",
        60,
        "Flags tickets whose first-response or resolution target passed, once each, for queues and analytics.",
    ),
    "AI: recover stalled messages": (
        "tickets.ai.tasks.recover_stalled",
        60,
        "Re-enqueues customer messages without an AI decision after 3 minutes (a killed worker's task "
        "would otherwise wait for the broker's 1 h visibility timeout); after 3 tries, hands them to a human.",
    ),
    "Scan new knowledge-base passages": (
        "tickets.ai.tasks.scan_kb_passages",
        300,
        "Runs the prompt-injection guard over passages of new or re-indexed articles, so the first "
        "question that retrieves them does not wait for it (the AI scans any it still finds unscanned).",
    ),
    "AI: calibrate the confidence gate": (
        "tickets.ai.tasks.calibrate_gate",
        900,
        "Replays the published articles' titles and headings as questions when the knowledge base changed "
        "(a no-op otherwise) and reads customers' votes: the threshold of queues in automatic mode.",
    ),
    "Auto-close resolved tickets": (
        "tickets.tasks.auto_close_resolved",
        3600,
        "Closes tickets resolved for AUTO_CLOSE_RESOLVED_DAYS days (hourly, so none waits long).",
    ),
    "Retrain local triage": (
        "tickets.ai.tasks.retrain_triage",
        "30 2",
        "Nightly (02:30 UTC): a new versioned triage model from the seed set and agents' corrections.",
    ),
    "Re-index changed articles": (
        "knowledge.tasks.reindex_stale_articles",
        "0 3",
        "Nightly (03:00 UTC): re-embeds articles changed since their last indexing (a lost on-commit re-index).",
    ),
    "Analytics rollup (recent)": (
        "analytics.tasks.rollup_recent",
        600,
        "Rebuilds yesterday's and today's analytics rollups (the pages also refresh today every minute).",
    ),
    "Analytics rollup (last 30 days)": (
        "analytics.tasks.rollup_nightly",
        "15 1",
        "Nightly (01:15 UTC): rebuilds the last 30 days, so reopens and late ratings move earlier figures.",
    ),
    "Knowledge gaps": (
        "analytics.tasks.refresh_knowledge_gaps",
        "45 1",
        "Nightly (01:45 UTC): regroups the last 30 days' questions the AI could not answer well.",
    ),
    "Email: poll IMAP mailbox": (
        "tickets.email.tasks.poll_imap",
        60,
        "Fetches unseen mail from the IMAP_URL mailbox into tickets (does nothing while IMAP_URL is unset).",
    ),
    "Webhooks: re-send lost deliveries": (
        "supportflow.integrations.tasks.requeue_webhook_deliveries",
        300,
        "Enqueues webhook deliveries that are due but whose task was lost (worker or broker restart).",
    ),
    "Retention purge": (
        "tickets.tasks.retention_purge",
        "30 3",
        "Nightly (03:30 UTC): applies RETENTION_AI_DETAILS_DAYS and RETENTION_CLOSED_TICKETS_DAYS.",
    ),
}


class Command(BaseCommand):
    help = "Create or update SupportFlow's periodic tasks."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        for name, (task, when, why) in PERIODIC_TASKS.items():
            defaults = {"task": task, "description": why, "enabled": True, "interval": None, "crontab": None}
            if isinstance(when, int):
                defaults["interval"], _ = IntervalSchedule.objects.get_or_create(
                    every=when, period=IntervalSchedule.SECONDS
                )
            else:
                minute, hour = when.split()
                defaults["crontab"], _ = CrontabSchedule.objects.get_or_create(
                    minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
                )
            PeriodicTask.objects.update_or_create(name=name, defaults=defaults)
        self.stdout.write(f"periodic tasks: {', '.join(PERIODIC_TASKS)}")
