"""Fixed-window rate limits in Redis (the cache role, ``REDIS_CACHE_URL``), shared by every web process.

``hit()`` / ``hit_all()`` count one event per limit and say whether it is within it. They fail open: if
Redis is unreachable, the request goes through (the message is still validated and stored), because
refusing every customer while Redis restarts would lose more than it protects.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


def parse(spec: str) -> Limit:
    """``"20/60"`` → 20 events per 60 seconds (the format of the ``CHAT_RATE_*`` settings)."""
    count, seconds = spec.split("/")
    return Limit(int(count), int(seconds))


def hit(scope: str, key: str, limit: Limit) -> Verdict:
    return hit_all([(scope, key, limit)])[0]


def hit_all(checks: list[tuple[str, str, Limit]]) -> tuple[Verdict, int]:
    """Count one event for several limits in one Redis round trip.

    Returns the first refusal (and which check it was) or ``(Verdict(True), -1)``. Fails open like
    ``hit``.
    """
    now = time.time()
    try:
        counts = _counting(_redis().pipeline(transaction=False), checks, now).execute()[1::2]
    except Exception:
        logger.warning("rate limit store unavailable; allowing", exc_info=True)
        return Verdict(True), -1
    return _verdict(counts, checks, now)


async def ahit_all(checks: list[tuple[str, str, Limit]]) -> tuple[Verdict, int]:
    """``hit_all`` from the event loop (``supportflow.aio``'s client, same keys, same round trip)."""
    from supportflow import aio

    now = time.time()
    try:
        client = aio.redis(settings.REDIS_CACHE_URL, socket_timeout=2, socket_connect_timeout=2)
        counts = (await _counting(client.pipeline(transaction=False), checks, now).execute())[1::2]
    except Exception:
        logger.warning("rate limit store unavailable; allowing", exc_info=True)
        return Verdict(True), -1
    return _verdict(counts, checks, now)


def _counting(pipe, checks: list[tuple[str, str, Limit]], now: float):
    for scope, key, limit in checks:
        cache_key = f"rl:{scope}:{key}:{int(now // limit.seconds)}"
        pipe.set(cache_key, 0, ex=limit.seconds + 1, nx=True)
        pipe.incr(cache_key)
    return pipe


def _verdict(counts: list[int], checks: list[tuple[str, str, Limit]], now: float) -> tuple[Verdict, int]:
    for index, (count, (_, _, limit)) in enumerate(zip(counts, checks, strict=True)):
        if count > limit.count:
            return Verdict(False, max(1, limit.seconds - int(now) % limit.seconds)), index
    return Verdict(True), -1


_client = None
_client_lock = threading.Lock()


def _redis():
    """One client (and connection pool) per process for the counters, on the cache role's Redis. Made
    under a lock: sockets arriving together used to build one each (fault_bench saw redis-py's "I/O
    operation on closed file" logged then; one client per process is the intent either way)."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                from supportflow import redis_roles

                _client = redis_roles.client(settings.REDIS_CACHE_URL, socket_timeout=2, socket_connect_timeout=2)
    return _client


def client_ip(*, remote_addr: str, forwarded_for: str = "") -> str:
    """The client's address. ``X-Forwarded-For`` is trusted only for ``TRUSTED_PROXY_COUNT`` hops."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops and forwarded_for:
        chain = [part.strip() for part in forwarded_for.split(",") if part.strip()]
        if len(chain) >= hops:
            candidate = chain[-hops]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                pass
    return remote_addr or "unknown"


def request_ip(request) -> str:
    return client_ip(
        remote_addr=request.META.get("REMOTE_ADDR", ""), forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", "")
    )


def scope_ip(scope: dict) -> str:
    headers = dict(scope.get("headers") or [])
    client = scope.get("client") or ("", 0)
    return client_ip(remote_addr=client[0] or "", forwarded_for=headers.get(b"x-forwarded-for", b"").decode("latin-1"))
