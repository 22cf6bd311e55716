"""Signed Slack Events API requests for tests (shared by the Slack tests and the naughty-input tests)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from supportflow.models import SlackThread

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
URL = "/integrations/slack/events/"


def signed_post(client, payload: dict, *, timestamp: int | None = None, secret: str = SIGNING_SECRET):
    body = json.dumps(payload).encode()
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return client.post(
        URL,
        data=body,
        content_type="application/json",
        headers={"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature},
    )


def thread_reply(thread: SlackThread, *, user: str = "U0ALICE", text: str = "On it &amp; fixed", event_id="Ev01"):
    return {
        "type": "event_callback",
        "event_id": event_id,
        "event": {
            "type": "message",
            "channel": thread.channel,
            "user": user,
            "text": text,
            "ts": "1700000100.000200",
            "thread_ts": thread.thread_ts,
        },
    }
