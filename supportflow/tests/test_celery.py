"""A real Celery worker on the real Redis broker runs our tasks; beat's schedule is set up idempotently."""

from __future__ import annotations

import datetime as dt

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from supportflow.celery import app
from tickets.models import Ticket
from tickets.tasks import sla_sweep
from tickets.tests.factories import DepartmentFactory, make_ticket


@pytest.fixture
def celery_worker():
    app.loader.import_default_modules()
    app.control.purge()  # tasks other tests left on the test broker are not this test's
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


@pytest.mark.django_db(transaction=True)
def test_worker_runs_the_sla_sweep_through_the_broker(celery_worker):
    ticket = make_ticket(department=DepartmentFactory(), priority="urgent")
    Ticket.objects.filter(pk=ticket.pk).update(first_response_due_at=timezone.now() - dt.timedelta(minutes=1))

    flagged = sla_sweep.delay().get(timeout=30)

    assert flagged == 1
    ticket.refresh_from_db()
    assert ticket.first_response_breached is True
    assert sla_sweep.delay().get(timeout=30) == 0


@pytest.mark.django_db
def test_periodic_tasks_are_created_once():
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")
    task = PeriodicTask.objects.get(name="SLA breach sweep")
    assert (task.task, task.interval.every, task.enabled) == ("tickets.tasks.sla_sweep", 60, True)
    assert PeriodicTask.objects.filter(task="tickets.tasks.sla_sweep").count() == 1
