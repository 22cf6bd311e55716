"""Celery tasks of the knowledge base: thin wrappers over services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from knowledge import services
from supportflow.storage import StorageUnavailable


@shared_task(
    autoretry_for=(OperationalError,), retry_backoff=5, retry_jitter=True, max_retries=3,
    soft_time_limit=300, time_limit=360,
)  # fmt: skip
def reindex_article(article_id: int) -> int:
    """Re-chunk and re-embed one article after it was saved. Idempotent (embeddings reused by hash)."""
    return services.article_reindex(article_id=article_id)


@shared_task(
    autoretry_for=(OperationalError, StorageUnavailable), retry_backoff=5, retry_jitter=True, max_retries=3,
    soft_time_limit=1800, time_limit=1900,
)  # fmt: skip
def run_ingest_job(job_id: int) -> None:
    """Ingest an admin upload, file by file, recording progress. Re-running resumes where it stopped."""
    services.ingest_job_run(job_id=job_id)


@shared_task(soft_time_limit=1800, time_limit=1900)
def reindex_stale_articles() -> int:
    """Nightly: re-index articles changed since they were last indexed (a lost on-commit re-index)."""
    return services.article_reindex_stale()
