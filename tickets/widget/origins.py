"""Allowed origins of a widget site: ``scheme://host[:port]``, nothing else.

They are written into the ``Content-Security-Policy`` header of the widget's pages (``frame-ancestors``),
so anything that is not a plain origin — a path, a wildcard, a quote, a semicolon, a space — is refused
here, before it is stored.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MAX_ORIGINS = 20
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_normalize(value: str) -> str:
    """``value`` as a canonical origin (lower case, default port dropped) or ``ValidationError``."""
    raw = (value or "").strip()
    problem = _("“%(origin)s” is not an origin: write scheme://host[:port], e.g. https://www.example.com.")
    if not raw or any(ch in raw for ch in " \t;,'\"*\\") or len(raw) > 200:
        raise ValidationError(problem % {"origin": raw})
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(problem % {"origin": raw}) from exc
    host = (parts.hostname or "").lower()
    if (
        parts.scheme not in _DEFAULT_PORTS
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or parts.password is not None
        or not _HOST.match(host)
    ):
        raise ValidationError(problem % {"origin": raw})
    suffix = f":{port}" if port is not None and port != _DEFAULT_PORTS[parts.scheme] else ""
    return f"{parts.scheme}://{host}{suffix}"


def origins_parse(text: str) -> list[str]:
    """One origin per line (or a list): canonical, without duplicates, at least one, at most ``MAX_ORIGINS``."""
    lines = text.splitlines() if isinstance(text, str) else list(text)
    origins = list(dict.fromkeys(origin_normalize(line) for line in lines if line.strip()))
    if not origins:
        raise ValidationError(_("Give at least one origin that may show the widget."))
    if len(origins) > MAX_ORIGINS:
        raise ValidationError(_("At most %(n)d origins per site.") % {"n": MAX_ORIGINS})
    return origins
