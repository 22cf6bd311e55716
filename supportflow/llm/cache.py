"""The LLM answer cache: a repeated question is answered from the Django cache (Redis), not paid again.

The caller names what the answer depends on (``key``: the normalised, PII-redacted question, the
knowledge base's version, the prompt's version, the passages, the conversation's earlier turns, the
department, the language); this module adds what the door itself decides (task, model, endpoint, schema,
token limit, temperature, the evaluation canary) and hashes it all into one namespaced key. When anything
in it changes (an article edit bumps the knowledge base's version) the old entry is simply not read again;
``AI_CACHE_TTL_SECONDS`` is a backstop. What is stored is the model's text and the tokens it cost, so a hit
reports the money it saved at today's price (``cost_for``). The cache never raises: Redis down is a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

PREFIX = "ai:llm:"


def enabled() -> bool:
    return bool(getattr(settings, "AI_CACHE_ENABLED", True))


def make_key(*, task: str, model: str, request: dict[str, Any], key: dict[str, Any]) -> str:
    """The cache key of one call: the caller's ``key`` and everything else the door sends that changes the
    answer (never the messages themselves: they carry the per-call canary and the question as typed)."""
    door = {k: v for k, v in request.items() if k != "messages"}
    material = {
        "task": task,
        "model": model,
        "endpoint": settings.OPENAI_BASE_URL or "",
        "canary": getattr(settings, "LLM_SYSTEM_CANARY", ""),
        "request": door,
        "key": key,
    }
    return f"{PREFIX}{task}:{digest(material)}"


def digest(material: dict) -> str:
    """A stable hash of what a cached result depends on (also ``tickets.ai.cache``'s retrieval keys)."""
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def get(cache_key: str) -> dict | None:
    """The stored answer (``text``, ``tokens_in``, ``tokens_out``), or ``None``."""
    try:
        entry = cache.get(cache_key)
    except Exception as exc:  # a cache outage costs money, never the answer
        logger.warning("AI cache read failed: %s", type(exc).__name__)
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("text"), str) else None


def put(cache_key: str, *, text: str, tokens_in: int, tokens_out: int) -> None:
    try:
        cache.set(
            cache_key,
            {"text": text, "tokens_in": tokens_in, "tokens_out": tokens_out},
            timeout=int(settings.AI_CACHE_TTL_SECONDS),
        )
    except Exception as exc:
        logger.warning("AI cache write failed: %s", type(exc).__name__)
