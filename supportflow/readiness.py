"""Which worker processes are warm and taking tasks, per role, for ``/readyz`` and for whoever waits on a
cold start (``make run`` prints "ready" once an ``ai`` worker is).

A worker process announces itself once its warm-up is done (``announce``) and keeps the announcement
fresh from a daemon thread; a process that dies simply stops refreshing and drops out after
``STALE_AFTER_S``. The register is one Redis sorted set per role (member: host and pid, score: the
last heartbeat) on the locks role's Redis (``REDIS_LOCKS_URL``: the per-message AI lock asks it whether a
holder is gone), so any number of web processes read the same answer. Imports no app.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import redis
from django.conf import settings

from supportflow import redis_roles

logger = logging.getLogger(__name__)

HEARTBEAT_S = 10.0
STALE_AFTER_S = 35.0
_KEY = "sf:workers:{role}"


def _client() -> redis.Redis:
    return redis_roles.client(settings.REDIS_LOCKS_URL, socket_connect_timeout=2, socket_timeout=2)


def _member() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(role: str, *, client: redis.Redis | None = None) -> None:
    """Record that this process is warm and taking ``role``'s tasks now."""
    owned = client is None
    client = client or _client()
    try:
        key = _KEY.format(role=role)
        now = time.time()
        pipe = client.pipeline()
        pipe.zadd(key, {_member(): now})
        pipe.zremrangebyscore(key, "-inf", now - STALE_AFTER_S)  # the dead drop out for every reader
        pipe.expire(key, int(STALE_AFTER_S * 4))
        pipe.execute()
    finally:
        if owned:
            client.close()


def announce(role: str) -> threading.Thread:
    """Announce this process for ``role`` now and every ``HEARTBEAT_S`` from a daemon thread (a Redis
    outage is logged and retried; it never stops the worker)."""
    beat(role)

    def keep_fresh() -> None:
        client = _client()
        while True:
            time.sleep(HEARTBEAT_S)
            try:
                beat(role, client=client)
            except redis.RedisError:
                logger.warning("could not refresh the %s worker heartbeat", role, exc_info=True)

    thread = threading.Thread(target=keep_fresh, name=f"sf-ready-{role}", daemon=True)
    thread.start()
    return thread


def gone(role: str, member: str) -> bool:
    """Whether ``member`` (``host:pid``) announced ``role`` once and then stopped beating. A process
    that never announced (warm-up switched off) is not known to be gone."""
    client = _client()
    try:
        last = client.zscore(_KEY.format(role=role), member)
    finally:
        client.close()
    return last is not None and last < time.time() - STALE_AFTER_S


def ready(role: str) -> int:
    """How many processes announced ``role`` within ``STALE_AFTER_S``."""
    client = _client()
    try:
        return int(client.zcount(_KEY.format(role=role), time.time() - STALE_AFTER_S, "+inf"))
    finally:
        client.close()
