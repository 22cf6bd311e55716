"""Private, content-addressed files of the email channel in the ``"email"`` storage (``STORAGES``: the
folder ``EMAIL_PRIVATE_ROOT``, or a private S3 bucket or prefix; never static or media): the raw MIME of
every inbound email and the attachments we accepted. Same bytes, same name, so a retried delivery writes
nothing new and a rolled-back transaction leaves only a harmless orphan."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from django.core.exceptions import SuspiciousOperation
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from supportflow.storage import STORAGE_ERRORS, StorageUnavailable, is_missing

logger = logging.getLogger(__name__)


def backend() -> Storage:
    return storages["email"]


def store(kind: str, data: bytes, *, suffix: str = "") -> tuple[str, str]:
    """Write ``data`` once under ``kind/``; return ``(storage name, sha256)``.

    Raises ``StorageUnavailable`` when the store fails (nothing was stored; the sender retries)."""
    digest = hashlib.sha256(data).hexdigest()
    name = f"{kind}/{digest[:2]}/{digest}{suffix}"
    files = backend()
    try:
        if not files.exists(name):
            files.save(name, ContentFile(data))
    except STORAGE_ERRORS as exc:
        raise StorageUnavailable(f"{name} could not be stored: {exc}") from exc
    return name, digest


def open_file(name: str) -> File:
    """The stored file, open for reading. ``FileNotFoundError`` when it is gone (or the name would leave
    the storage); ``StorageUnavailable`` when the store fails."""
    try:
        return backend().open(name, "rb")
    except (*STORAGE_ERRORS, SuspiciousOperation, ValueError) as exc:  # ValueError: a NUL in a local name
        if is_missing(exc) or isinstance(exc, ValueError):
            raise FileNotFoundError(name) from exc
        raise StorageUnavailable(f"{name} could not be read: {exc}") from exc


def delete_unreferenced(names: Iterable[str]) -> int:
    """Delete the stored files among ``names`` that no attachment or email record names any more (the
    same bytes may belong to another ticket). Call it after the rows are gone, on commit. A file that
    cannot be deleted now is logged and stays (an orphan, never a missing file); returns how many went."""
    from tickets.models import Attachment, EmailRecord

    names = {name for name in names if name}
    if not names:
        return 0
    kept = set(Attachment.objects.filter(storage_name__in=names).values_list("storage_name", flat=True))
    kept |= set(EmailRecord.objects.filter(raw_name__in=names).values_list("raw_name", flat=True))
    deleted = 0
    files = backend()
    for name in sorted(names - kept):
        try:
            files.delete(name)
        except STORAGE_ERRORS as exc:
            logger.warning("stored email file %s could not be deleted: %s", name, exc)
            continue
        deleted += 1
    return deleted
