"""Private, content-addressed files of the email channel under ``EMAIL_PRIVATE_ROOT`` (never static or
media): the raw MIME of every inbound email and the attachments we accepted. Same bytes, same name,
so a retried delivery writes nothing new and a rolled-back transaction leaves only a harmless orphan."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from django.conf import settings


def root() -> Path:
    return Path(settings.EMAIL_PRIVATE_ROOT)


def store(kind: str, data: bytes, *, suffix: str = "") -> tuple[str, str]:
    """Write ``data`` once under ``kind/``; return ``(storage name, sha256)``."""
    digest = hashlib.sha256(data).hexdigest()
    name = f"{kind}/{digest[:2]}/{digest}{suffix}"
    path = root() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.chmod(0o600)
        tmp.replace(path)
    return name, digest


def path_of(name: str) -> Path:
    """The file behind a stored name; refuses anything that would leave the private root."""
    base = root().resolve()
    path = (base / name).resolve()
    if base not in path.parents:
        raise FileNotFoundError(name)
    return path
