"""Housekeeping in short tasks: a big knowledge-base import is scanned by the injection guard a chunk
per task, each task queueing the next, so a worker is never tied up for minutes (issue 15)."""

from __future__ import annotations

import time

import pytest

from knowledge import services as kb_services
from knowledge.models import Chunk
from tickets.ai.tasks import scan_kb_passages

pytestmark = pytest.mark.django_db(transaction=True)


def test_passages_are_scanned_in_chained_chunks_by_a_real_worker(celery_worker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(5):
            kb_services.article_save(
                title=f"Article {i}", slug=f"article-{i}", status="published", reindex="now",
                body=f"## Part one\n\nSome help text number {i} about syncing notes.\n\n"
                     f"## Part two\n\nMore help text number {i} about exporting notes.",
            )  # fmt: skip
    total = Chunk.objects.filter(injection_flagged__isnull=True).count()
    assert total >= 10

    result = scan_kb_passages.delay(limit=3)

    assert result.get(timeout=120) == 3  # the first chunk: three passages, then the next task is queued
    deadline = time.monotonic() + 180
    while Chunk.objects.filter(injection_flagged__isnull=True).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Chunk.objects.filter(injection_flagged__isnull=True).exists()  # the chain scanned the rest
    assert set(Chunk.objects.values_list("injection_flagged", flat=True)) == {False}
