"""The event loop's rate limits counted ahead (``ratelimit.ahit_all``), against the real Redis: a hit well
under its limits is allowed before Redis answers and counted right after; near a limit the verdict is
Redis's own, exact within a process even for a burst; another process's hits bring the view up to date
on the next reply; Redis away fails open on both paths."""

from __future__ import annotations

import asyncio
import logging
import uuid

import redis
from django.conf import settings

from supportflow import ratelimit


def _scope() -> str:
    return f"ahead-{uuid.uuid4().hex[:8]}"


def _redis_count(scope: str, key: str = "k") -> int:
    client = redis.Redis.from_url(settings.REDIS_CACHE_URL)
    try:
        return sum(int(client.get(name) or 0) for name in client.keys(f"rl:{scope}:{key}:*"))
    finally:
        client.close()


async def _settled() -> None:
    """Until this loop's counts ahead are in Redis."""
    tasks = ratelimit._ledger()._tasks
    if tasks:
        await asyncio.wait(set(tasks))


def test_a_hit_well_under_its_limit_is_allowed_before_redis_counts_it_and_counted_right_after():
    scope = _scope()
    check = [(scope, "k", ratelimit.Limit(10, 60))]

    async def scenario():
        verdict = await ratelimit.ahit_all(check)  # no await inside: Redis has not been asked yet
        before = _redis_count(scope)
        await _settled()
        return verdict, before, _redis_count(scope)

    verdict, before, after = asyncio.run(scenario())
    assert verdict == (ratelimit.Verdict(True), -1)
    assert (before, after) == (0, 1)


def test_one_at_a_time_the_limit_is_exact_and_the_refusal_says_which_and_when():
    scope = _scope()
    checks = [(scope, "conversation", ratelimit.Limit(50, 60)), (scope, "k", ratelimit.Limit(4, 60))]

    async def scenario():
        return [await ratelimit.ahit_all(checks) for _ in range(6)]

    verdicts = asyncio.run(scenario())
    assert [v.allowed for v, _ in verdicts] == [True] * 4 + [False] * 2
    assert {index for _, index in verdicts[4:]} == {1}
    assert all(1 <= v.retry_after <= 60 for v, _ in verdicts[4:])
    assert _redis_count(scope) == 6  # every hit counted, the refused too (as hit_all does)


def test_a_burst_on_one_loop_gets_exactly_the_limit():
    scope = _scope()
    check = [(scope, "k", ratelimit.Limit(6, 60))]

    async def scenario():
        verdicts = await asyncio.gather(*(ratelimit.ahit_all(check) for _ in range(20)))
        await _settled()
        return verdicts

    verdicts = asyncio.run(scenario())
    assert sum(v.allowed for v, _ in verdicts) == 6
    assert _redis_count(scope) == 20


def test_another_processs_hits_reach_the_view_with_the_next_reply():
    """The sync ``hit_all`` stands for another process (or the HTTP send on the same keys)."""
    scope = _scope()
    limit = ratelimit.Limit(10, 60)
    check = [(scope, "k", limit)]

    async def scenario():
        first = await ratelimit.ahit_all(check)
        await _settled()
        for _ in range(8):  # meanwhile, elsewhere: 9 in Redis, this loop has seen 1
            assert ratelimit.hit_all(check)[0].allowed
        stale = await ratelimit.ahit_all(check)  # allowed ahead on the stale view: the 10th, within the limit
        await _settled()
        caught_up = await ratelimit.ahit_all(check)  # the reply said 10: judged by Redis now
        return first, stale, caught_up

    first, stale, caught_up = asyncio.run(scenario())
    assert first[0].allowed
    assert stale[0].allowed
    assert caught_up == (ratelimit.Verdict(False, caught_up[0].retry_after), 0)
    assert _redis_count(scope) == 11


def test_a_limit_too_small_to_count_ahead_is_always_asked():
    scope = _scope()
    check = [(scope, "k", ratelimit.Limit(1, 60))]

    async def scenario():
        first = await ratelimit.ahit_all(check)
        counted = _redis_count(scope)  # asked before answering: already in Redis
        return first, counted, await ratelimit.ahit_all(check)

    first, counted, second = asyncio.run(scenario())
    assert (first[0].allowed, counted, second[0].allowed) == (True, 1, False)


def test_redis_away_fails_open_on_both_paths_and_says_so(settings, caplog):
    settings.REDIS_CACHE_URL = "redis://127.0.0.1:1/0"
    scope = _scope()

    async def scenario():
        ahead = await ratelimit.ahit_all([(scope, "k", ratelimit.Limit(10, 60))])
        await _settled()
        asked = await ratelimit.ahit_all([(scope, "k2", ratelimit.Limit(0, 60))])
        return ahead, asked

    with caplog.at_level(logging.WARNING, logger="supportflow.ratelimit"):
        ahead, asked = asyncio.run(scenario())
    assert ahead[0].allowed
    assert asked[0].allowed
    assert [r.getMessage() for r in caplog.records].count("rate limit store unavailable; allowing") == 2


def test_ended_windows_are_dropped_from_the_view():
    ledger = ratelimit._Ledger()
    limit = ratelimit.Limit(5, 60)
    (window,) = ledger.windows(["rl:a:k:1"], [limit], now=60.0)
    assert window.ends == 120.0
    assert ledger.windows(["rl:a:k:1"], [limit], now=61.0) == [window]  # the same window, kept
    ledger.windows(["rl:a:k:2"], [limit], now=121.5)
    assert set(ledger._windows) == {"rl:a:k:2"}


def test_the_view_counts_this_loops_hits_on_their_way_and_waiting_for_a_verdict():
    limit = ratelimit.Limit(8, 60)  # counted ahead up to 4
    assert ratelimit._Window(ends=60.0, seen=3).has_room(limit)
    assert not ratelimit._Window(ends=60.0, seen=3, waiting=1).has_room(limit)
    assert not ratelimit._Window(ends=60.0, seen=2, ahead={object(), object()}).has_room(limit)
