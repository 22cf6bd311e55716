from rest_framework.throttling import SimpleRateThrottle

from supportflow.models import APIKey


class KeyOrUserRateThrottle(SimpleRateThrottle):
    """``API_RATE`` requests per API key, per signed-in user, or per client address (REMOTE_ADDR, or the
    address ``TRUSTED_PROXY_COUNT`` proxies report). Counted in the Redis cache, shared by all processes."""

    scope = "api"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, APIKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return f"sf:throttle:{self.scope}:{ident}"
