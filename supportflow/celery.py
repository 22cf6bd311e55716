"""The Celery app. Configuration lives in settings (``CELERY_*``); tasks live in each app's tasks.py."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportflow.settings")

app = Celery("supportflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
