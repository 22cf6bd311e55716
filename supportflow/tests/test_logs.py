"""Structured logs: a request id on every request (echoed to the client), the ticket once code knows
it, and both carried to the Celery task the request enqueued, through a real worker and broker."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync
from celery.contrib.testing.worker import start_worker

from supportflow import logs
from supportflow.celery import app
from tickets import selectors
from tickets.tests.factories import make_ticket

HEX_ID = re.compile(r"[0-9a-f]{32}")
task_logger = logging.getLogger("supportflow.tests.task")


@app.task(name="supportflow.tests.log_context_probe")
def log_context_probe() -> dict:
    task_logger.warning("probe ran")
    return logs.log_context()


@pytest.fixture(autouse=True)
def _clean_log_context():
    """Each test starts without what an earlier test's requests left on this thread."""
    with logs.bound():
        yield


@pytest.fixture
def json_lines():
    """What the JSON handler of settings.LOGGING writes, captured from the root logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


@pytest.fixture
def celery_worker():
    app.loader.import_default_modules()
    app.control.purge()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz")
    assert HEX_ID.fullmatch(response["X-Request-ID"])
    assert client.get("/healthz")["X-Request-ID"] != response["X-Request-ID"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("lb-7f3a.2_x", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("two words", False),
        ('x"\nforged line', False),
        ("", False),
    ],
)
def test_a_client_request_id_is_kept_only_when_sane(client, sent, kept):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=sent)
    if kept:
        assert response["X-Request-ID"] == sent
    else:
        assert HEX_ID.fullmatch(response["X-Request-ID"])


@pytest.mark.django_db
def test_log_lines_of_a_request_carry_its_request_id_and_ticket(client, department, json_lines):
    ticket = make_ticket(department=department)
    token = selectors.ticket_customer_token(ticket=ticket)

    response = client.get(f"/chat/c/{token}/messages/?after=x", HTTP_X_REQUEST_ID="req-123")

    assert response.status_code == 400
    lines = [line for line in json_lines() if line["logger"] == "django.request"]
    assert len(lines) == 1
    assert (lines[0]["level"], lines[0]["status_code"]) == ("WARNING", 400)
    assert "request" not in lines[0]  # no repr of the request object (query string, headers)
    assert token not in json.dumps(lines[0])
    assert lines[0]["message"] == "Bad Request: /chat/c/[token]/messages/"
    assert (lines[0]["request_id"], lines[0]["ticket"]) == ("req-123", ticket.reference)
    client.get("/healthz")
    assert "ticket" not in logs.log_context()  # the next request on this thread starts clean


@pytest.mark.django_db(transaction=True)
def test_under_asgi_too(department, json_lines):
    from django.test import AsyncClient

    ticket = make_ticket(department=department)
    token = selectors.ticket_customer_token(ticket=ticket)

    response = async_to_sync(AsyncClient().get)(f"/chat/c/{token}/messages/?after=x", headers={"X-Request-ID": "a-1"})

    assert (response.status_code, response["X-Request-ID"]) == (400, "a-1")
    line = next(line for line in json_lines() if line["logger"] == "django.request")
    assert (line["request_id"], line["ticket"]) == ("a-1", ticket.reference)


@pytest.mark.django_db(transaction=True)
def test_the_request_id_and_ticket_travel_to_the_worker(celery_worker, json_lines):
    with logs.bound(request_id="req-from-web", ticket="SF-009999"):
        result = log_context_probe.delay()
    context = result.get(timeout=30)

    assert context == {
        "request_id": "req-from-web",
        "ticket": "SF-009999",
        "task_id": result.id,
        "task_name": "supportflow.tests.log_context_probe",
    }
    line = next(line for line in json_lines() if line["message"] == "probe ran")
    assert (line["request_id"], line["task_id"], line["ticket"]) == ("req-from-web", result.id, "SF-009999")


@pytest.mark.django_db(transaction=True)
def test_a_task_without_a_request_gets_its_own_id(celery_worker):
    result = log_context_probe.delay()
    context = result.get(timeout=30)
    assert HEX_ID.fullmatch(context["request_id"])
    assert "ticket" not in context


def test_a_task_run_in_process_restores_the_callers_context():
    with logs.bound(request_id="outer", ticket="SF-000001"):
        context = log_context_probe.apply().get()
        after = logs.log_context()

    assert context["request_id"] == "outer"
    assert context["task_name"] == "supportflow.tests.log_context_probe"
    assert after == {"request_id": "outer", "ticket": "SF-000001"}
    assert logs.log_context() == {}


def test_each_websocket_gets_a_request_id():
    seen = []

    async def app_under_test(scope, receive, send):
        seen.append(logs.log_context())

    wrapped = async_to_sync(logs.RequestIdASGIMiddleware(app_under_test))
    wrapped({"type": "websocket", "headers": [(b"x-request-id", b"ws-1")]}, None, None)
    wrapped({"type": "websocket", "headers": [(b"x-request-id", b"bad id")]}, None, None)

    assert seen[0] == {"request_id": "ws-1"}
    assert HEX_ID.fullmatch(seen[1]["request_id"])
    assert logs.log_context() == {}


def test_json_lines_are_one_object_with_the_traceback():
    formatter = logs.JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("twice",), exc_info=sys.exc_info()
        )
    with logs.bound(request_id="r1"):
        line = formatter.format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"], entry["request_id"]) == (
        "ERROR",
        "x",
        "failed twice",
        "r1",
    )
    assert "ValueError: boom" in entry["exc"]
    assert "ticket" not in entry


def test_conversation_tokens_are_taken_out_of_logged_paths():
    record = logging.makeLogRecord(
        {
            "name": "uvicorn.access",
            "msg": '%s - "%s %s HTTP/%s" %d',
            "args": ("1.2.3.4:5", "GET", "/chat/c/abc:1t:sig/messages/?after=2", "1.1", 200),
        }
    )
    record2 = logging.makeLogRecord({"name": "x", "msg": "socket /ws/chat/abc:1t:sig/ closed"})

    assert json.loads(logs.JsonFormatter().format(record))["message"] == (
        '1.2.3.4:5 - "GET /chat/c/[token]/messages/?after=2 HTTP/1.1" 200'
    )
    assert logs.PlainFormatter("%(message)s").format(record2) == "socket /ws/chat/[token]/ closed"


def test_plain_lines_append_the_context():
    formatter = logs.PlainFormatter("%(levelname)s %(name)s: %(message)s")
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "hello"})
    assert formatter.format(record) == "INFO x: hello"
    with logs.bound(request_id="r1", ticket="SF-000002"):
        assert formatter.format(record) == "INFO x: hello [request_id=r1 ticket=SF-000002]"


def test_log_format_setting_is_validated():
    env = {**os.environ, "LOG_FORMAT": "xml", "SECRET_KEY": "x", "DJANGO_SETTINGS_MODULE": "supportflow.settings"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "LOG_FORMAT must be 'json' or 'plain'" in result.stderr
