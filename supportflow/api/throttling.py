from rest_framework.throttling import SimpleRateThrottle

from supportflow import ratelimit
from supportflow.models import APIKey


class KeyOrUserRateThrottle(SimpleRateThrottle):
    """``API_RATE`` requests per API key, per signed-in user, or per client address (REMOTE_ADDR, or the
    address ``TRUSTED_PROXY_COUNT`` proxies report). Counted in Redis, shared by all processes.

    The count is ``supportflow.ratelimit``'s fixed window (the chat's limits): one pipelined round trip.
    DRF's own throttle kept every request's timestamp in one cached list, read and written back whole
    (two round trips, and at 100 req/s on one key a 6,000-entry pickle each way)."""

    scope = "api"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, APIKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return f"sf:throttle:{self.scope}:{ident}"

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        self.verdict = ratelimit.hit(self.scope, key, ratelimit.Limit(self.num_requests, self.duration))
        return self.verdict.allowed

    def wait(self) -> float | None:
        return self.verdict.retry_after or None
