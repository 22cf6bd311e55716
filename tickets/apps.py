from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs) -> None:
    from tickets.roles import roles_sync

    roles_sync()


class TicketsConfig(AppConfig):
    name = "tickets"

    def ready(self) -> None:
        # Permissions are created by post_migrate too; run after them (and after every migrate).
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="tickets.sync_roles")

        from tickets import realtime, services, tasks

        services.register_on_commit_hook(realtime.on_ticket_change)
        services.register_on_commit_hook(tasks.enqueue_on_customer_message)
        services.register_on_commit_hook(tasks.notify_on_escalation)
        services.register_on_commit_hook(tasks.send_email_on_reply)
