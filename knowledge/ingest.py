"""Files → (metadata, markdown body). Markdown, plain text, HTML, PDF and Word documents.

Every failure is an ``IngestError`` whose message says what is wrong with that file (too large,
empty, not the type its name says, unreadable); callers report it and carry on with the next file.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from supportflow import archives

MAX_BYTES = 10 * 1024 * 1024
MAX_UNPACKED_BYTES = 50 * 1024 * 1024  # a .docx is a zip: what it may unpack to (zip bombs)
MAX_ZIP_ENTRIES = 2_000
SUPPORTED = {".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx"}
FRONT_MATTER_RE = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


class IngestError(Exception):
    """A file that cannot be ingested; the message is for the person who gave it."""


@dataclass
class Document:
    title: str
    body: str
    source_name: str
    category: str = ""
    tags: list[str] = field(default_factory=list)
    language: str = "en"
    status: str = ""
    slug: str = ""


def _decode(data: bytes, name: str) -> str:
    utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
    if not utf16 and b"\x00" in data:  # text has no NUL bytes; executables and archives do
        raise IngestError(f"{name}: this is a binary file, not text (it contains NUL bytes).")
    for encoding in ("utf-8-sig", "utf-16") if utf16 else ("utf-8-sig",):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{name}: not a text file in a known encoding (UTF-8, UTF-16, Windows-1252).") from exc


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    match = FRONT_MATTER_RE.match(text)
    if not match:
        return {}, text
    meta = {}
    for line in match.group(1).splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            meta[key.strip().lower()] = value.strip().strip("\"'")
    return meta, text[match.end() :]


def _title_from(body: str, fallback: str) -> tuple[str, str]:
    """The first top-level heading becomes the title (and leaves the body); else the file name."""
    match = re.match(r"\A\s*#\s+(.+?)\s*\n", body)
    if match:
        return match.group(1).strip(), body[match.end() :]
    return fallback, body


class _HTMLToMarkdown(HTMLParser):
    BLOCKS = {"p", "div", "section", "article", "br", "tr", "table", "ul", "ol", "pre", "blockquote"}
    SKIP = {"script", "style", "noscript", "template", "head", "nav", "footer", "svg"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag == "title":
            self._in_title = True
        elif re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in self.BLOCKS:
            self.out.append("\n\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "title":
            self._in_title = False
        elif re.fullmatch(r"h[1-6]", tag) or tag in self.BLOCKS:
            self.out.append("\n\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self.skip:
            self.out.append(re.sub(r"\s+", " ", data))


def _html(text: str) -> tuple[str, str]:
    parser = _HTMLToMarkdown()
    parser.feed(text)
    parser.close()
    body = re.sub(r"\n{3,}", "\n\n", "".join(parser.out)).strip()
    return parser.title.strip(), body


def _pdf(data: bytes, name: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise IngestError(f"{name}: the PDF is password-protected; upload an unprotected copy.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise IngestError(f"{name}: the PDF could not be read ({type(exc).__name__}); is it damaged?") from exc
    return "\n\n".join(page.strip() for page in pages if page.strip())


def _docx(data: bytes, name: str) -> str:
    import zipfile

    from docx import Document as WordDocument

    problem = archives.zip_problem(data, max_unpacked_bytes=MAX_UNPACKED_BYTES, max_entries=MAX_ZIP_ENTRIES)
    if problem == archives.NOT_A_ZIP:
        raise IngestError(f"{name}: not a readable Word (.docx) document.")
    if problem == archives.ZIP_BOMB:
        raise IngestError(f"{name}: it would unpack to more than {MAX_UNPACKED_BYTES // 2**20} MB; refused.")
    try:
        document = WordDocument(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, SyntaxError) as exc:  # lxml's XMLSyntaxError is one
        raise IngestError(f"{name}: not a readable Word (.docx) document.") from exc
    lines = []
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name or "") if paragraph.style is not None else ""
        level = re.match(r"Heading (\d)", style)
        if style == "Title" or level:
            lines.append("#" * (int(level.group(1)) if level else 1) + " " + text)
        elif style.startswith("List"):
            lines.append("- " + text)
        else:
            lines.append(text)
    return "\n\n".join(lines)


def parse(name: str, data: bytes) -> Document:
    """Parse one file's bytes; ``name`` gives the type by its extension."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED:
        raise IngestError(
            f"{name}: {suffix or 'no extension'} files are not supported (use .md, .txt, .html, .pdf or .docx)."
        )
    if len(data) > MAX_BYTES:
        raise IngestError(f"{name}: {len(data) / 1e6:.1f} MB is over the {MAX_BYTES // 1_000_000} MB limit.")
    if not data.strip():
        raise IngestError(f"{name}: the file is empty.")
    stem_title = Path(name).stem.replace("-", " ").replace("_", " ").strip().capitalize()
    meta: dict[str, str] = {}
    if suffix == ".pdf":
        if not data.startswith(b"%PDF"):
            raise IngestError(f"{name}: this is not a PDF file.")
        title, body = _title_from(_pdf(data, name), stem_title)
    elif suffix == ".docx":
        title, body = _title_from(_docx(data, name), stem_title)
    elif suffix in {".html", ".htm"}:
        html_title, body = _html(_decode(data, name))
        title, body = _title_from(body, html_title or stem_title)
    else:
        meta, body = _front_matter(_decode(data, name).replace("\r\n", "\n"))
        title, body = _title_from(body, meta.get("title") or stem_title)
        title = meta.get("title") or title
    body = body.replace("\x00", "").strip()
    if not body:
        raise IngestError(f"{name}: no text could be found in it.")
    return Document(
        title=title[:255],
        body=body,
        source_name=Path(name).name,
        category=meta.get("category", ""),
        tags=[t.strip() for t in meta.get("tags", "").split(",") if t.strip()],
        language=(meta.get("language") or "en")[:16],
        status=meta.get("status", ""),
        slug=meta.get("slug", ""),
    )
