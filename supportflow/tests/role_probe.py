"""Run as its own process by ``test_redis_roles`` with the roles' URLs in the environment and the real
settings module (``supportflow.settings``): uses every Redis role the way the app does, so the test can
look for each trace on the server that role was given.

    python -m supportflow.tests.role_probe TICKET_ID
"""

from __future__ import annotations

import sys

import django
from asgiref.sync import async_to_sync

GREETING = "through the channels role"
TASK = "supportflow.role_probe"


def main(ticket_id: str) -> None:
    django.setup()
    from django.core.cache import cache

    from supportflow import metrics, ratelimit, readiness
    from supportflow.celery import app
    from supportflow.llm import breaker
    from tickets import events, realtime

    # broker: a task message and a business counter
    app.send_task(TASK, queue="celery")
    metrics.record_event(events.TICKET_RATED, score=5)
    # cache: Django's cache, a rate limit, the LLM breaker's failure log
    cache.set("role-probe", "cached")
    ratelimit.hit("role-probe", "k", ratelimit.Limit(5, 60))
    breaker.record_failure(probe=False, reason="role probe")
    # locks: the register of warm workers (the beat lease needs the database; the test takes it itself)
    readiness.beat("role-probe")
    # channels: a broadcast to a socket the test holds open in its own process
    async_to_sync(realtime.publish)([(realtime.customer_audience(int(ticket_id)), GREETING)])


if __name__ == "__main__":
    main(sys.argv[1])
