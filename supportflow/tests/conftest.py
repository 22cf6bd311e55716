from __future__ import annotations

import pytest

from supportflow.devservices import EmbeddedRedis
from tickets.tests.mailservers import free_port


@pytest.fixture
def throwaway_redis(tmp_path):
    """A real Redis server of our own, so the test can stop it without touching the suite's Redis."""
    server = EmbeddedRedis(data_dir=tmp_path / "redis", port=free_port())
    assert server.start() is True
    yield server
    server.stop()
