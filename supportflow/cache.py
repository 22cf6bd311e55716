"""Django's Redis cache, counted on /metrics.

django-prometheus ships a counting Redis backend only on top of django-redis, which we do not use; this
is the same counting on Django's own backend, under django-prometheus's metric names
(``django_cache_get_total``, ``_get_hits_total``, ``_get_misses_total``, ``_get_fail_total``, with
``backend="redis"``), so its stock dashboards read it.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django_prometheus.cache.metrics import (
    django_cache_get_fail_total,
    django_cache_get_total,
    django_cache_hits_total,
    django_cache_misses_total,
)

BACKEND = "redis"
_MISSING = object()


class RedisCache(DjangoRedisCache):
    def get(self, key, default=None, version=None):
        django_cache_get_total.labels(backend=BACKEND).inc()
        try:
            value = super().get(key, default=_MISSING, version=version)
        except Exception:
            django_cache_get_fail_total.labels(backend=BACKEND).inc()
            raise
        if value is _MISSING:
            django_cache_misses_total.labels(backend=BACKEND).inc()
            return default
        django_cache_hits_total.labels(backend=BACKEND).inc()
        return value

    def get_many(self, keys, version=None):
        keys = list(keys)
        django_cache_get_total.labels(backend=BACKEND).inc(len(keys))
        try:
            found = super().get_many(keys, version=version)
        except Exception:
            django_cache_get_fail_total.labels(backend=BACKEND).inc(len(keys))
            raise
        django_cache_hits_total.labels(backend=BACKEND).inc(len(found))
        django_cache_misses_total.labels(backend=BACKEND).inc(len(keys) - len(found))
        return found
