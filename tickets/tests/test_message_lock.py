"""The per-message lock: a pool process killed mid-task leaves its lock behind; the redelivered task
takes it over at once instead of returning "busy" until the lock expires (issue 15: the answer came
189 s after a crash loop, when the stalled sweep found it)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from django.core.cache import cache

from supportflow import readiness
from tickets.ai import runs

MESSAGE = 987654


@pytest.fixture(autouse=True)
def clean():
    cache.delete(runs._lock_key(MESSAGE))
    yield
    cache.delete(runs._lock_key(MESSAGE))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over():
    cache.set(runs._lock_key(MESSAGE), f"{socket.gethostname()}:{_dead_pid()}", timeout=150)

    assert runs.message_locked(MESSAGE) is False
    assert runs.message_lock(MESSAGE, timeout=150) is True
    assert cache.get(runs._lock_key(MESSAGE)) == runs._me()
    runs.message_unlock(MESSAGE)
    assert cache.get(runs._lock_key(MESSAGE)) is None


def test_a_lock_held_by_a_live_process_is_respected():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        cache.set(runs._lock_key(MESSAGE), f"{socket.gethostname()}:{sleeper.pid}", timeout=150)
        assert runs.message_locked(MESSAGE) is True
        assert runs.message_lock(MESSAGE, timeout=150) is False
        runs.message_unlock(MESSAGE)  # not ours: left alone
        assert cache.get(runs._lock_key(MESSAGE)) == f"{socket.gethostname()}:{sleeper.pid}"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_holder_on_another_host_is_gone_only_when_its_worker_stopped_beating(monkeypatch):
    client = readiness._client()
    client.delete("sf:workers:ai")
    try:
        holder = "other-host:4242"
        cache.set(runs._lock_key(MESSAGE), holder, timeout=150)
        assert runs.message_lock(MESSAGE, timeout=150) is False  # never announced: cannot tell, so alive

        client.zadd("sf:workers:ai", {holder: time.time()})
        assert runs.message_lock(MESSAGE, timeout=150) is False  # beating

        client.zadd("sf:workers:ai", {holder: time.time() - readiness.STALE_AFTER_S - 5})
        assert runs.message_lock(MESSAGE, timeout=150) is True  # stopped beating: taken over
    finally:
        client.delete("sf:workers:ai")
        client.close()
