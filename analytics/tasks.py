"""Beat tasks of the analytics app (housekeeping queue): thin wrappers over ``rollup`` and ``gaps``."""

from __future__ import annotations

from celery import shared_task


@shared_task(soft_time_limit=300, time_limit=360)
def rollup_recent() -> int:
    """Every 10 minutes: rebuild yesterday's and today's rollups."""
    from analytics import rollup

    return rollup.recent()


@shared_task(soft_time_limit=1800, time_limit=1900)
def rollup_nightly() -> int:
    """Nightly: rebuild the last 30 days (reopens and late ratings move earlier days' figures)."""
    from analytics import rollup

    return rollup.nightly()


@shared_task(soft_time_limit=900, time_limit=960)
def refresh_knowledge_gaps() -> int:
    """Nightly and on demand: regroup the last 30 days' unanswered questions."""
    from analytics import gaps

    return gaps.refresh()
