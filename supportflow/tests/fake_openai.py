"""The ``fake_openai`` pytest fixture (the server itself is ``supportflow.llm.fake``): every app's tests
get it through ``pytest_plugins = ["supportflow.tests.fake_openai"]`` in the root conftest."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from supportflow.llm.fake import FakeOpenAI, fake_openai_server


@pytest.fixture
def fake_openai(settings) -> Iterator[FakeOpenAI]:
    with fake_openai_server(settings) as fake:
        yield fake
