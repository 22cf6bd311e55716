"""Fixtures for the tickets tests: real SMTP and IMAP servers on localhost for the email channel (see
mailservers.py), and a test client signed in as an agent."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tickets.tests.mailservers import Dovecot, SmtpSink


@pytest.fixture
def smtp_server(settings):
    """aiosmtpd on a free port; Django's SMTP backend points at it for the test."""
    sink = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield sink
    sink.stop()


@pytest.fixture
def imap_server():
    """dovecot in its own /tmp folder: pytest's tmp tree is private to root, and dovecot's auth process
    runs as the unprivileged ``dovecot`` user, which must read the passwd file."""
    folder = Path(tempfile.mkdtemp(prefix="sf-dovecot-"))
    server = Dovecot(folder).start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def email_settings(settings, tmp_path):
    settings.SUPPORT_EMAIL_ADDRESS = "Support <support@help.example.com>"
    settings.INBOUND_EMAIL_TOKEN = "inbound-test-token"
    settings.EMAIL_PRIVATE_ROOT = tmp_path / "email-private"
    settings.EMAIL_MAX_MESSAGE_BYTES = 200_000
    settings.EMAIL_MAX_ATTACHMENT_BYTES = 50_000
    settings.EMAIL_MAX_ATTACHMENTS = 3
    settings.EMAIL_MAX_ATTACHMENTS_TOTAL_BYTES = 100_000
    return settings


@pytest.fixture
def agent_client(client, agent):
    """The test client signed in as ``agent`` (of ``department``)."""
    client.force_login(agent)
    return client
