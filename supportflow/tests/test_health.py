from __future__ import annotations

import pytest
from django.urls import reverse


def test_healthz_is_alive(client):
    response = client.get(reverse("healthz"))
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.django_db
def test_readyz_is_ready_with_database_and_redis(client):
    response = client.get(reverse("readyz"))
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("status", "checks")} == {
        "status": "ok",
        "checks": {"database": "ok", "redis_broker": "ok", "redis_cache": "ok", "redis_channels": "ok"},
    }
    assert isinstance(body["info"]["ai_workers_ready"], int)  # information: no worker runs here


@pytest.mark.django_db
def test_readyz_reports_a_stopped_redis_as_503_and_names_its_role(client, settings, throwaway_redis):
    settings.REDIS_CACHE_URL = throwaway_redis.url
    assert client.get(reverse("readyz")).status_code == 200

    throwaway_redis.stop()
    response = client.get(reverse("readyz"))

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["redis_cache"]
    assert (body["checks"]["database"], body["checks"]["redis_broker"], body["checks"]["redis_channels"]) == ("ok",) * 3
    assert body["checks"]["redis_cache"].startswith("unavailable")


@pytest.mark.django_db
def test_readyz_names_a_failing_database_check(client, monkeypatch):
    """The view's error path; a real PostgreSQL restart is exercised by the fault battery."""
    from django.db import OperationalError

    from supportflow import health

    def broken() -> str:
        raise OperationalError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", broken)
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]


def test_metrics_are_served_to_loopback(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content


def test_metrics_refuse_other_addresses_without_a_token(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert b"METRICS_TOKEN" in response.content


def test_metrics_token_is_required_when_set(client, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", REMOTE_ADDR="203.0.113.9").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token", REMOTE_ADDR="203.0.113.9")
    assert ok.status_code == 200


def test_health_endpoints_refuse_post(client):
    assert client.post(reverse("healthz")).status_code == 405


def test_a_service_is_not_stopped_while_another_process_uses_it(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    from supportflow import devservices

    monkeypatch.setattr("supportflow.devservices.services.DATA_DIR", tmp_path)  # where _Users reads it
    users = devservices._Users("redis")
    users.add()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (users.folder / str(other.pid)).touch()
        (users.folder / "999999999").touch()  # a process that has gone away
        assert users.others() == [other.pid]
        assert not (users.folder / "999999999").exists()
    finally:
        other.kill()
        other.wait()
    assert users.others() == []
    users.remove()
    assert not (users.folder / str(os.getpid())).exists()
