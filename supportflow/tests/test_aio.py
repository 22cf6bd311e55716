"""PostgreSQL and Redis from the event loop (``supportflow.aio``), and the cache's one pool per process,
against the real embedded PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis
from django import db as django_db
from django.conf import settings
from django.core.cache import caches
from django.db import connection

from supportflow import aio, ratelimit

pytestmark = pytest.mark.django_db(transaction=True)


def _backends() -> set[int]:
    """Backend pids connected to the test database, seen from Django's own connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return {row[0] for row in cursor.fetchall()}


def test_a_connection_is_djangos_database_in_autocommit_and_utc_and_is_reused():
    async def scenario():
        async with aio.connection() as conn:
            first = conn.info.backend_pid
            row = await (await conn.execute("SELECT current_database(), current_setting('TimeZone')")).fetchone()
            assert conn.autocommit
        async with aio.connection() as conn:
            assert conn.info.backend_pid == first  # back in the pool, taken again
        return row

    database, zone = asyncio.run(scenario())
    assert database == connection.settings_dict["NAME"]
    assert zone == "UTC"


def test_the_pool_is_closed_with_its_loop():
    seen = {}

    async def scenario():
        async with aio.connection() as conn:
            seen["pid"] = conn.info.backend_pid
            seen["conn"] = conn
        assert seen["pid"] in await asyncio.to_thread(_backends)

    asyncio.run(scenario())  # closes the loop
    assert seen["conn"].closed
    assert seen["pid"] not in _backends()


def test_database_errors_come_out_as_djangos_and_a_broken_connection_is_not_reused():
    async def insert_twice():
        async with aio.connection() as conn:
            await conn.execute("CREATE TEMP TABLE t (id int PRIMARY KEY)")
            await conn.execute("INSERT INTO t VALUES (1), (1)")

    async def use_after_its_backend_is_killed():
        async with aio.connection() as conn:
            await asyncio.to_thread(_terminate, conn.info.backend_pid)
            await conn.execute("SELECT 1")

    async def scenario():
        with pytest.raises(django_db.IntegrityError):
            await insert_twice()
        async with aio.connection() as conn:  # an integrity error leaves the connection usable
            kept = conn.info.backend_pid
        with pytest.raises(django_db.OperationalError):
            await use_after_its_backend_is_killed()  # the same connection: the pool's most recent
        async with aio.connection() as conn:
            assert conn.info.backend_pid != kept
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)

    asyncio.run(scenario())


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_connection_idle_past_the_check_is_checked_and_replaced_when_dead(monkeypatch):
    """What the sync pool's health check does after a database restart: the dead one is not handed out."""
    monkeypatch.setattr(aio, "CHECK_AFTER_IDLE_S", 0.0)

    async def scenario():
        async with aio.connection() as conn:
            dead = conn.info.backend_pid
        await asyncio.to_thread(_terminate, dead)
        await asyncio.sleep(0.1)
        async with aio.connection() as conn:
            assert conn.info.backend_pid != dead
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)

    asyncio.run(scenario())


def _prepared(conn_statements: list[tuple]) -> list[tuple]:
    return [(generic, custom) for _name, statement, generic, custom in conn_statements if "tickets_ticket" in statement]


def test_the_chat_append_is_prepared_once_and_run_on_its_generic_plan():
    """Parse and plan cost PostgreSQL more than running the append itself: after the first message on a
    connection, each further one runs the statement prepared then, on its generic plan."""
    from tickets import services
    from tickets.models import Message

    customer = services.customer_get_or_create(email="prep@example.com", name="Prep")
    ticket = services.ticket_create(customer=customer, subject="Prepared", body="Hello")

    async def scenario():
        for n in range(7):
            stored = await services.message_create_customer_async(
                ticket_id=ticket.pk, body=f"message {n}", client_msg_id=f"prep-{n}"
            )
            assert stored is not None
        async with aio.connection() as conn:
            return await (
                await conn.execute("SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements")
            ).fetchall()

    prepared = _prepared(asyncio.run(scenario()))
    assert prepared == [(7, 0)]  # one statement, seven runs, never re-planned for its parameters
    assert list(Message.objects.filter(ticket=ticket).order_by("seq").values_list("seq", flat=True)) == list(
        range(1, 9)
    )


