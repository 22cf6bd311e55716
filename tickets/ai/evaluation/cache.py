"""Embeddings of evaluation texts on disk, so a re-run (or a second pass over the same texts) only
encodes what is new. One SQLite file of float32 vectors keyed by ``embeddings.content_hash`` (model +
text): every evaluation shares it safely."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from knowledge import embeddings

EMBED_CHUNK = 256
DIMENSIONS = 384  # all-MiniLM-L6-v2, for the shape of an empty answer


class EmbeddingCache:
    """``cache(texts)`` = ``embeddings.embed(texts)`` as an array, read from / added to the file in
    ``directory`` (``None``: in memory only, for this run). ``encoded`` counts the texts it had to embed."""

    def __init__(self, directory: Path | None, progress: Callable[[str], None] | None = None) -> None:
        if directory is None:
            self.db = sqlite3.connect(":memory:")
        else:
            directory.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(directory / "embeddings.sqlite3")
        self.db.execute("CREATE TABLE IF NOT EXISTS embedding (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        self.progress = progress or (lambda message: None)
        self.encoded = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        keys = [embeddings.content_hash(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 900):
            chunk = unique[start : start + 900]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, vector FROM embedding WHERE key IN ({marks})"  # noqa: S608 - placeholders only
            for key, blob in self.db.execute(query, chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        missing = list({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        for start in range(0, len(missing), EMBED_CHUNK):
            chunk = missing[start : start + EMBED_CHUNK]
            vectors = np.asarray(embeddings.embed([t for _, t in chunk]), dtype=np.float32)
            self.db.executemany(
                "INSERT OR REPLACE INTO embedding VALUES (?, ?)",
                [(k, v.tobytes()) for (k, _), v in zip(chunk, vectors, strict=True)],
            )
            self.db.commit()
            found.update({k: v for (k, _), v in zip(chunk, vectors, strict=True)})
            self.encoded += len(chunk)
            self.progress(f"  encoded {start + len(chunk)}/{len(missing)} new texts")
        dim = len(next(iter(found.values()))) if found else DIMENSIONS
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, dim), dtype=np.float32)
