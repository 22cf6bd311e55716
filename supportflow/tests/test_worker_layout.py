"""The worker layout issue 15 asked for: the ``ai`` queue on workers of its own that are warm before they
take a task and say so (``/readyz``), housekeeping elsewhere; in compose, every process that reads or
writes stored mail and uploads shares the volumes they live on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from django.urls import reverse

from supportflow import readiness

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text()
    return dict(
        line.strip().rstrip("\\").strip().split("=", 1)
        for line in text.splitlines()
        if "=" in line and line.strip().split("=", 1)[0].isupper() and " " not in line.strip().split("=", 1)[0]
    )


def _queues(service: dict) -> set[str]:
    command = service["command"]
    return set(command[command.index("--queues") + 1].split(",")) if "--queues" in command else {"*"}


def test_compose_runs_the_ai_queue_on_its_own_workers_and_housekeeping_elsewhere():
    services = _compose()["services"]
    consumers = {
        name: _queues(s)
        for name, s in services.items()
        if "celery" in s.get("command", []) and "worker" in s["command"]
    }

    assert consumers["worker-ai"] == {"ai"}
    assert all("ai" not in queues and "*" not in queues for name, queues in consumers.items() if name != "worker-ai")
    assert set().union(*consumers.values()) >= {"ai", "housekeeping", "celery"}  # every queue has a consumer
    assert "--workers" in services["web"]["command"]  # the web uses more than one core


def test_stored_mail_and_uploads_are_on_volumes_every_app_process_shares():
    """Raw mail and attachments saved by a worker must be readable by web, and survive a recreated container."""
    compose = _compose()
    env = _dockerfile_env()
    app_services = [name for name, s in compose["services"].items() if s.get("image") == "supportflow:local"]
    readers_writers = [n for n in app_services if n in ("web", "worker", "worker-ai")]
    assert len(readers_writers) == 3
    for path_setting in ("EMAIL_PRIVATE_ROOT", "MEDIA_ROOT"):
        path = env[path_setting]
        mounts = {}
        for name in readers_writers:
            volumes = [v for v in compose["services"][name].get("volumes", []) if v.split(":")[1] == path]
            assert volumes, f"{name} does not mount {path_setting} ({path})"
            mounts[name] = volumes[0].split(":")[0]
        assert len(set(mounts.values())) == 1, mounts
        assert next(iter(mounts.values())) in compose["volumes"]  # a named volume, not the container's layer


@pytest.fixture
def register():
    client = readiness._client()
    client.delete("sf:workers:ai")
    yield client
    client.delete("sf:workers:ai")
    client.close()


def test_a_worker_that_stops_refreshing_drops_out_of_the_register(register, monkeypatch):
    readiness.beat("ai")
    assert readiness.ready("ai") == 1

    later = time.time() + readiness.STALE_AFTER_S + 1
    monkeypatch.setattr(readiness.time, "time", lambda: later)

    assert readiness.ready("ai") == 0


@pytest.mark.django_db
def test_readyz_shows_how_many_ai_workers_are_ready_without_depending_on_them(client, register):
    body = client.get(reverse("readyz")).json()
    assert (body["status"], body["info"]["ai_workers_ready"]) == ("ok", 0)  # the web is ready without them

    readiness.beat("ai")

    assert client.get(reverse("readyz")).json()["info"]["ai_workers_ready"] == 1


def _start_worker(queues: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "supportflow", "worker", "--pool", "prefork", "-c", "1",
         "--loglevel", "INFO", "--queues", queues, "-n", f"layout-{queues}-{time.monotonic_ns()}@%h"],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "supportflow.test_settings", "WORKER_WARM_UP": "1"},
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=log.open("ab"),
    )  # fmt: skip


def _wait(predicate, what: str, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


def test_only_a_warm_worker_of_the_ai_queue_counts_as_ready(register, tmp_path):
    """Real worker processes: the housekeeping worker warms up but does not count; the ai worker
    counts once its process has loaded the models, and stops counting when it is gone."""
    ai_log, housekeeping_log = tmp_path / "ai.log", tmp_path / "housekeeping.log"
    housekeeping = _start_worker("housekeeping,celery", housekeeping_log)
    ai = None
    try:
        _wait(
            lambda: "takes ai tasks: False" in housekeeping_log.read_text(),
            "the housekeeping warm-up",
            housekeeping_log,
        )
        assert readiness.ready("ai") == 0

        ai = _start_worker("ai", ai_log)
        _wait(lambda: readiness.ready("ai") == 1, "the ai worker's announcement", ai_log)
        assert "takes ai tasks: True" in ai_log.read_text()
    finally:
        for proc in (p for p in (housekeeping, ai) if p is not None):
            os.killpg(proc.pid, 9)
            proc.wait(timeout=30)
