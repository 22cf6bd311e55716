"""A bare ASGI "hello": the floor of the HTTP benchmark (``bench/http_bench.py``) — the server, the
loopback and the client, with no framework at all. Serve it with ``uvicorn --app-dir bench
asgi_hello:app`` (or ``daphne`` with ``bench`` on ``PYTHONPATH``)."""

from __future__ import annotations

BODY = b"hello"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
