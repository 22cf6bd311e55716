"""Inbound MIME → a plain, bounded ``ParsedEmail``. Pure functions: no database, no settings writes.

Everything here must survive any bytes a mail server hands us: unknown or lying charsets, broken
boundaries, malformed headers, deep nesting, megabytes of HTML. Each risky step has a fallback and
the walk over parts is iterative with limits on parts and depth, so time and memory stay bounded.
"""

from __future__ import annotations

import codecs
import contextlib
import email
import email.header
import email.utils
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from html.parser import HTMLParser

MAX_PARTS = 500
MAX_DEPTH = 20
MAX_TEXT_CHARS = 1_000_000
MAX_HTML_CHARS = 2_000_000
MAX_HEADER_CHARS = 2_000
MAX_IDS = 50
MSGID_MAX = 500

# Charset names seen in the wild that Python does not know, mapped to the codec that decodes them.
CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "x-mac-cyrillic": "mac_cyrillic",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "windows-874": "cp874",
    "x-sjis": "shift_jis",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
    "ansi_x3.4-1968": "ascii",
    "iso-8859-8-i": "iso-8859-8",
    "utf8": "utf-8",
}

AUTO_SUBJECT_RE = re.compile(
    r"^\s*(?:auto(?:matic)?[\s-]*(?:reply|response|antwort)|autoreply|out\s+of\s+(?:the\s+)?office|"
    r"abwesenheitsnotiz|undeliverable|undelivered\s+mail|delivery\s+status\s+notification|returned\s+mail|"
    r"mail\s+delivery\s+(?:failed|failure|system)|failure\s+notice|delivery\s+failure)",
    re.IGNORECASE,
)
BOUNCE_LOCALPARTS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})
MSGID_RE = re.compile(r"<([^<>\s]{1,498})>")


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    inline: bool = False


@dataclass
class ParsedEmail:
    message_id: str = ""
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_address: str = ""
    from_name: str = ""
    from_display: str = ""
    to: list[str] = field(default_factory=list)
    top_type: str = "text/plain"
    text: str = ""
    reply_text: str = ""
    body_from_html: bool = False
    attachments: list[ParsedAttachment] = field(default_factory=list)
    auto_reason: str = ""
    defects: int = 0
    truncated: bool = False
    parts_seen: int = 0

    @property
    def is_automatic(self) -> bool:
        return bool(self.auto_reason)


def one_line(value: str, *, limit: int = MAX_HEADER_CHARS) -> str:
    """A value safe for a header: no CR/LF/NUL or other control characters, collapsed whitespace."""
    value = re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", " ", str(value))
    return " ".join(value.split())[:limit]


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset → text, never raising: unknown charsets fall back to UTF-8 / cp1252."""
    names = []
    if charset:
        name = charset.strip().strip('"').lower()
        names.append(CHARSET_ALIASES.get(name, name))
    names += ["utf-8"]
    for name in names:
        try:
            codecs.lookup(name)
            return data.decode(name)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    if names[0] != "utf-8":
        try:
            return data.decode(names[0], errors="replace")
        except (LookupError, ValueError):
            pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _raw_headers(msg: Message) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in msg.raw_items() if isinstance(msg, EmailMessage) else msg.items():
        out.setdefault(str(name).lower(), []).append(str(value))
    return out


def decode_header_value(raw: str) -> str:
    """RFC 2047 words → text, tolerant of unknown charsets and broken encoded words."""
    raw = raw[: MAX_HEADER_CHARS * 4]
    try:
        parts = email.header.decode_header(raw)
    except Exception:
        return one_line(raw)
    out = []
    for chunk, charset in parts:
        out.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    text = "".join(out) if len(parts) > 1 else (out[0] if out else "")
    return one_line(text)


def _header(msg: Message, raw: dict[str, list[str]], name: str) -> str:
    """The decoded header via the modern policy, else via a tolerant fallback."""
    with contextlib.suppress(Exception):  # the stdlib's header parser has raised on malformed input
        value = msg.get(name)
        if value is not None:
            return one_line(str(value))
    values = raw.get(name.lower())
    return decode_header_value(values[0]) if values else ""


def _ids(value: str) -> list[str]:
    return [f"<{m}>" for m in MSGID_RE.findall(value)][:MAX_IDS]


def normalize_message_id(value: str) -> str:
    """``<id@host>`` from a header value (the first bracketed id, else the bare token), bounded."""
    found = MSGID_RE.search(value or "")
    if found:
        return f"<{found.group(1)}>"
    token = "".join(one_line(value or "").split())[: MSGID_MAX - 2]
    return f"<{token}>" if token else ""


def _display_name(name: str, raw: dict[str, list[str]]) -> str:
    """The sender's name. The stdlib's address parser keeps the folding space between the RFC 2047
    encoded words a long name is split into ("똠 방각하"); RFC 2047 says it is dropped, as
    ``decode_header`` does. That decoding is used when it differs from the parser's only by spaces."""
    value = (raw.get("from") or [""])[0]
    if "=?" in value:
        legacy = decode_header_value(email.utils.parseaddr(value)[0])
        if legacy and legacy.replace(" ", "") == one_line(name).replace(" ", ""):
            return one_line(legacy, limit=200)
    return one_line(name, limit=200)


