"""An OpenAI-compatible HTTP server, so the real client code (SDK, retries, breaker) runs against it:
used by the tests, the evaluations (``eval_attacks``' obedient model) and the benchmarks.

    with FakeOpenAI() as fake:
        fake.enqueue(status=429, headers={"Retry-After": "1"})
        fake.enqueue(content={"category": "billing"}, usage=(120, 8))
        fake.responder = lambda request: "default answer"   # when the queue is empty

``fake_openai_server(settings)`` also points the settings at the server (and a breaker key prefix of
its own), resets the breaker and the cached SDK client; the ``fake_openai`` pytest fixture
(``supportflow/tests/fake_openai.py``) wraps it. Imports no app.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAKE_API_KEY = "sk-test-fake-openai-key"


@dataclass
class FakeResponse:
    status: int = 200
    content: str | dict | list | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes | str | dict | None = None
    usage: tuple[int, int] | None = None
    error_code: str | None = None


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class FakeOpenAI:
    """A real HTTP server on 127.0.0.1 in a daemon thread; ``stop()`` (or leaving ``with``) ends it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.responder: Callable[[dict[str, Any]], str | dict | list] | None = None
        self._queue: deque[FakeResponse] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle

    def start(self) -> FakeOpenAI:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.block_on_close = False
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes delayed responses, which then answer nothing
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("start() the fake first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- scripting

    def enqueue(
        self,
        status: int = 200,
        content: str | dict | list | None = None,
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        body: bytes | str | dict | None = None,
        usage: tuple[int, int] | None = None,
        error_code: str | None = None,
    ) -> None:
        """One response for the next request. ``content``: the message (a dict/list is JSON-encoded);
        ``body``: the raw HTTP body instead of the OpenAI shape; ``usage``: (prompt, completion) tokens,
        estimated from the text when omitted; ``error_code``: the ``error.code``/``type`` of a 4xx/5xx."""
        response = FakeResponse(status, content, dict(headers or {}), delay, body, usage, error_code)
        with self._lock:
            self._queue.append(response)

    def enqueue_quota_exceeded(self) -> None:
        self.enqueue(status=429, error_code="insufficient_quota")

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    # --- used by the handler

    def _record(self, payload: dict[str, Any], headers: dict[str, str]) -> FakeResponse:
        with self._lock:
            self.requests.append(payload)
            self.request_headers.append(headers)
            if self._queue:
                return self._queue.popleft()
        content = self.responder(payload) if self.responder else "OK"
        return FakeResponse(content=content)

    def _completion(self, request: dict[str, Any], response: FakeResponse) -> bytes:
        content = response.content
        if content is None:
            content = "OK"
        if not isinstance(content, str):
            content = json.dumps(content)
        if response.usage is None:
            prompt = sum(_estimate_tokens(str(m.get("content", ""))) for m in request.get("messages", []))
            usage = (prompt, _estimate_tokens(content))
        else:
            usage = response.usage
        payload = {
            "id": f"chatcmpl-fake-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake-model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
            "system_fingerprint": "fake",
        }
        return json.dumps(payload).encode()


def _error_body(status: int, code: str | None) -> bytes:
    kinds = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error"}
    kind = code or kinds.get(status, "rate_limit_exceeded" if status == 429 else "server_error")
    error = {"message": f"fake error {status}", "type": kind, "param": None, "code": code or kind}
    return json.dumps({"error": error}).encode()


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeOpenAI/1.0"

    @property
    def fake(self) -> FakeOpenAI:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output quiet

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            models = [{"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "fake"}]
            self._send(200, json.dumps({"object": "list", "data": models}).encode())
        else:
            self._send(404, _error_body(404, None))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, _error_body(404, None))
            return
        try:
            request = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, _error_body(400, "invalid_json"))
            return
        response = self.fake._record(request, {key.lower(): value for key, value in self.headers.items()})
        if response.delay and self.fake._stopping.wait(response.delay):
            return
        if response.body is not None:
            body = response.body
            if isinstance(body, dict):
                body = json.dumps(body)
            body = body.encode() if isinstance(body, str) else body
        elif response.status >= 400:
            body = _error_body(response.status, response.error_code)
        else:
            body = self.fake._completion(request, response)
        self._send(response.status, body, response.headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            headers = {"Content-Type": "application/json", **(headers or {}), "Content-Length": str(len(body))}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and went away, as some tests intend


def fake_openai_settings(fake: FakeOpenAI, settings: Any) -> None:
    """Point ``settings`` (pytest-django's fixture, restored after the test) at ``fake``, with short
    timeouts and a breaker of the test's own: a key prefix nobody else uses, in a Redis database the
    suite's ``cache.clear()`` does not flush."""
    from supportflow.settings import redis_db_url

    settings.LLM_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = f"{fake.url}/v1"
    settings.OPENAI_API_KEY = FAKE_API_KEY
    settings.LLM_TIMEOUT_S = 2.0
    settings.LLM_MAX_ATTEMPTS = 3
    settings.LLM_RETRY_BASE_S = 0.05
    settings.LLM_RETRY_MAX_WAIT_S = 5.0
    settings.LLM_BREAKER_REDIS_URL = redis_db_url(
        settings.REDIS_URL, 13 if not os.environ.get("SF_TEST_ISOLATION") else 9
    )
    settings.LLM_BREAKER_KEY_PREFIX = f"sf:test:llm:breaker:{uuid.uuid4().hex}:"


@contextmanager
def fake_openai_server(settings: Any) -> Iterator[FakeOpenAI]:
    """A started ``FakeOpenAI`` with ``settings`` pointed at it, a fresh breaker and SDK client."""
    from supportflow import llm

    with FakeOpenAI() as fake:
        fake_openai_settings(fake, settings)
        llm.reset_client()
        llm.breaker.reset()
        try:
            yield fake
        finally:
            llm.breaker.reset()
            llm.reset_client()
