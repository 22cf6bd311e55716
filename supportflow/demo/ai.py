"""What the demo takes from the AI wing (``tickets.ai``), in one place: a move there changes this file only."""

from __future__ import annotations

from tickets.ai.answer import INTRO, OUTRO, SEE_ALSO
from tickets.ai.rules import CATEGORY_DEPARTMENT

__all__ = ["CATEGORY_DEPARTMENT", "INTRO", "OUTRO", "SEE_ALSO", "triage_model_train"]


def triage_model_train():
    """Train and store a new triage model version (imported late: it loads the embedding model)."""
    from tickets.ai.triage import local as triage_local

    return triage_local.train()
