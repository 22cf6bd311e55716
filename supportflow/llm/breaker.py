"""A circuit breaker for the LLM endpoint, shared by every web and worker process through Redis.

Closed: calls go through; availability failures (timeouts, connection errors, 5xx, rate limits that
outlived the retries, quota) are counted in a sliding window of ``LLM_BREAKER_WINDOW_S``. At
``LLM_BREAKER_FAILURES`` the breaker opens for ``LLM_BREAKER_COOLDOWN_S``: callers fail at once and
fall back to the local provider, so a dead endpoint costs nothing and no request piles up behind it.
After the cooldown one caller (claimed with SET NX + expiry, so a crashed prober only blocks until
the claim expires) sends a probe: success closes the breaker, failure opens it for another cooldown.

Every transition is one Lua script, so concurrent processes never see a half-written state, and the
clock is Redis's own (``TIME``) so hosts with drifting clocks agree. Redis being down must never take
the LLM call down with it: on any Redis error the breaker reads as closed and says so in the log.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Literal

import redis
from django.conf import settings

from supportflow import redis_roles

logger = logging.getLogger(__name__)

Gate = Literal["closed", "probe", "open"]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: state, probe. ARGV: probe claim ttl (ms). -> "closed" | "probe" | "open"
_BEFORE_CALL = (
    _NOW
    + """
local open_until = redis.call('HGET', KEYS[1], 'open_until')
if not open_until then return 'closed' end
if now < tonumber(open_until) then return 'open' end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 'probe' end
return 'open'
"""
)

# KEYS: state, fails, probe. ARGV: is_probe, threshold, window_s, cooldown_s, state ttl (s), member.
# -> {transition, failures}; transition is "opened", "reopened" or "" (no change).
_RECORD_FAILURE = (
    _NOW
    + """
local function open()
    redis.call('HSET', KEYS[1], 'open_until', tostring(now + tonumber(ARGV[4])), 'opened_at', tostring(now))
    redis.call('EXPIRE', KEYS[1], ARGV[5])
    redis.call('DEL', KEYS[2], KEYS[3])
end
if ARGV[1] == '1' then
    open()
    return {'reopened', 0}
end
if redis.call('HEXISTS', KEYS[1], 'open_until') == 1 then return {'', 0} end
redis.call('ZADD', KEYS[2], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[3])) + 1)
local failures = redis.call('ZCARD', KEYS[2])
if failures >= tonumber(ARGV[2]) then
    open()
    return {'opened', failures}
end
return {'', failures}
"""
)

# KEYS: state, fails, probe. ARGV: is_probe. -> "closed" after a probe, "" otherwise.
_RECORD_SUCCESS = """
if ARGV[1] == '1' then
    local was_open = redis.call('EXISTS', KEYS[1])
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
    if was_open == 1 then return 'closed' end
    return ''
end
if redis.call('HEXISTS', KEYS[1], 'open_until') == 0 then redis.call('DEL', KEYS[2]) end
return ''
"""

# KEYS: state, fails. ARGV: window_s. -> {open_until, opened_at, failures, now} (strings; "" when unset)
_STATUS = (
    _NOW
    + """
