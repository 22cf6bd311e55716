"""What an LLM returns for triage (structured outputs); compiled on first use, so warmed at start-up."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TriageOut(BaseModel):
    """Structured triage from an LLM; labels outside the known sets are discarded after parsing."""

    category: str = Field(description="Short snake_case topic, e.g. refund, sync, sign_in.")
    priority: Literal["low", "normal", "high", "urgent"]
    sentiment: Literal["negative", "neutral", "positive"]
    department: str = Field(description="One of the department slugs given, or 'none'.")
    language: str = Field(description="ISO 639-1 code of the customer's language.")
    needs_human: bool
    needs_human_reason: str
    summary: str = Field(description="One line, at most 140 characters.")
