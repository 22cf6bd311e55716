"""Markdown → chunks that respect headings and paragraphs, bounded in tokens, with overlap.

Each chunk keeps its heading path ("Sync > Android > Reset") and the character offsets of the text it
covers in the article body, so a citation can point into the article. Code fences are never split.

Token counts are approximate (words and punctuation × 1.3, close to WordPiece for English prose);
the bound keeps every chunk inside the embedding model's 256-token window with room for the title
and heading path that are prepended when embedding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
TOKEN_RE = re.compile(r"\w+|[^\w\s]")
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
MAX_TOKENS = 180
OVERLAP_TOKENS = 30


def count_tokens(text: str) -> int:
    return int(len(TOKEN_RE.findall(text)) * 1.3 + 0.5)


@dataclass
class Block:
    """A paragraph, list or code fence of the body, with its offsets and heading path."""

    start: int
    end: int
    text: str
    headings: tuple[str, ...]


@dataclass
class Chunk:
    position: int
    start: int
    end: int
    text: str
    heading_path: str
    tokens: int = field(default=0)


def markdown_blocks(body: str) -> list[Block]:
    """The body's paragraphs, lists, tables and code fences, in order, with offsets and heading path."""
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    lines = body.splitlines(keepends=True)
    offset = 0
    current_start: int | None = None
    current: list[str] = []
    in_fence = False

    def flush(end: int) -> None:
        nonlocal current, current_start
        text = "".join(current).strip()
        if text and current_start is not None:
            lead = len("".join(current)) - len("".join(current).lstrip())
            start = current_start + lead
            blocks.append(Block(start, start + len(text), text, tuple(h for _, h in headings)))
        current, current_start = [], None

    for line in lines:
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            if current_start is None:
                current_start = offset
            current.append(line)
            in_fence = not in_fence
            if not in_fence:
                flush(offset + len(line))
        elif in_fence:
            current.append(line)
        elif (match := HEADING_RE.match(stripped)) is not None:
            flush(offset)
            level = len(match.group(1))
            headings = [(lvl, text) for lvl, text in headings if lvl < level] + [(level, match.group(2).strip())]
        elif not stripped:
            flush(offset)
        else:
            if current_start is None:
                current_start = offset
            current.append(line)
        offset += len(line)
    flush(offset)
    return blocks


def _split_long(block: Block, max_tokens: int) -> list[Block]:
    """A block over the limit is cut at sentence ends, then at word boundaries."""
    if count_tokens(block.text) <= max_tokens:
        return [block]
    pieces: list[Block] = []
    start, buffer = 0, ""
    units = list(re.finditer(r"\S+\s*", block.text)) if "```" in block.text else None
    spans = (
        [(m.start(), m.end()) for m in units]
        if units
        else [(m.start(), m.end()) for m in re.finditer(r"[^.!?]+(?:[.!?]+|$)\s*", block.text)]
    )
    for s, e in spans:
        piece = block.text[s:e]
        if count_tokens(piece) > max_tokens:  # one enormous sentence: fall back to words
            for word in re.finditer(r"\S+\s*", piece):
                if buffer and count_tokens(buffer + word.group()) > max_tokens:
                    pieces.append(_sub(block, start, buffer))
                    start, buffer = s + word.start(), ""
                if not buffer:
                    start = s + word.start()
                buffer += word.group()
            continue
        if buffer and count_tokens(buffer + piece) > max_tokens:
            pieces.append(_sub(block, start, buffer))
            buffer = ""
        if not buffer:
            start = s
        buffer += piece
    if buffer.strip():
        pieces.append(_sub(block, start, buffer))
    return pieces


def _sub(block: Block, start: int, text: str) -> Block:
    stripped = text.rstrip()
    return Block(block.start + start, block.start + start + len(stripped), stripped, block.headings)


def chunk_markdown(body: str, *, max_tokens: int = MAX_TOKENS, overlap_tokens: int = OVERLAP_TOKENS) -> list[Chunk]:
    """Pack blocks of one heading section into chunks; the last block of a chunk is repeated at the
    start of the next one in the same section when it fits the overlap budget."""
    chunks: list[Chunk] = []
    group: list[Block] = []

    def emit() -> None:
        if not group:
            return
        start, end = group[0].start, group[-1].end
        chunks.append(
            Chunk(
                position=len(chunks),
                start=start,
                end=end,
                text=body[start:end],
                heading_path=" > ".join(group[0].headings),
                tokens=count_tokens(body[start:end]),
            )
        )

    for block in (piece for b in markdown_blocks(body) for piece in _split_long(b, max_tokens)):
        if group and (
            block.headings != group[-1].headings or count_tokens(body[group[0].start : block.end]) > max_tokens
        ):
            emit()
            carry = group[-1]
            same_section = carry.headings == block.headings
            fits = (
                count_tokens(carry.text) <= overlap_tokens and count_tokens(body[carry.start : block.end]) <= max_tokens
            )
            group = [carry] if same_section and fits else []
        group.append(block)
    emit()
    return chunks
