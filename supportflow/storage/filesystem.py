"""The local backend of the private ``"email"`` storage."""

from __future__ import annotations

import contextlib
import os
import tempfile

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils._os import safe_makedirs
from django.utils.deconstruct import deconstructible
from django.utils.functional import cached_property

from supportflow.storage import NoURLMixin


@deconstructible(path="supportflow.storage.filesystem.PrivateFileSystemStorage")
class PrivateFileSystemStorage(NoURLMixin, FileSystemStorage):
    """A folder under ``EMAIL_PRIVATE_ROOT`` (followed when the setting changes, as Django's own storage
    follows ``MEDIA_ROOT``): files 0600 in folders 0700, each written whole or not at all (a temporary
    file renamed into place, so a crash never leaves half a content-addressed file), overwrite allowed
    (same name, same bytes)."""

    def __init__(self, location=None, **kwargs) -> None:
        kwargs.setdefault("file_permissions_mode", 0o600)
        kwargs.setdefault("directory_permissions_mode", 0o700)
        kwargs.setdefault("allow_overwrite", True)
        super().__init__(location=location, **kwargs)

    @cached_property
    def base_location(self):
        return self._value_or_setting(self._location, settings.EMAIL_PRIVATE_ROOT)

    def _clear_cached_properties(self, setting, **kwargs):
        super()._clear_cached_properties(setting, **kwargs)
        if setting == "EMAIL_PRIVATE_ROOT":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)

    def _save(self, name, content):
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        safe_makedirs(directory, self.directory_permissions_mode, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in content.chunks():
                    out.write(chunk if isinstance(chunk, bytes) else chunk.encode())
            os.chmod(tmp, self.file_permissions_mode)
            os.replace(tmp, full_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return os.path.relpath(full_path, self.location).replace("\\", "/")
