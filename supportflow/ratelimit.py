"""Fixed-window rate limits in Redis (the default cache), shared by every web process.

``hit()`` counts one event for a key and says whether it is within the limit. It fails open: if
Redis is unreachable, the request goes through (the message is still validated and stored), because
refusing every customer while Redis restarts would lose more than it protects.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


def hit(scope: str, key: str, limit: Limit) -> Verdict:
    window = int(time.time() // limit.seconds)
    cache_key = f"rl:{scope}:{key}:{window}"
    try:
        cache.add(cache_key, 0, timeout=limit.seconds + 1)
        count = cache.incr(cache_key)
    except Exception:  # Redis down or slow: fail open, loudly
        logger.warning("rate limit store unavailable; allowing %s", scope, exc_info=True)
        return Verdict(True)
    if count > limit.count:
        retry_after = limit.seconds - int(time.time()) % limit.seconds
        return Verdict(False, max(1, retry_after))
    return Verdict(True)


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
