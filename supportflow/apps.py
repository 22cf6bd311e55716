from django.apps import AppConfig


class SupportflowConfig(AppConfig):
    name = "supportflow"
    verbose_name = "SupportFlow"

    def ready(self) -> None:
        from supportflow import metrics, tasks, webhooks
        from tickets import services

        metrics.install()
        services.register_on_commit_hook(webhooks.on_ticket_event)
        services.register_on_commit_hook(tasks.announce_escalation)
