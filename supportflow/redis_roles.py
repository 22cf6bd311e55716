"""Redis by role, and the one way to connect to any of them, directly or through Redis Sentinel.

Four roles, each with its own URL setting, so each can be its own server (docs/deploy.md):

==========  ======================  =====================================================================
role        setting                 what lives there
==========  ======================  =====================================================================
broker      ``REDIS_BROKER_URL``    Celery's queues and results, the business metrics (noeviction!)
cache       ``REDIS_CACHE_URL``     Django's cache (and the per-message AI lock in it), rate limits,
                                    presence, the LLM circuit breaker unless ``LLM_BREAKER_REDIS_URL``
channels    ``REDIS_CHANNELS_URL``  the channel layer (pub/sub)
locks       ``REDIS_LOCKS_URL``     the beat lease, the register of warm workers
==========  ======================  =====================================================================

Unset, each one is today's single ``REDIS_URL`` server: broker and locks on its database, cache and
channels on ``REDIS_CACHE_DB`` / ``REDIS_CHANNELS_DB`` of the same server.

Every URL takes redis-py's forms (``redis://``, ``rediss://``, ``unix://``) or, for a master watched by
Sentinel::

    redis+sentinel://[[username]:password@]host1[:26379][,host2[:26379]...]/service_name[/db]
                     [?sentinel_password=...&sentinel_username=...]

The password is the master's; the sentinels' own, if they require one, is ``sentinel_password``. Every
client asks the sentinels for the current master and follows a failover. TLS to a Sentinel-managed master
is not offered (redis-py could; Celery's and channels_redis' Sentinel modes take it differently).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ROLES = ("broker", "cache", "channels", "locks")
SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
_FORM = "redis+sentinel://[[username]:password@]host1:26379[,host2:26379...]/service_name[/db]"
_QUERY = ("sentinel_password", "sentinel_username")


@dataclass(frozen=True)
class SentinelTarget:
    """A master named ``service`` that the ``sentinels`` know, and how to log in to it."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def master_kwargs(self) -> dict:
        """Connection arguments for the master itself."""
        kwargs: dict = {"db": self.db}
        if self.username:
            kwargs["username"] = self.username
        if self.password:
            kwargs["password"] = self.password
        return kwargs

    def sentinel_kwargs(self, options: dict) -> dict:
        """Connection arguments for the sentinels: the caller's timeouts, the sentinels' own login."""
        kwargs = {key: value for key, value in options.items() if key.startswith("socket_")}
        if self.sentinel_username:
            kwargs["username"] = self.sentinel_username
        if self.sentinel_password:
            kwargs["password"] = self.sentinel_password
        return kwargs


def _bad(url: str, why: str) -> ImproperlyConfigured:
    shown = re.sub(r"//[^/]*@", "//", url)  # never a password in a message
    return ImproperlyConfigured(f"Redis URL {shown!r}: {why}. The Sentinel form is {_FORM}.")


def _host_port(url: str, item: str) -> tuple[str, int]:
    if item.startswith("["):  # [::1]:26379
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
    if not host or (port and not port.isdigit()):
        raise _bad(url, f"{item!r} is not host[:port]")
    return host, int(port) if port else SENTINEL_PORT


def sentinel_target(url: str) -> SentinelTarget | None:
    """The parsed ``redis+sentinel://`` URL; ``None`` for any other scheme (a plain Redis URL)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _bad(url, str(exc)) from None
    if parts.scheme != SENTINEL_SCHEME:
        return None
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = tuple(_host_port(url, item) for item in hosts.split(",") if item)
    if not sentinels:
        raise _bad(url, "no sentinel host")
    segments = [unquote(segment) for segment in parts.path.split("/") if segment]
    if not segments or len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise _bad(url, "the path must be /service_name or /service_name/db")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    if unknown := sorted(set(query) - set(_QUERY)):
        raise _bad(url, f"unknown option(s) {', '.join(unknown)} (known: {', '.join(_QUERY)})")
    return SentinelTarget(
        sentinels=sentinels,
        service=segments[0],
        db=int(segments[1]) if len(segments) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_username=query.get("sentinel_username") or None,
        sentinel_password=query.get("sentinel_password") or None,
    )


def with_db(url: str, db: int) -> str:
    """The same server (or Sentinel service) with another logical database."""
    parts = urlsplit(url)
    target = sentinel_target(url)
    path = f"/{quote(target.service)}/{db}" if target else f"/{db}"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def server(url: str) -> str:
    """What tells two URLs' servers apart (their database does not): one check per server."""
    return with_db(url, 0)


