"""Schemathesis against our own OpenAPI schema, through the real WSGI app: whatever it sends (valid and
invalid input, odd characters, huge numbers), the API never answers 5xx and always answers JSON.

In ``make test`` the examples are derandomized: every run, here and in CI, draws the same cases, so a
green run here is a green run there. To hunt for new failures, draw fresh random cases and more of them:
``SF_FUZZ_RANDOM=1 SF_FUZZ_EXAMPLES=300 make test PYTEST_ARGS=supportflow/tests/test_api_fuzz.py``.
Every failure found that way becomes a fixed case in ``test_request_hygiene.py``."""

from __future__ import annotations

import logging
import os

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings

from supportflow.api.keys import api_key_create
from tickets.tests.factories import DepartmentFactory, make_manager, make_ticket

pytestmark = pytest.mark.django_db

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """The WSGI app closes the DB connection after each request (``request_finished``); the test's
    transaction lives on it, so — as Django's own test client does — keep it open during the test."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def quiet_4xx_warnings():
    """The run provokes thousands of 404/405 warnings on purpose; in CI they would bury a failure's own
    message. 5xx are still logged (ERROR)."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def key(db) -> str:
    department = DepartmentFactory(slug="billing")
    manager = make_manager(department, username="fuzz-manager")
    make_ticket(department=department, subject="Fuzz me")
    _, secret = api_key_create(
        name="fuzz", user=manager, scopes=["tickets:read", "tickets:write", "kb:read", "analytics:read"]
    )
    return secret


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("SF_FUZZ_EXAMPLES", "25")),
    derandomize=not os.environ.get("SF_FUZZ_RANDOM"),
    database=None,  # no replay of a local failure store either: the run is the same everywhere
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_api_fail(case, key):
    response = case.call(headers={"Authorization": f"Bearer {key}"})
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text[:300])
    if response.content:  # HEAD and bodiless 405s carry no body to type
        content_type = response.headers.get("content-type") or response.headers.get("Content-Type") or ""
        if isinstance(content_type, list):  # schemathesis keeps every value of a header
            content_type = content_type[0] if content_type else ""
        assert content_type.startswith("application/json"), (response.status_code, case.formatted_path, content_type)
