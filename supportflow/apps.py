from django.apps import AppConfig


class SupportflowConfig(AppConfig):
    name = "supportflow"
    verbose_name = "SupportFlow"

    def ready(self) -> None:
        """Wire the subscribers outside the tickets app to its events: metrics, webhooks, escalation
        announcements. The integrations' tasks are registered with Celery here too."""
        from django.db.models.signals import post_delete, post_save

        from supportflow import metrics
        from supportflow.integrations import escalation, webhooks
        from supportflow.integrations import tasks as integration_tasks  # noqa: F401
        from supportflow.models import WebhookSubscription
        from tickets import events

        metrics.install()
        events.subscribe(metrics.record_event, on_loop=metrics.arecord_event)
        events.subscribe(webhooks.on_ticket_event, on_loop=webhooks.on_ticket_event_on_loop)
        for name, signal in (("saved", post_save), ("deleted", post_delete)):
            signal.connect(webhooks.subscriptions_changed, sender=WebhookSubscription, dispatch_uid=f"webhook-{name}")
        events.subscribe(escalation.announce_escalation, on_loop=escalation.announce_escalation_on_loop)
