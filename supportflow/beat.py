"""Celery beat that stays single even when two are started by mistake.

django-celery-beat's ``DatabaseScheduler`` has no notion of another beat: two of them (a second
``make run``, a scaled compose service, a deploy that overlaps the old one) each send every periodic
task, so each runs twice per period. ``SingleBeatScheduler`` sends only while it holds a lease in the
locks role's Redis (``REDIS_LOCKS_URL``, by default the broker's server; ``SET NX PX``, renewed on
every tick by its holder, one Lua script so renew-or-claim is atomic). The other beat keeps ticking
without sending and takes over within ``LEASE_S`` when the holder dies; it then re-reads the schedule,
with the ``last_run_at`` the holder saved, before sending. Redis unreachable means no lease and nothing
is sent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid

import redis
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

from supportflow import redis_roles

logger = logging.getLogger(__name__)

LEASE_KEY = "sf:beat:leader"
LEASE_S = 30.0
STANDBY_TICK_S = 5.0

# KEYS: lease. ARGV: holder id, lease (ms). -> 1 when the caller holds the lease afterwards, else 0.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
if not holder and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""


def lease_hold(client: redis.Redis, holder: str, *, lease_s: float = LEASE_S, key: str = LEASE_KEY) -> bool:
    """Claim or renew the beat lease for ``holder``; True if it is ``holder``'s afterwards."""
    return bool(client.eval(_HOLD, 1, key, holder, int(lease_s * 1000)))


def lease_release(client: redis.Redis, holder: str, *, key: str = LEASE_KEY) -> None:
    client.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end", 1, key, holder)


class SingleBeatScheduler(DatabaseScheduler):
    """``DatabaseScheduler`` that sends only while it holds the beat lease (see the module docstring)."""

    def __init__(self, *args, **kwargs) -> None:
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._leader = False
        self._told_standby = False
        self._lease_redis = redis_roles.client(settings.REDIS_LOCKS_URL, socket_timeout=2, socket_connect_timeout=2)
        super().__init__(*args, **kwargs)
        # Ticks must come well inside the lease, or the holder would lose it between two.
        self.max_interval = min(self.max_interval, LEASE_S / 3)

    def _hold_lease(self) -> bool:
        try:
            held = lease_hold(self._lease_redis, self._holder)
        except redis.RedisError as exc:
            if self._leader:
                logger.warning("beat: Redis unreachable (%s); not sending until the lease is held again", exc)
            held = False
        if held and not self._leader:
            logger.info("beat: this scheduler (%s) holds the lease and sends the periodic tasks", self._holder)
            self._initial_read = True  # the schedule and last runs as the previous holder left them
        elif not held and self._leader:
            logger.warning("beat: lease lost; standing by")
        elif not held and not self._leader and not self._told_standby:
            self._told_standby = True
            logger.warning("beat: another scheduler holds the lease (%s); standing by", LEASE_KEY)
        self._leader = held
        return held

    def tick(self, *args, **kwargs) -> float:
        if not self._hold_lease():
            return STANDBY_TICK_S
        return super().tick(*args, **kwargs)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._leader:
                with contextlib.suppress(redis.RedisError):  # it expires by itself
                    lease_release(self._lease_redis, self._holder)
