"""compose's proxy config (``deploy/nginx/supportflow.conf``) in a real nginx in front of the app served live:
a customer's websocket goes through it, and the client address the app counts is the one nginx saw, never
one the client claims.

Debian's nginx (1.22) predates ``server ... resolve`` and there is no Docker DNS here, so the upstream line
is the one thing changed: it names this test's live server instead of ``web:8000``."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from websockets.asyncio.client import connect

from supportflow.devservices.config import wait_until
from tickets import selectors
from tickets.tests import browser as harness
from tickets.tests.factories import make_ticket
from tickets.tests.mailservers import free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
UPSTREAM = "server web:8000 resolve;"

asgi_server = harness.asgi_server
fresh_channel_layer_and_pool = harness.fresh_channel_layer_and_pool
pytestmark = pytest.mark.django_db(transaction=True)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def proxy(asgi_server, tmp_path):
    """nginx on a free port, on our config, in front of ``asgi_server``; yields its host:port."""
    site = (ROOT / "deploy" / "nginx" / "supportflow.conf").read_text()
    assert site.count(UPSTREAM) == 1
    assert site.count("listen 8000;") == 1
    port = free_port()
    site = site.replace(UPSTREAM, f"server 127.0.0.1:{asgi_server.port};").replace(
        "listen 8000;", f"listen 127.0.0.1:{port};"
    )
    (tmp_path / "site.conf").write_text(site)
    temp = "".join(
        f"{kind}_temp_path {tmp_path}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\n{temp}include {tmp_path}/site.conf;\n}}\n"
    )
    process = subprocess.Popen(
        [NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: _listening(port) or process.poll() is not None, timeout=15, what="nginx")
        assert process.poll() is None, process.stderr.read().decode()
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_a_chat_websocket_goes_through_the_proxy_and_the_app_counts_the_address_nginx_saw(proxy, settings):
    settings.TRUSTED_PROXY_COUNT = 1  # as compose sets it
    ticket = make_ticket(body="My sync is stuck")
    token = selectors.ticket_customer_token(ticket=ticket)
    cache_redis = redis.Redis.from_url(django_settings.REDIS_CACHE_URL)
    for key in cache_redis.scan_iter("rl:chat-ip:*"):
        cache_redis.delete(key)

    async def scenario():
        async with connect(
            f"ws://{proxy}/ws/chat/{token}/",
            origin="http://localhost",
            additional_headers={"X-Forwarded-For": "6.6.6.6"},  # a claim nginx must not pass on as ours
            open_timeout=10,
        ) as ws:
            await ws.send(json.dumps({"type": "resync", "after": 0}))
            history = await asyncio.wait_for(ws.recv(), timeout=10)
            await ws.send(json.dumps({"type": "message", "body": "through the proxy", "client_id": "px1"}))
            while 'data-client-id="px1"' not in (frame := await asyncio.wait_for(ws.recv(), timeout=10)):
                pass
            return history, frame

    history, echoed = asyncio.run(scenario())

    assert "My sync is stuck" in history
    assert "through the proxy" in echoed
    counted = {key.decode().split(":")[2] for key in cache_redis.scan_iter("rl:chat-ip:*")}
    assert counted == {"127.0.0.1"}  # nginx appended the address it saw; the app believed that one hop only


def test_pages_go_through_the_proxy_to_the_app(proxy):
    import urllib.request

    with urllib.request.urlopen(f"http://{proxy}/healthz", timeout=10) as response:
        assert (response.status, json.loads(response.read())) == (200, {"status": "ok"})
