"""Browser-test harness: the real ASGI app served by uvicorn inside the test process, driven by
Debian's Chromium through Playwright's sync API (never a downloaded browser).

- ``browser``: one headless Chromium per test module.
- ``asgi_server``: uvicorn in a daemon thread on a free port, per test, over ``transactional_db``
  (the server's request and consumer threads only see committed data). Not ``live_server``:
  pytest-django owns that name.
- ``new_context``: a fresh browser context per actor (customer, agent, ...), closed after the test.
- ``fresh_channel_layer_and_pool``: autouse in every module that binds it.

A test module binds them to module names (``browser = harness.browser`` ...), see
``test_chat_browser.py``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
HOST = "127.0.0.1"  # in ALLOWED_HOSTS; the websocket origin check captured that list at import


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """uvicorn serving ``supportflow.asgi.application`` from a thread of this process."""

    port: int = field(default_factory=_free_port)
    server: object = None
    thread: threading.Thread | None = None
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        import uvicorn

        from supportflow.asgi import application

        config = uvicorn.Config(
            app=application,
            host=HOST,
            port=self.port,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=3,
        )
        self.server = uvicorn.Server(config)

        def serve() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self.server.serve())
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=serve, name=f"uvicorn-{self.port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the live server did not start on {self.url}")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():  # a connection that would not close: stop waiting for it
                self.server.force_exit = True
                self.thread.join(timeout)

    def websockets(self, path_prefix: str) -> list:
        """The server's open websocket connections whose path starts with ``path_prefix``."""
        return [
            conn
            for conn in list(self.server.server_state.connections)
            if getattr(conn, "scope", None)
            and conn.scope.get("type") == "websocket"
            and conn.scope.get("path", "").startswith(path_prefix)
        ]

    def drop_websockets(self, path_prefix: str) -> int:
        """Cut those connections the way a network failure does: the TCP connection is aborted
        (no close frame); the browser sees code 1006 and the consumer a disconnect. Returns how many."""
        connections = self.websockets(path_prefix)
        done = threading.Event()

        def abort() -> None:
            for conn in connections:
                conn.transport.abort()
            done.set()

        self.loop.call_soon_threadsafe(abort)
        if not done.wait(5):
            raise RuntimeError("the live server's loop did not abort the connections")
        return len(connections)


@pytest.fixture(scope="module")
def browser():
    """Playwright's sync API leaves its dispatcher loop marked as running in this (the main) thread
    between calls, which Django's async-safety check takes for an async context and refuses ORM
    calls from the test and from pytest-django's flush. Only that loop is exempted, so an ORM call
    on the server's own event loop is still refused; DJANGO_ALLOW_ASYNC_UNSAFE would hide that."""
    import django.utils.asyncio as django_asyncio
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, pytest.MonkeyPatch.context() as patch:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        playwright_loop = chromium._loop

        def running_loop_other_than_playwrights() -> asyncio.AbstractEventLoop:
            loop = asyncio.get_running_loop()
            if loop is playwright_loop:
                raise RuntimeError("only Playwright's dispatcher loop; this thread runs synchronous code")
            return loop

        patch.setattr(django_asyncio, "get_running_loop", running_loop_other_than_playwrights)
        yield chromium
        chromium.close()


@pytest.fixture
def asgi_server(transactional_db) -> Iterator[LiveServer]:
    server = LiveServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def new_context(browser, asgi_server) -> Iterator[Callable]:
    """``new_context(**options)``: a fresh, isolated browser context (its own cookies) on the live
    server; all of them are closed before the server stops."""
    contexts = []

    def make(**options):
        context = browser.new_context(base_url=asgi_server.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(autouse=True)
def fresh_channel_layer_and_pool(fresh_channel_layer):
    """Each test's live server runs its own event loop: the root conftest's ``fresh_channel_layer``,
    autouse in every module that binds this name."""
    return
