"""The AI's cache keys and counts: retrieval results and LLM answers served again for a repeated question.

Both are keyed by the normalised question and the knowledge base's version (``knowledge.selectors.kb_version``,
bumped by every article change), plus what the result depends on:

- retrieval: the namespace, the customer's language (the full-text configuration and the language
  preference), ``k``, the ``about`` text and the embedding model — what ``answer.retrieve`` filters and
  ranks by. It does not depend on the department or the customer, so one department's answer serves
  another's identical question;
- an LLM answer: the prompt's version (a hash of the system prompt as sent, its per-call canary masked),
  the passages given, the conversation's earlier turns (PII-redacted), the language and the department
  (``supportflow.llm.cache`` adds the model, endpoint and schema). It is keyed on the redacted question, and
  stored only when the answer itself has no personal data in it and does not carry the canary.

A hit and a miss are counted (``supportflow.metrics.ai_cache_record``): Prometheus and the AI analytics page.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache

from knowledge import embeddings
from knowledge.selectors import kb_version
from supportflow import metrics
from supportflow.llm import cache as llm_cache

logger = logging.getLogger(__name__)

RETRIEVAL = "retrieval"
ANSWER = "answer"
RETRIEVAL_PREFIX = "ai:retrieval:"
_TRAILING = re.compile(r"[\s?!.。？！]+$")


def normalise(text: str) -> str:
    """The question as the key reads it: Unicode-normalised, case-folded, whitespace collapsed, without
    trailing punctuation. The bundled embedding model is uncased and full-text search ignores case, so
    "How do I export?" and "how do i export" retrieve the same passages."""
    text = " ".join(unicodedata.normalize("NFKC", text or "").casefold().split())
    return _TRAILING.sub("", text)


def record(kind: str, *, hit: bool, saved_cost: Decimal = Decimal(0)) -> None:
    metrics.ai_cache_record(cache=kind, hit=hit, saved_cost=saved_cost)


def retrieval_cached(
    compute: Callable[[], list], *, query: str, language: str, namespace: str, k: int, about: str
) -> list:
    """``compute()``'s passages, from the cache when the same question was searched at this knowledge-base
    version. The cache failing is a miss, never an error."""
    if not llm_cache.enabled() or not query.strip():
        return compute()
    try:
        key = RETRIEVAL_PREFIX + llm_cache.digest(
            {
                "q": normalise(query),
                "about": normalise(about),
                "language": language,
                "namespace": namespace,
                "k": k,
                "model": embeddings.model_name(),
                "kb": kb_version(namespace=namespace),
            }
        )
        found = cache.get(key)
    except Exception as exc:
        logger.warning("AI retrieval cache unavailable: %s", type(exc).__name__)
        return compute()
    if found is not None:
        record(RETRIEVAL, hit=True)
        return found
    passages = compute()
    record(RETRIEVAL, hit=False)
    try:
        cache.set(key, passages, timeout=int(settings.AI_RETRIEVAL_CACHE_TTL_SECONDS))
    except Exception as exc:
        logger.warning("AI retrieval cache write failed: %s", type(exc).__name__)
    return passages


def answer_key(
    *,
    question: str,
    system_prompt: str,
    canary: str,
    passages: str,
    context: str,
    language: str,
    department_id: int | None,
    namespace: str,
) -> dict | None:
    """What a generated answer depends on besides the LLM call's own settings (``supportflow.llm.chat``'s
    ``cache_key``). ``question`` and ``context`` must already be PII-redacted; ``passages`` is what the prompt
    gives of them (not the prompt's data block itself, whose untrusted-data markers are new on every call).
    ``None`` (no caching for this call) when the knowledge base's version cannot be read."""
    try:
        version = kb_version(namespace=namespace)
    except Exception as exc:
        logger.warning("AI answer cache skipped, no knowledge-base version: %s", type(exc).__name__)
        return None
    prompt = system_prompt.replace(canary, "") if canary else system_prompt
    return {
        "q": normalise(question),
        "prompt_version": hashlib.sha256(prompt.encode()).hexdigest()[:16],
        "kb": version,
        "passages": hashlib.sha256(passages.encode()).hexdigest(),
        "context": hashlib.sha256(context.encode()).hexdigest() if context else "",
        "language": language,
        "department": department_id,
    }


def answer_storable(text: str, *, canary: str) -> bool:
    """An answer may be kept for others only without personal data (placeholders are not) and without the
    per-call canary (a leak the output guard stops this time, but would not recognise under another)."""
    from tickets.ai import pii

    if canary and canary in text:
        return False
    return not pii.redact(text).mapping
