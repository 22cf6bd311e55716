"""Files through Django's storage API (``django.core.files.storage.storages``), two aliases:

- ``"default"``: uploads (knowledge-base files waiting for the worker), ``MEDIA_ROOT`` locally;
- ``"email"``: the email channel's raw MIME and attachments, ``EMAIL_PRIVATE_ROOT`` locally.

Both are local folders unless ``SF_STORAGE=s3`` puts them in an S3-compatible bucket (settings,
docs/deploy.md "Object storage"). Neither is ever served as media: files reach people only through the
access-checked views, so the private backends here refuse to make URLs at all."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import SuspiciousOperation

# What a storage call raises when the file store fails (a full disk, a refused or unreachable bucket).
STORAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, BotoCoreError, ClientError)


class StorageUnavailable(Exception):
    """The file store failed: nothing was stored or read. Transient; the caller tries again later."""


class NoURLMixin:
    """For private storages: a URL (public or signed) would bypass the access checks of our views."""

    def url(self, name, *args, **kwargs):
        raise ValueError(f"{name}: private files have no URL; they are served by an access-checked view.")


def is_missing(exc: BaseException) -> bool:
    """Whether a storage error means "no such file" (vs. a store that failed): a local
    ``FileNotFoundError``, an S3 404, or a name that would leave the storage."""
    if isinstance(exc, FileNotFoundError | SuspiciousOperation):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("Code")) in ("404", "NoSuchKey", "NotFound")
    return False
