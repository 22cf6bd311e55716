from __future__ import annotations

import pytest

from supportflow.devservices import EmbeddedRedis
from supportflow.models import SlackThread
from supportflow.tests.http_fakes import FAKE_SLACK_TOKEN, fake_server, fake_slack_handler
from supportflow.tests.slack_helpers import SIGNING_SECRET
from tickets.tests.factories import make_agent, make_ticket
from tickets.tests.mailservers import free_port


@pytest.fixture
def throwaway_redis(tmp_path):
    """A real Redis server of our own, so the test can stop it without touching the suite's Redis."""
    server = EmbeddedRedis(data_dir=tmp_path / "redis", port=free_port())
    assert server.start() is True
    yield server
    server.stop()


@pytest.fixture
def fake_slack():
    with fake_server(fake_slack_handler) as server:
        yield server


@pytest.fixture
def slack_settings(settings, fake_slack):
    settings.SLACK_BOT_TOKEN = FAKE_SLACK_TOKEN
    settings.SLACK_CHANNEL = "C0ESCALATE"
    settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
    settings.SLACK_API_BASE = f"{fake_slack.url}/api"
    settings.SITE_URL = "https://support.example.com"
    settings.SLACK_USER_MAP = {"U0ALICE": "alice", "U0BOB": "bob"}
    return settings


@pytest.fixture
def thread(db, department):
    make_agent(department, username="alice")
    ticket = make_ticket(department=department)
    return SlackThread.objects.create(ticket=ticket, channel="C0ESCALATE", thread_ts="1700000000.000001")
