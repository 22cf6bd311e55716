"""Who is on a ticket right now: presence state in Redis, with expiry.

One sorted set per ticket (``presence:ticket:<id>``) in the cache's Redis database. Each open ticket
page is one member, ``<user id>:<connection id>:<display name>``, scored with the time it expires.
While the page's websocket is open its consumer beats every ``HEARTBEAT_SECONDS``, pushing the expiry
``TTL_SECONDS`` ahead (``tickets.consumers_console`` says how a vanished peer is noticed). An entry
nobody beats for any more — its web process died — stops counting once its score is past, and the
next beat of anyone on the ticket prunes it. The key itself expires too, so a ticket nobody opens
again leaves nothing behind.

A viewer is a user, not a tab: several tabs of one agent are several members and one ``Viewer``.
Presence holds no draft text and nothing from the database; the names are what the consumers put in
when the page joined.

Every function here touches only Redis; the callers decide who may join (``tickets.selectors``).
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from django.conf import settings

from supportflow import redis_roles

TTL_SECONDS = 30
HEARTBEAT_SECONDS = 10  # two missed beats are forgiven before an entry expires
AVATAR_COLOURS = 8
TYPING_KINDS = ("reply", "note", "idle")


def group(ticket_id: int) -> str:
    """The Channels group of a ticket's presence: its viewers' pages and the lists that show it."""
    return f"presence.{ticket_id}"


def _key(ticket_id: int) -> str:
    return f"presence:ticket:{ticket_id}"


@dataclass(frozen=True)
class Viewer:
    user_id: int
    name: str

    @property
    def initials(self) -> str:
        words = self.name.split()
        if len(words) >= 2:
            return (words[0][0] + words[-1][0]).upper()
        return self.name[:2].upper() or "?"

    @property
    def colour(self) -> int:
        return self.user_id % AVATAR_COLOURS


@dataclass(frozen=True)
class Change:
    """The ticket's viewers after a join, beat or leave, and whether the set of users differs from
    what was there before (an expired page pruned, a new agent, the last tab of one closed)."""

    viewers: list[Viewer]
    changed: bool


def display_name(user) -> str:
    return (user.get_full_name() or user.get_username()).strip()[:80]


def _member(user_id: int, connection: str, name: str) -> str:
    return f"{user_id}:{connection}:{name}"


def _viewers(members: Iterable[bytes | str]) -> list[Viewer]:
    """One ``Viewer`` per user (tabs counted once), ordered by name."""
    found: dict[int, Viewer] = {}
    for member in members:
        text = member.decode() if isinstance(member, bytes) else member
        user_id, _, name = text.split(":", 2)
        found.setdefault(int(user_id), Viewer(int(user_id), name))
    return sorted(found.values(), key=lambda v: (v.name.casefold(), v.user_id))


def _users(viewers: list[Viewer]) -> set[int]:
    return {v.user_id for v in viewers}


@functools.cache
def _client_of(pid: int) -> redis.Redis:
    return redis_roles.client(settings.REDIS_CACHE_URL, socket_timeout=2, socket_connect_timeout=2)


def _redis() -> redis.Redis:
    """One client (and pool) per process, on the cache role's Redis; a forked child makes its own."""
    return _client_of(os.getpid())


def _apply(ticket_id: int, write, now: float | None) -> Change:
    """Read the members, prune the expired, apply ``write`` to the pipeline, read again: one round trip."""
    now = time.time() if now is None else now
    key = _key(ticket_id)
    pipe = _redis().pipeline(transaction=True)
    pipe.zrange(key, 0, -1)
    pipe.zremrangebyscore(key, "-inf", now)
    write(pipe, key, now)
    pipe.expire(key, math.ceil(TTL_SECONDS + HEARTBEAT_SECONDS))
    pipe.zrange(key, 0, -1)
    results = pipe.execute()
    before, after = _viewers(results[0]), _viewers(results[-1])
    return Change(after, _users(before) != _users(after))


def viewer_touch(*, ticket_id: int, user_id: int, connection: str, name: str, now: float | None = None) -> Change:
    """Join, or beat: this page views the ticket for another ``TTL_SECONDS``. ``now``: for tests."""

    def write(pipe, key, at):
        pipe.zadd(key, {_member(user_id, connection, name): at + TTL_SECONDS})

    return _apply(ticket_id, write, now)


def viewer_leave(*, ticket_id: int, user_id: int, connection: str, name: str) -> Change:
    """The page closed its socket. The user stays a viewer while another of their tabs is open."""

    def write(pipe, key, at):
        pipe.zrem(key, _member(user_id, connection, name))

    return _apply(ticket_id, write, None)


def viewers_of(ticket_ids: list[int], *, now: float | None = None) -> dict[int, list[Viewer]]:
    """The live viewers of several tickets in one round trip (the list's rows); reads, prunes nothing."""
    now = time.time() if now is None else now
    pipe = _redis().pipeline(transaction=False)
    for ticket_id in ticket_ids:
        pipe.zrangebyscore(_key(ticket_id), f"({now}", "+inf")
    return {ticket_id: _viewers(members) for ticket_id, members in zip(ticket_ids, pipe.execute(), strict=True)}