def test_with_prepare_off_nothing_is_prepared(settings):
    """Behind a transaction-mode pooler a prepared statement may be gone on the next server connection."""
    settings.DB_ASYNC_PREPARE = False
    from tickets import services

    customer = services.customer_get_or_create(email="noprep@example.com", name="No prep")
    ticket = services.ticket_create(customer=customer, subject="Not prepared", body="Hello")

    async def scenario():
        for n in range(7):
            assert await services.message_create_customer_async(
                ticket_id=ticket.pk, body=f"message {n}", client_msg_id=f"noprep-{n}"
            )
        async with aio.connection() as conn:
            return await (
                await conn.execute("SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements")
            ).fetchall()

    assert asyncio.run(scenario()) == []


def test_a_connection_whose_prepared_statement_broke_is_not_reused():
    """A migration that changes what a prepared statement returns makes PostgreSQL refuse to run it
    ("cached plan must not change result type"): the connection is dropped, and the next use prepares
    afresh on a new one."""

    async def run_again(expected_pid: int) -> None:
        async with aio.connection() as conn:
            assert conn.info.backend_pid == expected_pid
            await conn.execute("SELECT * FROM aio_prep_t", prepare=True)

    async def scenario():
        async with aio.connection() as conn:
            await conn.execute("CREATE TABLE aio_prep_t (a int)")
            await conn.execute("INSERT INTO aio_prep_t VALUES (1)")
            assert await (await conn.execute("SELECT * FROM aio_prep_t", prepare=True)).fetchone() == (1,)
            await asyncio.to_thread(_alter_elsewhere)  # a migration, on another connection
            broken = conn.info.backend_pid
        with pytest.raises(django_db.NotSupportedError):
            await run_again(broken)
        async with aio.connection() as conn:
            assert conn.info.backend_pid != broken
            row = await (await conn.execute("SELECT * FROM aio_prep_t", prepare=True)).fetchone()
            await conn.execute("DROP TABLE aio_prep_t")
            return row

    assert asyncio.run(scenario()) == (1, None)


def _alter_elsewhere() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE aio_prep_t ADD COLUMN b int")


def test_no_more_connections_than_the_pool_allows_at_once(settings):
    settings.DB_ASYNC_POOL_MAX_SIZE = 2
    busy, most = 0, 0

    async def one():
        nonlocal busy, most
        async with aio.connection() as conn:
            busy += 1
            most = max(most, busy)
            await conn.execute("SELECT pg_sleep(0.05)")
            busy -= 1

    async def scenario():
        await asyncio.gather(*(one() for _ in range(6)))

    asyncio.run(scenario())
    assert most == 2


def test_the_async_rate_limit_counts_on_the_same_keys_as_the_sync_one():
    check = [("aio-test", "k1", ratelimit.Limit(2, 60))]
    assert ratelimit.hit_all(check)[0].allowed

    async def scenario():
        return await ratelimit.ahit_all(check), await ratelimit.ahit_all(check)

    second, third = asyncio.run(scenario())
    assert second[0].allowed
    assert not third[0].allowed
    assert third[1] == 0


def test_the_async_rate_limit_fails_open_when_redis_is_away(settings):
    settings.REDIS_CACHE_URL = "redis://127.0.0.1:1/0"

    async def scenario():
        return await ratelimit.ahit_all([("aio-test", "k2", ratelimit.Limit(0, 60))])

    assert asyncio.run(scenario())[0].allowed


def _connections_received() -> int:
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    try:
        return client.info("stats")["total_connections_received"]
    finally:
        client.close()


def test_cache_objects_of_every_thread_share_one_connection_pool():
    """Django makes a cache object per thread and async context; each used to open its own pool, so
    every request and every consumer hop connected to Redis anew."""
    caches["default"].set("aio-shared", "yes")
    before = _connections_received()
    found = []

    def in_a_new_thread():
        for _ in range(5):
            found.append(caches["default"].get("aio-shared"))

    for _ in range(8):  # one after another: a pool's idle connection is there for the next thread
        thread = threading.Thread(target=in_a_new_thread)
        thread.start()
        thread.join()
    assert found == ["yes"] * 40
    # one connection at most (the pool may already hold one), and the INFO client's own: not one per thread
    assert _connections_received() - before <= 2
