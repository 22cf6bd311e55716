"""PostgreSQL and Redis from the event loop itself, for the one hot path that runs there: a customer's
chat message (``tickets.consumers``; issue 15).

Everything else reaches the database through Django's ORM on a worker thread. For a chat message that
meant a hop to the thread pool, a queue behind other sockets' work and GIL hand-offs between threads,
for what is one Redis pipeline and one SQL statement. Here they are awaited on the loop.

- ``connection()``: an async psycopg connection with Django's own parameters (database, user, adapters,
  UTC) in autocommit, from a small pool per event loop (``DB_ASYNC_POOL_MAX_SIZE``, default 4). One
  idle longer than ``CHECK_AFTER_IDLE_S`` is checked with one round trip before use, so one left over
  from a database restart is replaced (as the ORM's pool does with ``CONN_HEALTH_CHECKS``). Database
  errors come out as Django's (``OperationalError``, ``IntegrityError``…), and the connection that
  raised one of the operational kind is closed, not reused.
- Statements run with ``prepare=True`` are prepared once per connection and then run on their generic
  plan (``DB_ASYNC_PREPARE``, on by default): the chat's append is one statement of primary-key lookups
  whose parse and plan cost PostgreSQL twice its execution (0.6 → 0.2 ms of backend CPU per message,
  ``docs/benchmarks.md``). Django's own connections prepare nothing (``prepare_threshold`` None), to suit
  transaction-mode poolers; behind one of those (PgBouncer before 1.21) set ``DB_ASYNC_PREPARE=0``. A
  connection whose prepared statement fails (the schema changed under it, or a pooler lost it) is
  closed, so the next message prepares afresh on a new one.
- ``redis()``: a ``redis.asyncio`` client for a URL (plain or Sentinel, ``supportflow.redis_roles``), one
  per event loop, whose pool waits for a free connection (up to ``REDIS_MAX_CONNECTIONS``) instead of failing.

A server process has one loop. Tests run a loop per scenario; each loop's connections are closed with
it (``loop.close`` is wrapped, as channels_redis does for its layer).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import types
import weakref
from collections.abc import AsyncIterator

import psycopg
from django import db as django_db
from django.conf import settings

CHECK_AFTER_IDLE_S = 1.0
PREPARE_AFTER = 5  # psycopg's default: a statement run this often is prepared even without prepare=True
REDIS_MAX_CONNECTIONS = 50
REDIS_WAIT_S = 5.0

# psycopg's exception classes → Django's (what ``django.db.utils.DatabaseErrorWrapper`` does for the ORM)
_DJANGO_ERRORS = [
    (psycopg.IntegrityError, django_db.IntegrityError),
    (psycopg.DataError, django_db.DataError),
    (psycopg.ProgrammingError, django_db.ProgrammingError),
    (psycopg.NotSupportedError, django_db.NotSupportedError),
    (psycopg.InternalError, django_db.InternalError),
    (psycopg.OperationalError, django_db.OperationalError),
    (psycopg.InterfaceError, django_db.InterfaceError),
    (psycopg.DatabaseError, django_db.DatabaseError),
]
_BREAKS_CONNECTION = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.FeatureNotSupported,  # "cached plan must not change result type": a migration ran
    psycopg.errors.InvalidSqlStatementName,  # "prepared statement … does not exist": a pooler switched servers
)


class _Pool:
    def __init__(self, max_size: int) -> None:
        self.idle: collections.deque[tuple[psycopg.AsyncConnection, float]] = collections.deque()
        self.slots = asyncio.Semaphore(max_size)

    async def take(self) -> psycopg.AsyncConnection:
        while self.idle:
            conn, returned_at = self.idle.pop()  # the most recently used: warm, and the others may age out
            if conn.closed:
                continue
            if time.monotonic() - returned_at < CHECK_AFTER_IDLE_S:
                return conn
            try:
                await conn.execute("")
                return conn
            except psycopg.Error:
                await conn.close()
        return await _connect()

    def give_back(self, conn: psycopg.AsyncConnection) -> None:
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            self.idle.append((conn, time.monotonic()))

    async def close(self) -> None:
        while self.idle:
            await self.idle.pop()[0].close()


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()
_redis_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict] = weakref.WeakKeyDictionary()


async def _connect() -> psycopg.AsyncConnection:
    from django.db import connections

    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)  # Django's sync cursor class; the async default binds on the server
    params.pop("pool", None)
    params.setdefault("connect_timeout", 10)
    conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
    if conn.info.parameter_status("TimeZone") != "UTC":
        await conn.execute("SET TIME ZONE 'UTC'")
    if settings.DB_ASYNC_PREPARE:
        conn.prepare_threshold = PREPARE_AFTER
        # the hot statements are primary-key lookups: the generic plan is the custom one, without
        # re-planning on every run (``auto`` kept choosing custom plans for the chat's append)
        await conn.execute("SET plan_cache_mode = force_generic_plan")
    return conn


def _close_with(loop: asyncio.AbstractEventLoop) -> None:
    """Close this loop's pool and Redis clients just before the loop itself closes."""
    original = loop.close

    def close(self, *args, **kwargs):
        pool = _pools.pop(loop, None)
        clients = _redis_clients.pop(loop, {})
        if pool is not None or clients:
            with contextlib.suppress(Exception):
                loop.run_until_complete(_close_all(pool, clients.values()))
        self.close = original
        return original(*args, **kwargs)

    loop.close = types.MethodType(close, loop)


async def _close_all(pool: _Pool | None, clients) -> None:
    if pool is not None:
        await pool.close()
    for client in clients:
        await client.aclose()


def _pool() -> _Pool:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _Pool(settings.DB_ASYNC_POOL_MAX_SIZE)
        if loop not in _redis_clients:
            _close_with(loop)
    return pool


@contextlib.asynccontextmanager
async def connection() -> AsyncIterator[psycopg.AsyncConnection]:
    pool = _pool()
    async with pool.slots:
        conn = None
        try:
            conn = await pool.take()
            yield conn
        except psycopg.Error as exc:
            if conn is not None and isinstance(exc, _BREAKS_CONNECTION):
                await conn.close()
            for theirs, ours in _DJANGO_ERRORS:
                if isinstance(exc, theirs):
                    raise ours(*exc.args) from exc
            raise
        finally:
            if conn is not None:
                pool.give_back(conn)


def redis(url: str, **options):
    """The ``redis.asyncio`` client for ``url`` on the running loop (``options`` as ``Redis.from_url``'s)."""
    from supportflow import redis_roles

    loop = asyncio.get_running_loop()
    clients = _redis_clients.get(loop)
    if clients is None:
        clients = _redis_clients[loop] = {}
        if loop not in _pools:
            _close_with(loop)
    client = clients.get(url)
    if client is None:
        # a pool that waits for a free connection: the default one raises "Too many connections" when a
        # burst of messages (a backlog of 1,000 at once in the chat bench) wants more than it holds
        client = clients[url] = redis_roles.async_client(
            url, max_connections=REDIS_MAX_CONNECTIONS, timeout=REDIS_WAIT_S, **options
        )  # owns its pool: closed with the client
    return client
