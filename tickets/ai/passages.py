"""The injection guard's verdicts on knowledge-base passages, judged once per passage and stored on it
through the knowledge app's services, so a question never waits for a passage to be scanned twice."""

from __future__ import annotations

from knowledge.selectors import chunk_injection_flags, chunks_unscanned
from knowledge.services import chunk_injection_verdicts_save
from tickets.ai import guard


def kb_passages_scan(*, chunks: dict[int, str]) -> dict[int, bool]:
    """The guard's verdict on passages (``{chunk_id: text}``), stored on each chunk. One batched
    embedding call; returns ``{chunk_id: flagged}``."""
    ids = list(chunks)
    verdicts = guard.scan_many([chunks[i] for i in ids], source="passage")
    found = {pk: (verdict.flagged, verdict.score) for pk, verdict in zip(ids, verdicts, strict=True)}
    chunk_injection_verdicts_save(verdicts=found)
    return {pk: flagged for pk, (flagged, _score) in found.items()}


def kb_passages_flags(*, chunks: dict[int, str]) -> dict[int, bool]:
    """``{chunk_id: flagged}`` for retrieved passages: stored verdicts, scanning only the new ones."""
    known = chunk_injection_flags(ids=list(chunks))
    todo = {pk: text for pk, text in chunks.items() if pk not in known}
    if todo:
        known.update(kb_passages_scan(chunks=todo))
    return known


def kb_passages_scan_pending(*, limit: int | None = 500, batch: int = 32, namespace: str | None = None) -> int:
    """Scan passages never scanned (new or re-indexed articles) ahead of the first question that
    retrieves them (beat, housekeeping queue): the customer-visible ones, or a whole ``namespace``.
    Returns how many were scanned."""
    pending = chunks_unscanned(namespace=namespace, limit=limit)
    for start in range(0, len(pending), batch):
        kb_passages_scan(chunks=dict(pending[start : start + batch]))
    return len(pending)
