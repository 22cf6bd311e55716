"""Django's Redis cache, counted on /metrics.

django-prometheus ships a counting Redis backend only on top of django-redis, which we do not use; this
is the same counting on Django's own backend, under django-prometheus's metric names
(``django_cache_get_total``, ``_get_hits_total``, ``_get_misses_total``, ``_get_fail_total``, with
``backend="redis"``), so its stock dashboards read it. ``LOCATION`` may be a ``redis+sentinel://`` URL
(``supportflow.redis_roles``): the pool then asks the sentinels for the master and follows failovers.
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django_prometheus.cache.metrics import (
    django_cache_get_fail_total,
    django_cache_get_total,
    django_cache_hits_total,
    django_cache_misses_total,
)

from supportflow import redis_roles

BACKEND = "redis"
_MISSING = object()


_pools: dict[tuple[str, str], object] = {}
_pools_lock = threading.Lock()


class _ProcessPoolClient(RedisCacheClient):
    """One connection pool per server and process, not per cache object.

    Django keeps a cache object per thread and per async context, and each makes its own pool: every
    request, and every call a consumer makes on a worker thread, opened a new TCP connection to Redis
    (and redis-py read its package metadata from disk for it). Found profiling the chat (issue 15): a
    chat message's one cache GET cost a connection. redis-py's pools are thread-safe and reset
    themselves in a forked child. The pool comes from ``redis_roles`` (plain or Sentinel), not ``pool_class``."""

    def _get_connection_pool(self, write):
        index = self._get_connection_pool_index(write)
        key = (self._servers[index], repr(sorted(self._pool_options.items(), key=str)))
        pool = _pools.get(key)
        if pool is None:
            with _pools_lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = _pools[key] = redis_roles.connection_pool(self._servers[index], **self._pool_options)
        return pool


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        # Django splits LOCATION at commas into several servers; a Sentinel URL lists its sentinels with them.
        if isinstance(server, str) and redis_roles.sentinel_target(server):
            server = [server]
        super().__init__(server, params)
        self._class = _ProcessPoolClient

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
