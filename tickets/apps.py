from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_delete, post_migrate, post_save


def _sync_roles(sender, **kwargs) -> None:
    from tickets.roles import roles_sync

    roles_sync()


def _ai_config_changed(sender, **kwargs) -> None:
    """An escalation rule or a calibration was saved or deleted: every process re-reads its copy of the
    AI's configuration (``tickets.ai.versions``) — at once, and again once the change is committed (a
    process re-reading in between would keep the old rows under the new stamp)."""
    from tickets import ai_config

    ai_config.invalidate()
    transaction.on_commit(ai_config.invalidate)


class TicketsConfig(AppConfig):
    name = "tickets"

    def ready(self) -> None:
        # Permissions are created by post_migrate too; run after them (and after every migrate).
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="tickets.sync_roles")
        for model in ("EscalationRule", "KnowledgeCalibration"):
            for signal in (post_save, post_delete):
                uid = f"tickets.ai_config.{model}"
                signal.connect(_ai_config_changed, sender=self.get_model(model), dispatch_uid=uid)

        # Celery finds each app's tasks.py; the wings' task modules are registered here, and the AI's
        # door connects the worker warm-up.
        from tickets.ai import tasks as ai_tasks  # noqa: F401
        from tickets.email import tasks as email_tasks  # noqa: F401
