"""Every LLM call in SupportFlow goes through here: ``llm.chat(task=…, messages=…, schema=…)``.

``LLMUnavailable`` (with a ``reason``) is the only exception a caller handles; it then falls back to
the local provider. ``provider_for(task)`` says up front whether an LLM endpoint is configured at all.
"""

from __future__ import annotations

from supportflow.llm import breaker
from supportflow.llm.client import (
    REASONS,
    LLMResult,
    LLMUnavailable,
    chat,
    cost_for,
    get_client,
    model_for,
    provider_for,
    register_schema,
    reset_client,
    response_format_for,
    warm_up,
)

__all__ = [
    "REASONS",
    "LLMResult",
    "LLMUnavailable",
    "breaker",
    "chat",
    "cost_for",
    "get_client",
    "model_for",
    "provider_for",
    "register_schema",
    "reset_client",
    "response_format_for",
    "warm_up",
]
