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

        # Celery finds each app's tasks.py; the wings' task modules are registered here, and the AI's
        # door connects the worker warm-up.
        from tickets.ai import tasks as ai_tasks  # noqa: F401
        from tickets.email import tasks as email_tasks  # noqa: F401
