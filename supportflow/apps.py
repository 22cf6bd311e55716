from django.apps import AppConfig


class SupportflowConfig(AppConfig):
    name = "supportflow"
    verbose_name = "SupportFlow"

    def ready(self) -> None:
        """Wire the subscribers outside the tickets app to its events: metrics, webhooks, escalation
        announcements. The integrations' tasks are registered with Celery here too."""
        from supportflow import metrics
        from supportflow.integrations import escalation, webhooks
        from supportflow.integrations import tasks as integration_tasks  # noqa: F401
        from tickets import events

        metrics.install()
        events.subscribe(metrics.record_event)
        events.subscribe(webhooks.on_ticket_event)
        events.subscribe(escalation.announce_escalation)