# --- clients ----------------------------------------------------------------------------------------------


def connection_pool(url: str, **options):
    """A redis-py connection pool for ``url``; for Sentinel, one that finds the master and follows it."""
    target = sentinel_target(url)
    if target is None:
        return redis.ConnectionPool.from_url(url, **options)
    sentinel = redis.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=target.sentinel_kwargs(options))
    return redis.sentinel.SentinelConnectionPool(target.service, sentinel, **target.master_kwargs(), **options)


def client(url: str, **options) -> redis.Redis:
    """A ``redis.Redis`` for ``url`` that owns its pool (``close()`` closes it); ``options`` as ``from_url``'s."""
    return redis.Redis.from_pool(connection_pool(url, **options))


def async_client(url: str, *, max_connections: int, timeout: float, **options) -> redis.asyncio.Redis:
    """A ``redis.asyncio.Redis`` for ``url`` whose pool waits up to ``timeout`` for a free connection
    instead of failing when ``max_connections`` are in use (with or without Sentinel)."""
    target = sentinel_target(url)
    if target is None:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout, **options
        )
        return redis.asyncio.Redis.from_pool(pool)
    sentinel = redis.asyncio.sentinel.Sentinel(list(target.sentinels), sentinel_kwargs=target.sentinel_kwargs(options))
    pool = _BlockingSentinelPool(
        target.service, sentinel, max_connections=max_connections, timeout=timeout, **target.master_kwargs(), **options
    )
    return _SentinelRedis.from_pool(pool)


class _BlockingSentinelPool(redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool):
    """Finds the master like Sentinel's pool; waits for a free connection like the blocking one."""


class _SentinelRedis(redis.asyncio.Redis):
    """Closes the sentinels' sockets with its own (redis-py leaves them to the garbage collector)."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        await self.connection_pool.sentinel_manager.aclose()


# --- library settings -------------------------------------------------------------------------------------


def celery_url(url: str) -> tuple[str, dict]:
    """Celery's broker or result-backend URL for ``url`` and the transport options it needs: for Sentinel,
    kombu's ``sentinel://h1:p1/db;sentinel://h2:p2/db`` with ``master_name`` (and ``sentinel_kwargs``)."""
    target = sentinel_target(url)
    if target is None:
        return url, {}
    login = ""
    if target.username or target.password:
        login = f"{quote(target.username or '', safe='')}:{quote(target.password or '', safe='')}@"
    hosts = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in target.sentinels]
    options: dict = {"master_name": target.service}
    if sentinel_kwargs := target.sentinel_kwargs({}):
        options["sentinel_kwargs"] = sentinel_kwargs
    return ";".join(f"sentinel://{login}{host}/{target.db}" for host in hosts), options


def channels_host(url: str, **options) -> dict:
    """One ``hosts`` entry of channels_redis' layer: ``address`` for a plain URL; for Sentinel, the
    ``sentinels`` + ``master_name`` form its ``create_pool`` turns into a Sentinel pool."""
    target = sentinel_target(url)
    if target is None:
        return {"address": url, **options}
    return {
        "sentinels": list(target.sentinels),
        "master_name": target.service,
        "sentinel_kwargs": target.sentinel_kwargs(options),
        **target.master_kwargs(),
        **options,
    }


def role_url(role: str) -> str:
    """The configured URL of ``role`` (one of ``ROLES``)."""
    if role not in ROLES:
        raise ValueError(f"unknown Redis role {role!r}; one of {', '.join(ROLES)}")
    return getattr(settings, f"REDIS_{role.upper()}_URL")