def _address(msg: Message, raw: dict[str, list[str]]) -> tuple[str, str, str]:
    display = _header(msg, raw, "from")
    with contextlib.suppress(Exception):
        header = msg.get("from")
        addresses = getattr(header, "addresses", ())
        if addresses:
            first = addresses[0]
            return first.addr_spec.strip().strip("<>"), _display_name(first.display_name, raw), display
    name, addr = email.utils.parseaddr(display)
    return addr.strip(), one_line(name, limit=200), display


def _recipients(msg: Message, raw: dict[str, list[str]]) -> list[str]:
    out = []
    for name in ("to", "cc", "delivered-to", "x-original-to"):
        for value in raw.get(name, []):
            for _, addr in email.utils.getaddresses([decode_header_value(value)]):
                if addr and "@" in addr:
                    out.append(addr.strip().lower())
    return list(dict.fromkeys(out))[:100]


class _HTMLText(HTMLParser):
    """HTML → readable text with the stdlib parser (no tree, so nesting depth costs nothing)."""

    BLOCK = frozenset(
        [
            "p",
            "div",
            "br",
            "tr",
            "li",
            "ul",
            "ol",
            "table",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "blockquote",
            "pre",
            "hr",
            "section",
            "article",
            "header",
            "footer",
        ]
    )
    SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.quote = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif tag == "blockquote":
            self.quote += 1
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in self.BLOCK:
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append(" ")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
            self.out.append("\n")
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if self.skipping:
            return
        if self.quote:
            data = "\n".join("> " + line for line in data.split("\n"))
        self.out.append(data)


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    with contextlib.suppress(Exception):  # html.parser is lenient; this is belt and braces
        parser.feed(html[:MAX_HTML_CHARS])
        parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.out).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


QUOTE_HEADER_RES = [
    re.compile(r"^\s*On\b.{0,400}\bwrote:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*Am\b.{0,400}\bschrieb.{0,100}:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*Le\b.{0,400}\ba écrit\s*:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*El\b.{0,400}\bescribió\s*:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^\s*-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}", re.IGNORECASE),
]
OUTLOOK_FROM_RE = re.compile(r"^\s*\*?(?:From|Von|De)\s*:\*?\s+\S", re.IGNORECASE)
OUTLOOK_NEXT_RE = re.compile(r"^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoyé|To|An)\s*:", re.IGNORECASE)


def strip_quoted(text: str) -> str:
    """The new part of a reply: drops ``>`` lines and everything from a reply header on. If that would
    leave nothing (a message that is all quote), the whole text is kept: never lose what was sent."""
    lines = text.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        pair = f"{line} {lines[i + 1]}" if i + 1 < len(lines) else line
        if any(rx.match(line) or rx.match(pair) for rx in QUOTE_HEADER_RES[:4]) or QUOTE_HEADER_RES[4].match(line):
            break
        if re.match(r"^\s*_{10,}\s*$", line) and i + 1 < len(lines) and OUTLOOK_FROM_RE.match(lines[i + 1]):
            break
        if OUTLOOK_FROM_RE.match(line) and any(OUTLOOK_NEXT_RE.match(n) for n in lines[i + 1 : i + 4]):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    result = "\n".join(kept).strip()
    return result or text.strip()


def _part_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if data is None:
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    return data