local state = redis.call('HMGET', KEYS[1], 'open_until', 'opened_at')
local failures = redis.call('ZCOUNT', KEYS[2], now - tonumber(ARGV[1]), '+inf')
return {state[1] or '', state[2] or '', failures, tostring(now)}
"""
)

_connections: dict[str, redis.Redis] = {}
_connections_lock = threading.Lock()
_last_redis_warning = 0.0


def _redis() -> redis.Redis:
    url = settings.LLM_BREAKER_REDIS_URL or settings.REDIS_CACHE_URL
    with _connections_lock:
        client = _connections.get(url)
        if client is None:
            # Short timeouts: a stalled Redis may delay an LLM call by a second, never block it.
            client = redis_roles.client(url, socket_timeout=0.5, socket_connect_timeout=0.5)
            _connections[url] = client
        return client


def close_connections() -> None:
    """Drop the cached Redis clients (tests, and after a fork)."""
    with _connections_lock:
        for client in _connections.values():
            client.close()
        _connections.clear()


def _keys(*names: str) -> list[str]:
    prefix = settings.LLM_BREAKER_KEY_PREFIX
    return [f"{prefix}{name}" for name in names]


def _redis_failed(action: str, exc: Exception) -> None:
    """Log a Redis failure at most every 30 s per process: a Redis outage must not flood the log."""
    global _last_redis_warning
    now = time.monotonic()
    if now - _last_redis_warning >= 30:
        _last_redis_warning = now
        logger.warning("LLM breaker: Redis unavailable during %s (%s); treating the breaker as closed", action, exc)


def _probe_ttl_ms() -> int:
    # Long enough for the probe's request (plus one malformed-output retry) to finish.
    return int((2 * float(settings.LLM_TIMEOUT_S) + 5) * 1000)


def before_call() -> Gate:
    """``"closed"``: go ahead; ``"probe"``: go ahead, you are the one half-open probe; ``"open"``: don't."""
    try:
        gate = _redis().eval(_BEFORE_CALL, 2, *_keys("state", "probe"), _probe_ttl_ms())
    except Exception as exc:  # Redis down or misconfigured: never the LLM call's problem
        _redis_failed("before_call", exc)
        return "closed"
    gate = gate.decode() if isinstance(gate, bytes) else gate
    if gate == "probe":
        logger.warning("LLM breaker half-open: this call is the probe")
    return gate


def record_failure(*, probe: bool, reason: str) -> None:
    """An availability failure (after our retries). A failed probe reopens the breaker."""
    window = float(settings.LLM_BREAKER_WINDOW_S)
    cooldown = float(settings.LLM_BREAKER_COOLDOWN_S)
    state_ttl = int(max(3600, cooldown * 10))
    try:
        transition, failures = _redis().eval(
            _RECORD_FAILURE,
            3,
            *_keys("state", "fails", "probe"),
            "1" if probe else "0",
            int(settings.LLM_BREAKER_FAILURES),
            window,
            cooldown,
            state_ttl,
            uuid.uuid4().hex,
        )
    except Exception as exc:  # Redis down or misconfigured: never the LLM call's problem
        _redis_failed("record_failure", exc)
        return
    transition = transition.decode() if isinstance(transition, bytes) else transition
    if transition == "opened":
        logger.warning(
            "LLM breaker opened after %s failures in %ss (last: %s); retry in %ss", failures, window, reason, cooldown
        )
    elif transition == "reopened":
        logger.warning("LLM breaker probe failed (%s); open again for %ss", reason, cooldown)


def record_success(*, probe: bool) -> None:
    """The endpoint answered. A probe's answer closes the breaker; in closed state the count restarts."""
    try:
        transition = _redis().eval(_RECORD_SUCCESS, 3, *_keys("state", "fails", "probe"), "1" if probe else "0")
    except Exception as exc:  # Redis down or misconfigured: never the LLM call's problem
        _redis_failed("record_success", exc)
        return
    if transition in (b"closed", "closed"):
        logger.warning("LLM breaker closed: the probe succeeded")


def status() -> dict:
    """``{"state", "failures", "opened_at", "retry_at"}``; times are Unix seconds (Redis clock)."""
    try:
        open_until, opened_at, failures, now = _redis().eval(
            _STATUS, 2, *_keys("state", "fails"), float(settings.LLM_BREAKER_WINDOW_S)
        )
    except Exception as exc:  # Redis down or misconfigured: never the LLM call's problem
        _redis_failed("status", exc)
        return {"state": "closed", "failures": 0, "opened_at": None, "retry_at": None}
    if not open_until:
        return {"state": "closed", "failures": int(failures), "opened_at": None, "retry_at": None}
    retry_at = float(open_until)
    return {
        "state": "open" if float(now) < retry_at else "half_open",
        "failures": int(failures),
        "opened_at": float(opened_at) if opened_at else None,
        "retry_at": retry_at,
    }


def reset() -> None:
    """Close the breaker and forget the failures (tests, admin)."""
    try:
        _redis().delete(*_keys("state", "fails", "probe"))
    except Exception as exc:  # Redis down or misconfigured: never the LLM call's problem
        _redis_failed("reset", exc)
        return
    logger.info("LLM breaker reset")
