"""The S3 backends (``SF_STORAGE=s3``): uploads, and the private ``"email"`` storage."""

from __future__ import annotations

from botocore.config import Config
from django.utils.deconstruct import deconstructible
from storages.backends import s3

from supportflow.storage import NoURLMixin

# A store that is down must not hold a web request or a worker for minutes (botocore's defaults are 60 s
# connect and read timeouts and up to 5 tries): fail within seconds, the callers' retries take over.
CLIENT_LIMITS = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3})


@deconstructible(path="supportflow.storage.s3.S3Storage")
class S3Storage(s3.S3Storage):
    """django-storages' S3 backend with bounded timeouts and retries."""

    def __init__(self, **settings) -> None:
        super().__init__(**settings)
        self.client_config = self.client_config.merge(CLIENT_LIMITS)


@deconstructible(path="supportflow.storage.s3.PrivateS3Storage")
class PrivateS3Storage(NoURLMixin, S3Storage):
    """Never makes a URL, signed or not: the console and the customer's link serve these files through
    views that check who is asking."""