def _part_text(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(_part_bytes(part), charset)


def _filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is None:
        return ""
    if isinstance(name, tuple):  # RFC 2231 leftovers under compat paths
        name = decode_bytes(bytes(name[2], "latin-1"), name[0])
    return decode_header_value(str(name))[:255]


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()[:100]
    except Exception:
        return "application/octet-stream"


def auto_reason(msg: Message, raw: dict[str, list[str]], from_address: str, top_type: str, subject: str) -> str:
    """Why this message is automatic (bounce, auto-reply, list mail) per RFC 3834 practice, or ""."""
    first = {k: (v[0].strip().lower() if v else "") for k, v in raw.items()}
    if first.get("auto-submitted", "no") not in ("", "no"):
        return "auto-submitted"
    if first.get("precedence") in ("bulk", "junk", "list", "auto_reply"):
        return "precedence"
    if any(h in first for h in ("x-autoreply", "x-autorespond", "x-autogenerated", "x-auto-response")):
        return "autoreply-header"
    if first.get("x-failed-recipients"):
        return "bounce"
    if "return-path" in first and first["return-path"].strip("<> \t") == "":
        return "null-return-path"
    if from_address.split("@", 1)[0].lower() in BOUNCE_LOCALPARTS:
        return "bounce-sender"
    if top_type == "multipart/report":
        return "delivery-report"
    if "list-id" in first or "list-unsubscribe" in first:
        return "mailing-list"
    if AUTO_SUBJECT_RE.match(subject or ""):
        return "auto-subject"
    return ""


def parse(raw: bytes) -> ParsedEmail:
    """Parse raw MIME. Never raises on content; callers bound ``raw``'s size beforehand."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    raw_headers = _raw_headers(msg)
    out = ParsedEmail()
    out.top_type = _content_type(msg)
    out.subject = _header(msg, raw_headers, "subject")
    out.from_address, out.from_name, out.from_display = _address(msg, raw_headers)
    out.to = _recipients(msg, raw_headers)
    out.message_id = normalize_message_id((raw_headers.get("message-id") or [""])[0])
    out.in_reply_to = _ids(" ".join(raw_headers.get("in-reply-to", [])))
    out.references = _ids(" ".join(raw_headers.get("references", [])))

    plain: list[str] = []
    html: list[str] = []
    nested_plain: list[str] = []
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    while stack:
        part, depth, in_attached = stack.pop()
        out.parts_seen += 1
        out.defects += len(getattr(part, "defects", ()))
        if out.parts_seen > MAX_PARTS:
            out.truncated = True
            break
        ctype = _content_type(part)
        name = _filename(part)
        disposition = _disposition(part)
        if part.is_multipart():
            if ctype.startswith("message/") and (name or disposition == "attachment"):
                try:
                    inner = part.get_payload(0).as_bytes(policy=policy.compat32)
                except Exception:
                    inner = b""
                out.attachments.append(ParsedAttachment(name, ctype, inner, inline=disposition == "inline"))
            if depth >= MAX_DEPTH:
                out.truncated = True
                continue
            try:
                children = list(part.iter_parts()) if isinstance(part, EmailMessage) else part.get_payload()
            except Exception:
                children = []
            nested = in_attached or ctype == "message/rfc822"
            stack.extend((child, depth + 1, nested) for child in reversed(children) if isinstance(child, Message))
            continue
        if ctype.startswith("multipart/"):  # a broken multipart (no boundary found): its text is the body
            (nested_plain if in_attached else plain).append(_part_text(part)[:MAX_TEXT_CHARS])
            continue
        is_attachment = bool(name) or disposition == "attachment"
        if is_attachment:
            out.attachments.append(ParsedAttachment(name, ctype, _part_bytes(part), inline=disposition == "inline"))
        elif ctype == "text/plain" or (ctype.startswith("text/") and ctype not in ("text/html",) and part is msg):
            (nested_plain if in_attached else plain).append(_part_text(part)[:MAX_TEXT_CHARS])
        elif ctype == "text/html" and not in_attached:
            html.append(_part_text(part)[:MAX_HTML_CHARS])
        elif ctype in ("message/delivery-status", "message/disposition-notification", "text/rfc822-headers"):
            continue
        elif part is msg and not ctype.startswith("text/"):  # a non-text root (an image, a PDF) is the attachment
            out.attachments.append(ParsedAttachment(name, ctype, _part_bytes(part)))

    if plain:
        text = "\n\n".join(t.strip() for t in plain if t.strip())
    elif html:
        text = "\n\n".join(html_to_text(h) for h in html)
        out.body_from_html = True
    else:
        text = "\n\n".join(t.strip() for t in nested_plain if t.strip())
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > MAX_TEXT_CHARS:
        text, out.truncated = text[:MAX_TEXT_CHARS], True
    out.text = text.strip()
    out.reply_text = strip_quoted(out.text) if out.text else ""
    out.auto_reason = auto_reason(msg, raw_headers, out.from_address, out.top_type, out.subject)
    return out
