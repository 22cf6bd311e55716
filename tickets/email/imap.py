"""Poll a mailbox over IMAP (beat, every minute when ``IMAP_URL`` is set).

Unseen messages are fetched with ``BODY.PEEK[]`` and flagged ``\\Seen`` only after the service stored
them, so a crash in between means the next poll takes them again — a no-op then, because inbound mail
is idempotent on its Message-ID. Mail we refuse (too large, not an email) is flagged ``\\Seen
\\Flagged`` and stays on the server for a person to look at.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.cache import cache

from tickets.email import inbound

logger = logging.getLogger(__name__)
LOCK_KEY = "sf:email:imap-poll"


@dataclass
class ImapConfig:
    secure: bool
    host: str
    port: int
    user: str
    password: str
    mailbox: str = "INBOX"


@dataclass
class PollResult:
    fetched: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    errors: int = 0

    def as_dict(self) -> dict:
        return {"fetched": self.fetched, **self.outcomes, "refused": self.refused, "errors": self.errors}


def config_from_url(url: str) -> ImapConfig:
    """``imaps://user:pass@host:993/INBOX`` (or ``imap://`` for a plain local server)."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise ValueError("IMAP_URL must look like imaps://user:password@host:993/INBOX")
    secure = parts.scheme == "imaps"
    return ImapConfig(
        secure=secure,
        host=parts.hostname,
        port=parts.port or (993 if secure else 143),
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
    )


def _connect(cfg: ImapConfig) -> imaplib.IMAP4:
    timeout = settings.IMAP_TIMEOUT_S
    if cfg.secure:
        conn = imaplib.IMAP4_SSL(cfg.host, cfg.port, ssl_context=ssl.create_default_context(), timeout=timeout)
    else:
        conn = imaplib.IMAP4(cfg.host, cfg.port, timeout=timeout)
    conn.login(cfg.user, cfg.password)
    typ, _ = conn.select(_quote(cfg.mailbox))
    if typ != "OK":
        raise imaplib.IMAP4.error(f"cannot select mailbox {cfg.mailbox!r}")
    return conn


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _size(conn: imaplib.IMAP4, uid: bytes) -> int:
    typ, data = conn.uid("FETCH", uid, "(RFC822.SIZE)")
    found = re.search(rb"RFC822\.SIZE (\d+)", data[0] if data and isinstance(data[0], bytes) else b"")
    return int(found.group(1)) if typ == "OK" and found else 0


def _body(conn: imaplib.IMAP4, uid: bytes) -> bytes | None:
    typ, data = conn.uid("FETCH", uid, "(BODY.PEEK[])")
    if typ != "OK":
        return None
    for item in data or ():
        if isinstance(item, tuple) and len(item) == 2:
            return item[1]
    return None


def imap_poll(*, url: str | None = None, limit: int | None = None) -> dict:
    """Fetch and store unseen mail; returns counts by outcome. One poll at a time (cache lock)."""
    url = url if url is not None else settings.IMAP_URL
    if not url:
        return {"skipped": "IMAP_URL is not set"}
    cfg = config_from_url(url)
    limit = limit or settings.IMAP_POLL_BATCH
    if not cache.add(LOCK_KEY, 1, timeout=int(settings.IMAP_TIMEOUT_S * 4) + 60):
        return {"skipped": "another poll is running"}
    result = PollResult()
    try:
        conn = _connect(cfg)
        try:
            typ, data = conn.uid("SEARCH", None, "UNSEEN")
            uids = (data[0] or b"").split() if typ == "OK" and data else []
            for uid in uids[:limit]:
                _poll_one(conn, uid, result)
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                conn.logout()
    finally:
        cache.delete(LOCK_KEY)
    return result.as_dict()


def _poll_one(conn: imaplib.IMAP4, uid: bytes, result: PollResult) -> None:
    if _size(conn, uid) > settings.EMAIL_MAX_MESSAGE_BYTES:
        conn.uid("STORE", uid, "+FLAGS", "(\\Seen \\Flagged)")
        result.refused += 1
        logger.warning("IMAP message uid %s is larger than EMAIL_MAX_MESSAGE_BYTES; flagged, left on the server", uid)
        return
    raw = _body(conn, uid)
    if raw is None:
        result.errors += 1
        return
    result.fetched += 1
    try:
        outcome = inbound.email_receive(raw=raw)
    except inbound.EmailRejected as exc:
        conn.uid("STORE", uid, "+FLAGS", "(\\Seen \\Flagged)")
        result.refused += 1
        logger.warning("IMAP message uid %s refused: %s", uid, exc)
        return
    except Exception:
        # Left unseen: the next poll tries again (nothing is lost; the service is idempotent).
        result.errors += 1
        logger.exception("IMAP message uid %s could not be stored; it stays unseen", uid)
        return
    conn.uid("STORE", uid, "+FLAGS", "(\\Seen)")
    result.outcomes[outcome.status] = result.outcomes.get(outcome.status, 0) + 1
