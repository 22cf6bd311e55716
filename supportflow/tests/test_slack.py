"""Slack (escalation posts, Events API thread replies) and Discord, against a fake Slack API and local
receivers started here; the escalation path end to end through a real Celery worker."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from supportflow.integrations import discord, slack
from supportflow.models import InboundEvent, SlackThread
from supportflow.tests.http_fakes import FAKE_SLACK_TOKEN, fake_server
from supportflow.tests.slack_helpers import SIGNING_SECRET, URL, signed_post, thread_reply
from tickets import services
from tickets.models import Message
from tickets.tests.factories import make_agent, make_ticket


def test_an_escalation_is_posted_to_the_channel_and_the_thread_remembered(db, slack_settings, fake_slack, department):
    ticket = make_ticket(department=department, subject="Help <!channel> now")
    services.ticket_escalate(ticket=ticket, reason="customer asked for a human")

    assert slack.slack_escalation_post(ticket_id=ticket.pk, reason="customer asked for a human") == "posted"

    (request,) = fake_slack.requests
    assert request.path == "/api/chat.postMessage"
    assert request.headers["Authorization"] == f"Bearer {FAKE_SLACK_TOKEN}"
    body = request.json()
    assert body["channel"] == "C0ESCALATE"
    assert ticket.reference in body["text"]
    assert "customer asked for a human" in body["text"]
    assert "Help &lt;!channel&gt; now" in body["text"]  # a customer's text cannot ping the channel
    assert f"<https://support.example.com/admin/tickets/ticket/{ticket.pk}/change/|" in body["text"]
    thread = SlackThread.objects.get(ticket=ticket)
    assert (thread.channel, thread.thread_ts) == ("C0ESCALATE", "1700000000.000001")
    # a second escalation goes into the same thread
    assert slack.slack_escalation_post(ticket_id=ticket.pk, reason="again") == "posted in thread"
    assert fake_slack.requests[1].json()["thread_ts"] == thread.thread_ts
    assert SlackThread.objects.count() == 1


def test_a_slack_error_is_permanent_or_transient(db, slack_settings, ticket):
    slack_settings.SLACK_BOT_TOKEN = "not-a-bot-token"
    with pytest.raises(slack.SlackPermanentError, match="not_authed"):
        slack.slack_escalation_post(ticket_id=ticket.pk, reason="x")
    slack_settings.SLACK_BOT_TOKEN = FAKE_SLACK_TOKEN
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    slack_settings.SLACK_API_BASE = f"http://127.0.0.1:{port}/api"
    with pytest.raises(slack.SlackTransientError):
        slack.slack_escalation_post(ticket_id=ticket.pk, reason="x")
    assert SlackThread.objects.count() == 0


def test_url_verification_is_answered(db, slack_settings, client):
    response = signed_post(client, {"type": "url_verification", "challenge": "abc123"})
    assert response.status_code == 200
    assert response.json() == {"challenge": "abc123"}


def test_a_bad_signature_is_401(db, slack_settings, client):
    response = signed_post(client, {"type": "url_verification", "challenge": "x"}, secret="wrong")
    assert response.status_code == 401


def test_an_old_timestamp_is_401_even_when_correctly_signed(db, slack_settings, client):
    response = signed_post(client, {"type": "url_verification", "challenge": "x"}, timestamp=int(time.time()) - 301)
    assert response.status_code == 401


def test_missing_headers_bad_json_and_get(db, slack_settings, client):
    assert client.post(URL, data=b"{}", content_type="application/json").status_code == 401
    assert client.get(URL).status_code == 405
    ts = str(int(time.time()))
    body = b"not json"
    sig = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    response = client.post(
        URL,
        data=body,
        content_type="application/json",
        headers={"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig},
    )
    assert response.status_code == 400


def test_without_a_signing_secret_everything_is_401(db, settings, client):
    settings.SLACK_SIGNING_SECRET = ""
    assert signed_post(client, {"type": "url_verification", "challenge": "x"}, secret="").status_code == 401


def test_a_thread_reply_from_a_mapped_agent_is_added_once(slack_settings, client, thread):
    # when Slack delivers the reply, then retries the same event
    first = signed_post(client, thread_reply(thread))
    second = signed_post(client, thread_reply(thread))
    # then both are acknowledged and the ticket got exactly one public agent message
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == {"ok": True, "duplicate": True}
    (message,) = Message.objects.filter(ticket=thread.ticket, author_kind="agent")
    assert message.body == "On it & fixed"
    assert message.author_user.username == "alice"
    assert not message.is_internal
    assert InboundEvent.objects.filter(source="slack", event_id="Ev01").count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"user": "U0STRANGER"},  # not mapped
        {"user": "U0BOB"},  # mapped to nobody that exists
        {"subtype": "message_changed"},  # an edit
        {"bot_id": "B01"},  # our own bot or another
        {"thread_ts": "1.2"},  # another thread
        {"thread_ts": None},  # not in a thread
    ],
)
def test_other_messages_are_acknowledged_and_ignored(slack_settings, client, thread, change):
    payload = thread_reply(thread)
    payload["event"].update(change)
    response = signed_post(client, payload)
    assert response.status_code == 200
    assert not Message.objects.filter(ticket=thread.ticket, author_kind="agent").exists()


def test_an_agent_outside_the_tickets_queue_cannot_reply(slack_settings, client, thread, other_department):
    make_agent(other_department, username="bob")
    response = signed_post(client, thread_reply(thread, user="U0BOB"))
    assert response.status_code == 200
    assert not Message.objects.filter(ticket=thread.ticket, author_kind="agent").exists()


def test_discord_interactions_verify_ed25519(db, settings, client):
    key = Ed25519PrivateKey.generate()
    settings.DISCORD_PUBLIC_KEY = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    body = b'{"type": 1}'
    ts = str(int(time.time()))

    def post(signature: str):
        return client.post(
            "/integrations/discord/interactions/",
            data=body,
            content_type="application/json",
            headers={"X-Signature-Ed25519": signature, "X-Signature-Timestamp": ts},
        )

    good = post(key.sign(ts.encode() + body).hex())
    assert (good.status_code, good.json()) == (200, {"type": 1})
    assert post(Ed25519PrivateKey.generate().sign(ts.encode() + body).hex()).status_code == 401
    assert post("zz").status_code == 401
    assert post("").status_code == 401


def test_discord_escalation_post(db, settings, ticket):
    with fake_server() as receiver:
        settings.DISCORD_WEBHOOK_URL = f"{receiver.url}/api/webhooks/1/token"
        settings.WEBHOOKS_ALLOW_PRIVATE = True
        receiver.answer((204, {}, b""))
        assert discord.discord_escalation_post(ticket_id=ticket.pk, reason="urgent") == "posted"
        body = receiver.requests[0].json()
        assert ticket.reference in body["content"]
        assert body["allowed_mentions"] == {"parse": []}
        settings.WEBHOOKS_ALLOW_PRIVATE = False
        assert discord.discord_escalation_post(ticket_id=ticket.pk, reason="urgent") == "refused"
        assert len(receiver.requests) == 1


def test_an_escalation_fires_the_slack_webhook_and_a_thread_reply_returns(
    celery_worker, slack_settings, client, fake_slack
):
    """Done-when: an escalation reaches Slack through the worker; the agent's thread reply reaches the ticket."""
    from tickets.tests.factories import DepartmentFactory

    department = DepartmentFactory()
    make_agent(department, username="alice")
    ticket = make_ticket(department=department, subject="Payment failed")
    services.ticket_escalate(ticket=ticket, reason="angry")
    assert fake_slack.arrived.wait(20)
    deadline = time.monotonic() + 10
    while not SlackThread.objects.filter(ticket=ticket).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    thread = SlackThread.objects.get(ticket=ticket)
    assert ticket.reference in fake_slack.requests[0].json()["text"]

    response = signed_post(client, thread_reply(thread, text="Refund issued", event_id="EvE2E"))
    assert response.status_code == 200
    assert Message.objects.filter(ticket=ticket, author_kind="agent", body="Refund issued").count() == 1
