"""The S3 backend of the private ``"email"`` storage (``SF_STORAGE=s3``)."""

from __future__ import annotations

from django.utils.deconstruct import deconstructible
from storages.backends.s3 import S3Storage

from supportflow.storage import NoURLMixin


@deconstructible(path="supportflow.storage.s3.PrivateS3Storage")
class PrivateS3Storage(NoURLMixin, S3Storage):
    """django-storages' S3 backend that never makes a URL, signed or not: the console and the
    customer's link serve these files through views that check who is asking."""
