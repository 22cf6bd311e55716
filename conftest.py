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
