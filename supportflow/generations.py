"""Generation stamps: a value in the shared cache that a change replaces, so every process knows to re-read
what it keeps in memory (the AI's configuration versions, the active triage model, who subscribes to
webhooks). A process compares the stamp with the one it read its copy under; equal means still current.

The cache failing never fails the caller: ``current`` says None (read the source instead) and ``bump`` logs
(the readers' own periodic re-read bounds how long they serve the old copy)."""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache

logger = logging.getLogger(__name__)


def current(key: str) -> str | None:
    """The stamp under ``key`` (made on first read); None when the cache cannot be read."""
    try:
        return cache.get_or_set(key, lambda: uuid.uuid4().hex, timeout=None)
    except Exception:
        logger.warning("generation %s unreadable; reading the source instead", key, exc_info=True)
        return None


def bump(key: str) -> None:
    """A new stamp: every process re-reads on its next use."""
    try:
        cache.set(key, uuid.uuid4().hex, timeout=None)
    except Exception:
        logger.warning(
            "generation %s not bumped; other processes keep their copy until they re-read", key, exc_info=True
        )
