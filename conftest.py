"""Suite-wide fixtures. The suite runs against the real PostgreSQL + pgvector and Redis that
`make test` starts (or DATABASE_URL / REDIS_URL); nothing here replaces them."""

from __future__ import annotations

import pytest

pytest_plugins = ["supportflow.tests.fake_openai"]  # the fake_openai fixture, for every app's tests


@pytest.fixture(scope="session", autouse=True)
def _close_pool_before_dropping_the_test_database(django_db_setup):
    """Idle pooled connections would keep the test database busy when pytest-django drops it."""
    yield
    from django.db import connections

    for connection in connections.all():
        connection.close()
        if getattr(connection, "pool", None) is not None:
            connection.close_pool()


@pytest.fixture
def department(db):
    from tickets.tests.factories import DepartmentFactory

    return DepartmentFactory()


@pytest.fixture
def other_department(db):
    from tickets.tests.factories import DepartmentFactory

    return DepartmentFactory()


@pytest.fixture
def agent(department):
    from tickets.tests.factories import make_agent

    return make_agent(department)


@pytest.fixture
def manager(db):
    from tickets.tests.factories import make_manager

    return make_manager()


@pytest.fixture
def ticket(department):
    from tickets.tests.factories import make_ticket

    return make_ticket(department=department)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters live in the (test-only) Redis cache; each test starts from zero."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _default_language():
    """Each test ends in the default language. A conversation page switches the request to the
    conversation's (``languages.activate_for_request``), and in a test the client runs in this thread, so a
    German conversation left German active for the next tests (state-machine refusals came out German when
    they ran after tests/test_reply_estimates.py). A server's next request activates its own."""
    from django.conf import settings as django_settings
    from django.utils import translation

    yield
    translation.activate(django_settings.LANGUAGE_CODE)


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (solo pool, in this process) on the test broker, started empty: the tasks a
    test enqueues are run for real. Database work it did is closed with it."""
    from celery.contrib.testing.worker import start_worker
    from django.db import connection

    from supportflow.celery import app

    app.loader.import_default_modules()
    app.control.purge()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker
    connection.close()


@pytest.fixture
def fresh_channel_layer():
    """For tests that run consumers or a live server: each test runs on its own event loop, and the
    channel layer singleton keeps loop-bound receive state, so it starts fresh; executor threads of a
    finished loop can strand pooled connections (seen only under these harnesses — 40 live websocket
    sessions against the real server hold its connection count flat), so the pool is closed after."""
    import gc

    from channels.layers import channel_layers
    from django.db import connection

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
    gc.collect()  # connections of the finished loop's executor threads, which nobody returns
    connection.close()
    connection.close_pool()
