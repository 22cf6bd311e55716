"""Fixed-window rate limits in Redis (the cache role, ``REDIS_CACHE_URL``), shared by every web process.

``hit()`` / ``hit_all()`` count one event per limit and say whether it is within it. They fail open: if
Redis is unreachable, the request goes through (the message is still validated and stored), because
refusing every customer while Redis restarts would lose more than it protects.

``ahit_all()`` (the chat socket's send, on the event loop) counts *ahead*: while this loop's view of every
window is under ``AHEAD_SHARE`` of its limit, the hit is allowed at once and counted in Redis in the
background, so the message does not wait a round trip for a verdict that was never in doubt. The view is
the highest count Redis returned for the window plus this loop's hits still on their way; near a limit
the hit waits for those, then for its own count, and is judged exactly as ``hit_all`` judges. Within one
process the limits are therefore exact. Across processes a window's count may pass its limit by the hits
the other processes admitted ahead before their view caught up: each admits at most ``AHEAD_SHARE`` of
the limit unseen, and each reply brings its view up to date (``test_ratelimit_ahead.py``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
import weakref
from dataclasses import dataclass, field

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
        keys = [_window_key(scope, key, limit, now) for scope, key, limit in checks]
        counts = _counting(_redis().pipeline(transaction=False), keys, checks).execute()[1::2]
    except Exception:
        logger.warning("rate limit store unavailable; allowing", exc_info=True)
        return Verdict(True), -1
    return _verdict(counts, checks, now)


async def ahit_all(checks: list[tuple[str, str, Limit]]) -> tuple[Verdict, int]:
    """``hit_all`` from the event loop (``supportflow.aio``'s client, same keys), counted ahead: see the
    module's docstring."""
    now = time.time()
    keys = [_window_key(scope, key, limit, now) for scope, key, limit in checks]
    ledger = _ledger()
    windows = ledger.windows(keys, [limit for _, _, limit in checks], now)
    if all(window.has_room(limit) for window, (_, _, limit) in zip(windows, checks, strict=True)):
        ledger.count_ahead(_count(keys, checks, windows), windows)
        return Verdict(True), -1
    for window in windows:
        window.waiting += 1
    try:
        ahead = {task for window in windows for task in window.ahead}
        if ahead:  # this loop's earlier hits are in Redis before this one is judged
            await asyncio.wait(ahead)
        counts = await _count(keys, checks, windows)
    finally:
        for window in windows:
            window.waiting -= 1
    if counts is None:
        return Verdict(True), -1
    return _verdict(counts, checks, now)


async def _count(keys: list[str], checks: list[tuple[str, str, Limit]], windows: list[_Window]) -> list[int] | None:
    """One hit on each window, in one pipelined round trip; the counts, or None when Redis is away."""
    from supportflow import aio

    try:
        client = aio.redis(settings.REDIS_CACHE_URL, socket_timeout=2, socket_connect_timeout=2)
        counts = (await _counting(client.pipeline(transaction=False), keys, checks).execute())[1::2]
    except Exception:
        logger.warning("rate limit store unavailable; allowing", exc_info=True)
        return None
    for window, count in zip(windows, counts, strict=True):
        window.seen = max(window.seen, count)
    return counts


AHEAD_SHARE = 0.5  # of a limit, that a loop counts ahead (allows before Redis has counted)


@dataclass(eq=False)
class _Window:
    """One fixed window as this event loop sees it."""

    ends: float
    seen: int = 0  # the highest count Redis returned
    ahead: set[asyncio.Task] = field(default_factory=set)  # this loop's hits Redis has not answered yet
    waiting: int = 0  # this loop's hits waiting for their exact verdict

    def has_room(self, limit: Limit) -> bool:
        return self.seen + len(self.ahead) + self.waiting + 1 <= limit.count * AHEAD_SHARE


class _Ledger:
    """The windows one event loop counts in, dropped a second after they end."""

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}
        self._sweep_at = 0.0
        self._tasks: set[asyncio.Task] = set()  # asyncio keeps tasks only weakly

    def windows(self, keys: list[str], limits: list[Limit], now: float) -> list[_Window]:
        if now >= self._sweep_at:
            self._windows = {key: w for key, w in self._windows.items() if w.ends > now or w.ahead or w.waiting}
            self._sweep_at = now + 1.0
        return [
            self._windows.setdefault(key, _Window((now // limit.seconds + 1) * limit.seconds))
            for key, limit in zip(keys, limits, strict=True)
        ]

    def count_ahead(self, counting, windows: list[_Window]) -> None:
        task = asyncio.ensure_future(counting)
        self._tasks.add(task)
        for window in windows:
            window.ahead.add(task)

        def done(task: asyncio.Task) -> None:
            self._tasks.discard(task)
            for window in windows:
                window.ahead.discard(task)

        task.add_done_callback(done)


_ledgers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Ledger] = weakref.WeakKeyDictionary()


def _ledger() -> _Ledger:
    loop = asyncio.get_running_loop()
    ledger = _ledgers.get(loop)
    if ledger is None:
        ledger = _ledgers[loop] = _Ledger()
    return ledger


def _window_key(scope: str, key: str, limit: Limit, now: float) -> str:
    return f"rl:{scope}:{key}:{int(now // limit.seconds)}"


def _counting(pipe, keys: list[str], checks: list[tuple[str, str, Limit]]):
    for cache_key, (_, _, limit) in zip(keys, checks, strict=True):
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
