"""Extractive answers made of whole units of a help article: a paragraph, a step list with all its items
numbered as in the article, a table kept whole or not quoted at all, a code block — never a fragment
that starts mid-list or mid-row.

The text (an article, or — as ``answer_local`` uses it — the retrieved passage, which the chunker made of
whole blocks of one section) is read as its blocks (``knowledge.chunking.markdown_blocks``); each block
is scored by its best sentence or list item against the question. The anchor is the best block of
``passage`` (a range of the text), or of the whole text when another block fits clearly better.
Table rows without their header and a numbered list starting past 1 (pieces of a block the chunker had
to cut) are never quoted. Around it the answer takes the
anchor's section — whole when it fits ``MAX_ANSWER_CHARS``, else the neighbouring blocks that fit the
question best — under its heading path. A table longer than ``MAX_TABLE_CHARS`` is left out and
pointed to; a list longer than the bound is quoted from its first item and pointed to. Sentences that
send the reader to another article (a link to ``/help/articles/``: cross-references, "see also",
"read the English article") are never quoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from knowledge import chunking, embeddings

MAX_ANSWER_CHARS = 1200
MAX_TABLE_CHARS = 700
ANCHOR_MARGIN = 0.05  # another block of the article must beat the passage's best by this much

LIST_ITEM_RE = re.compile(r"^([-*+]|\d+[.)])\s+")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜÀ-Ý0-9“\"(¿¡])")
_QUOTED_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜÀ-Ý0-9“\"(¿¡*\[])")  # also before **bold** / [link]
CROSS_REFERENCE_RE = re.compile(r"\]\(\s*/help/articles/")


def split_units(text: str) -> list[str]:
    """Paragraphs and list items, then sentences: the pieces a block is scored by (and the ``unit``
    evidence feature: the best piece's cosine similarity to the question)."""
    units: list[str] = []
    for block in re.split(r"\n\s*\n", text or ""):
        lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
        if not lines:
            continue
        if all(LIST_ITEM_RE.match(ln) for ln in lines):
            units.extend(lines)
            continue
        for sentence in _SENTENCE_RE.split(" ".join(lines)):
            if sentence.strip():
                units.append(sentence.strip())
    return units


@dataclass
class Unit:
    kind: str  # paragraph | list | table | code
    text: str
    start: int
    end: int
    headings: tuple[str, ...]


@dataclass
class Extract:
    text: str  # the quoted units, markdown, without frame or citation marker
    start: int  # offsets of the quoted range in the article body
    end: int
    heading_path: str
    similarity: float  # the anchor block's best piece, cosine to the question
    omitted: str = ""  # "table" or "list": something relevant is only in the article


def _kind(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines[0].lstrip().startswith(("```", "~~~")):
        return "code"
    if all(ln.lstrip().startswith("|") for ln in lines):
        header = len(lines) > 1 and re.match(r"^\|?[\s:|-]*-{3,}[\s:|-]*$", lines[1].strip())
        return "table" if header else "fragment"  # rows of a table the chunker cut: never quoted
    first = LIST_ITEM_RE.match(lines[0].lstrip())
    if first and all(LIST_ITEM_RE.match(ln.lstrip()) or ln[:1] in (" ", "\t") for ln in lines):
        return "list"
    return "paragraph"


def _without_cross_references(text: str) -> str:
    sentences = _QUOTED_SENTENCE_RE.split(" ".join(ln.strip() for ln in text.splitlines()))
    return " ".join(s for s in sentences if s.strip() and not CROSS_REFERENCE_RE.search(s)).strip()


def _starts_mid_way(text: str) -> bool:
    number = re.match(r"^\s*(\d+)[.)]\s", text)
    return number is not None and int(number.group(1)) != 1


def article_units(body: str) -> list[Unit]:
    """The article's quotable units in order; blank-line-separated items of one list are one list."""
    units: list[Unit] = []
    for block in chunking.markdown_blocks(body or ""):
        kind = _kind(block.text)
        text = _without_cross_references(block.text) if kind == "paragraph" else block.text
        previous = units[-1] if units else None
        continues = kind == "list" and previous and previous.kind == "list" and previous.headings == block.headings
        if not text or kind == "fragment" or (kind == "list" and not continues and _starts_mid_way(text)):
            continue
        if continues:
            previous.text = f"{previous.text}\n{block.text}"
            previous.end = block.end
            continue
        units.append(Unit(kind, text, block.start, block.end, block.headings))
    return units


@lru_cache(maxsize=4096)
def _piece_vectors(text: str) -> np.ndarray:
    pieces = split_units(text)
    return embeddings.embed(pieces) if pieces else np.zeros((0, 384), dtype=np.float32)


def _similarity(question_vec: np.ndarray, text: str) -> float:
    vectors = _piece_vectors(text)
    return float((vectors @ question_vec).max()) if len(vectors) else -1.0


def _bounded(unit: Unit, question_vec: np.ndarray, limit: int) -> tuple[str, str]:
    """A unit over the bound, cut at its own unit boundaries: a list from its first item on (the rest is
    pointed to), a paragraph's best sentence with its neighbours."""
    if unit.kind == "list":
        items = re.split(r"\n(?=\s{0,3}(?:[-*+]|\d+[.)])\s)", unit.text)
        kept: list[str] = []
        for item in items:
            if kept and sum(len(i) + 1 for i in kept) + len(item) > limit:
                break
            kept.append(item)
        return "\n".join(kept), "list" if len(kept) < len(items) else ""
    sentences = [s for s in _QUOTED_SENTENCE_RE.split(unit.text) if s.strip()]
    sims = [_similarity(question_vec, s) for s in sentences]
    best = int(np.argmax(sims))
    lo = hi = best
    length = len(sentences[best])
    while True:
        candidates = [i for i in (lo - 1, hi + 1) if 0 <= i < len(sentences)]
        if not candidates:
            break
        nxt = max(candidates, key=lambda i: sims[i])
        if length + len(sentences[nxt]) + 1 > limit:
            break
        length += len(sentences[nxt]) + 1
        lo, hi = min(lo, nxt), max(hi, nxt)
    return " ".join(sentences[lo : hi + 1]), ""


def _size(unit: Unit) -> int:
    return len(unit.text) + 2


def compose(
    question_vec: np.ndarray, body: str, *, passage: tuple[int, int] | None = None, limit: int = MAX_ANSWER_CHARS
) -> Extract | None:
    """The extract of ``body`` that answers the question; ``passage`` is the retrieved chunk's range."""
    units = article_units(body)
    if not units:  # nothing quotable: a table's rows without its header, a list from its middle
        return Extract("", 0, 0, "", -1.0, omitted="table") if "\n|" in f"\n{body}" else None
    sims = [_similarity(question_vec, u.text) for u in units]
    inside = [i for i, u in enumerate(units) if passage is None or (u.start < passage[1] and u.end > passage[0])]
    anchor = max(inside or range(len(units)), key=lambda i: sims[i])
    best = max(range(len(units)), key=lambda i: sims[i])
    if sims[best] >= sims[anchor] + ANCHOR_MARGIN:
        anchor = best
    lo = hi = anchor
    while lo > 0 and units[lo - 1].headings == units[anchor].headings:
        lo -= 1
    while hi < len(units) - 1 and units[hi + 1].headings == units[anchor].headings:
        hi += 1
    section = range(lo, hi + 1)

    def fits_whole(i: int) -> bool:
        return units[i].kind != "table" or len(units[i].text) <= MAX_TABLE_CHARS

    omitted = ""
    if sum(_size(units[i]) for i in section if fits_whole(i)) <= limit:
        chosen = [i for i in section if fits_whole(i)]
        omitted = "table" if len(chosen) < len(section) else ""
    else:
        chosen, length = [anchor], _size(units[anchor])
        if not fits_whole(anchor):
            chosen, length, omitted = [], 0, "table"
        a, b = anchor, anchor
        while True:
            candidates = [i for i in (a - 1, b + 1) if lo <= i <= hi]
            if not candidates:
                break
            lead_in = [i for i in candidates if i == anchor - 1 and units[i].text.rstrip().endswith(":")]
            nxt = lead_in[0] if lead_in else max(candidates, key=lambda i: sims[i])
            a, b = min(a, nxt), max(b, nxt)
            if not fits_whole(nxt):
                omitted = omitted or ("table" if nxt in (anchor - 1, anchor + 1) else "")
                continue
            if length + _size(units[nxt]) > limit:
                break
            chosen.append(nxt)
            length += _size(units[nxt])
        chosen.sort()
    if not chosen:
        text = ""
    elif len(chosen) == 1 and _size(units[chosen[0]]) > limit:
        text, cut = _bounded(units[chosen[0]], question_vec, limit)
        omitted = omitted or cut
    else:
        text = "\n\n".join(units[i].text for i in chosen)
    quoted = [units[i] for i in chosen] or [units[anchor]]
    return Extract(
        text=text,
        start=quoted[0].start,
        end=quoted[-1].end,
        heading_path=" > ".join(units[anchor].headings),
        similarity=sims[anchor],
        omitted=omitted,
    )
