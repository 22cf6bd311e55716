"""What the core knows about the AI's configuration versions, without entering the AI wing: which
placeholders a prompt may use, and the generation stamp that tells every process to re-read the
versions (``tickets.ai.versions`` keeps them per process and compares the stamp on each message)."""

from __future__ import annotations

import string

from supportflow import generations

GENERATION_KEY = "sf:ai:config:generation"

# What each prompt may refer to: what the pipeline fills in. ``{canary}`` is required, so the output
# guard can tell a leaked system prompt (``tickets.ai.guard``).
PROMPT_FIELDS = {
    "triage_prompt": frozenset({"site", "departments", "canary"}),
    "reply_prompt": frozenset({"site", "language", "canary"}),
}
REQUIRED_FIELD = "canary"


def prompt_problems(field: str, text: str) -> list[str]:
    """What is wrong with a prompt's placeholders (empty when it is usable): unknown names, positional
    or attribute lookups, a missing ``{canary}``, unbalanced braces. Literal braces are written ``{{ }}``."""
    allowed = PROMPT_FIELDS[field]
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        unknown = sorted(names - allowed)
        if not unknown:
            text.format(**dict.fromkeys(allowed, "x"))  # format specs and conversions must work too
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        return [str(exc)]
    return [
        *(f"unknown placeholder {{{name}}}" for name in unknown),
        *([f"missing placeholder {{{REQUIRED_FIELD}}}"] if REQUIRED_FIELD not in names else []),
    ]


def generation() -> str | None:
    """The current stamp; None when the cache cannot be read (then the rows are read every time)."""
    return generations.current(GENERATION_KEY)


def invalidate() -> None:
    """A version or an experiment changed: every process re-reads the rows on its next message."""
    generations.bump(GENERATION_KEY)
