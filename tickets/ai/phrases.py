"""What the assistant says around its answers, in each language it writes (en, de, es, fr): greetings,
thanks, clarifying questions, the handover and "while you wait" lines, the answer's intro and outro. The
texts are data (``data/phrases.json``); a missing language falls back to English."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

PHRASES_FILE = Path(__file__).resolve().parent / "data" / "phrases.json"
LANGUAGES = ("en", "de", "es", "fr")


@cache
def table() -> dict[str, dict[str, str]]:
    return json.loads(PHRASES_FILE.read_text(encoding="utf-8"))


def language_of(code: str | None) -> str:
    code = (code or "en")[:2].lower()
    return code if code in LANGUAGES else "en"


def phrase(key: str, language: str | None = "en", **values: str) -> str:
    texts = table()[key]
    text = texts.get(language_of(language)) or texts["en"]
    return text.format(**values) if values else text
