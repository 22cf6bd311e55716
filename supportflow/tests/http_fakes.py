"""Real local HTTP servers for the integration tests: a webhook receiver and a fake Slack Web API.

Each runs ``http.server`` in a thread on 127.0.0.1 and records what it received, so our real client
code (SSRF checks, address pinning, signing) runs end to end.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class FakeServer:
    url: str
    requests: list[Received] = field(default_factory=list)
    # (status, headers, body) answers in order; the last one repeats.
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=lambda: [(200, {}, b"ok")])
    arrived: threading.Event = field(default_factory=threading.Event)

    def answer(self, *answers: tuple[int, dict[str, str], bytes]) -> None:
        self.answers[:] = list(answers)


@contextmanager
def fake_server(handler=None) -> Iterator[FakeServer]:
    """A recording server; ``handler(server, received)`` may return the answer instead of ``answers``."""
    state = FakeServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received = Received(path=self.path, headers=dict(self.headers.items()), body=self.rfile.read(length))
            state.requests.append(received)
            if handler is not None:
                status, headers, body = handler(state, received)
            else:
                status, headers, body = state.answers.pop(0) if len(state.answers) > 1 else state.answers[0]
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            state.arrived.set()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


FAKE_SLACK_TOKEN = "slack-bot-token-for-tests"  # the one token the fake accepts, as Slack accepts its bot's


def fake_slack_handler(state: FakeServer, received: Received) -> tuple[int, dict[str, str], bytes]:
    """Slack's Web API as far as we use it: ``chat.postMessage`` with a bearer token."""
    if received.headers.get("Authorization", "") != f"Bearer {FAKE_SLACK_TOKEN}":
        return 200, {"Content-Type": "application/json"}, b'{"ok": false, "error": "not_authed"}'
    if received.path.endswith("/chat.postMessage"):
        payload = received.json()
        ts = f"1700000000.{len(state.requests):06d}"
        answer = {"ok": True, "channel": payload["channel"], "ts": ts, "message": {"text": payload["text"]}}
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()
    return 200, {"Content-Type": "application/json"}, b'{"ok": false, "error": "unknown_method"}'
