"""Slack and Discord as input surfaces, fed the Big List of Naughty Strings (plus NUL and CR/LF strings of
our own) and values of the wrong JSON type, through correctly signed requests.

- A Slack thread reply is stored on the ticket exactly as the agent typed it: Slack sends ``&``, ``<``
  and ``>`` escaped, we unescape, the body is trimmed (``services._clean_body``). A blank reply is ignored.
- Every other field of an event (ids, channel, thread, user, challenge) and every field of a Discord
  interaction may hold any string or any JSON type: the answer is a 200 or a 4xx with a message, never a
  5xx, and nothing is added to the ticket. NUL anywhere in a body is a 400 that says so.
- The way out: a customer's subject and the AI summary, whatever they hold, reach the Slack channel
  escaped (no ``<!channel>``, ``<@user>`` or forged link) and Discord with its Markdown escaped (no
  masked ``[text](url)`` link), mentions and link previews off.
"""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.test import Client

from supportflow.integrations import discord, slack
from supportflow.models import InboundEvent
from supportflow.tests.http_fakes import fake_server
from supportflow.tests.slack_helpers import signed_post, thread_reply
from tickets.models import Message, Ticket
from tickets.services import MESSAGE_MAX_LENGTH
from tickets.tests.factories import make_ticket
from tickets.tests.naughty_data import naughty_strings
from tickets.tests.test_naughty_inputs import Tally, batches, blanks, packs

WRONG_TYPES = [5, 1.5, True, None, [], ["x"], {}, {"a": "b"}]


@pytest.fixture
def strings() -> list[str]:
    return naughty_strings()


@pytest.fixture
def web() -> Client:
    return Client(raise_request_exception=False)


def _agent_messages(ticket) -> int:
    return Message.objects.filter(ticket=ticket, author_kind="agent").count()


def test_slack_thread_replies_keep_every_string(strings, slack_settings, web, thread):
    tally = Tally("slack thread reply")
    for n, (i, text) in enumerate([*batches(strings, limit=MESSAGE_MAX_LENGTH), *blanks(strings)]):
        before = _agent_messages(thread.ticket)
        payload = thread_reply(thread, text=slack._escape(text), event_id=f"EvNaughty{n}")
        response = signed_post(web, payload)
        if not tally.status(i, text, response, allowed=(200,)):
            if _agent_messages(thread.ticket) != before:
                tally.problems.append(f"#{i} {text!r}: refused with {response.status_code} but stored")
            continue
        cleaned = text.strip()
        if not cleaned:  # a blank reply: acknowledged, nothing to add
            if _agent_messages(thread.ticket) != before:
                tally.problems.append(f"#{i} {text!r}: a blank reply was stored")
            tally.answered += 1
            continue
        message = Message.objects.filter(ticket=thread.ticket, author_kind="agent").order_by("-seq").first()
        if _agent_messages(thread.ticket) != before + 1:
            tally.problems.append(f"#{i} {text!r}: 200 but not stored once")
            continue
        tally.compare(i, text, message.body, cleaned)
    tally.check()
    assert tally.stored_lossless + tally.normalised >= 20


@pytest.mark.parametrize("field", ["event_id", "channel", "thread_ts", "user", "type", "subtype", "challenge"])
def test_any_value_in_any_slack_field_is_answered_without_a_5xx(strings, slack_settings, web, thread, field):
    tally = Tally(f"slack event field {field}")
    values = [*strings, *WRONG_TYPES]
    for i, value in enumerate(values):
        payload = thread_reply(thread, text="a reply", event_id=f"EvField{field}{i}")
        if field == "challenge":
            payload = {"type": "url_verification", "challenge": value}
        elif field == "event_id":
            payload["event_id"] = value
            payload["event"]["thread_ts"] = "1.2"  # a thread we never posted: nothing may be stored
        else:
            payload["event"][field] = value
        response = signed_post(web, payload)
        if tally.status(i, repr(value), response, allowed=(200,)):
            tally.answered += 1
            if field == "challenge" and isinstance(value, str):
                assert response.json() == {"challenge": value}
    tally.check()
    # A reply is stored only when it is still a well-formed reply in our thread: with no subtype (an
    # empty one counts as none). Every other value of every field stores nothing.
    expected = sum(1 for value in values if not value) if field == "subtype" else 0
    assert _agent_messages(thread.ticket) == expected


def test_a_nul_anywhere_in_a_signed_body_is_a_400_that_says_so(slack_settings, web, thread):
    for payload in (
        thread_reply(thread, text="fine", event_id="Ev\x00"),
        {**thread_reply(thread, text="fine"), "event": {**thread_reply(thread)["event"], "channel": "C\x00"}},
        {"type": "url_verification", "challenge": "a\x00b"},
    ):
        response = signed_post(web, payload)
        assert response.status_code == 400
        assert "NUL" in response.json()["error"]
    assert not InboundEvent.objects.exists()
    assert _agent_messages(thread.ticket) == 0


@pytest.fixture
def discord_key(settings):
    key = Ed25519PrivateKey.generate()
    settings.DISCORD_PUBLIC_KEY = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    return key


def test_any_value_in_a_discord_interaction_is_answered_without_a_5xx(strings, discord_key, web, db):
    tally = Tally("discord interaction")
    for i, value in enumerate([*strings, *WRONG_TYPES]):
        body = json.dumps({"type": value, "id": value, "data": {"name": value}, "token": value}).encode()
        ts = str(int(time.time()))
        response = web.post(
            "/integrations/discord/interactions/",
            data=body,
            content_type="application/json",
            headers={"X-Signature-Ed25519": discord_key.sign(ts.encode() + body).hex(), "X-Signature-Timestamp": ts},
        )
        if tally.status(i, repr(value), response, allowed=(200,)):
            tally.answered += 1
            assert response.json()["type"] in (1, 4)
    tally.check()


def test_escalation_posts_carry_any_subject_escaped(strings, slack_settings, fake_slack, settings, department):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    problems = []
    with fake_server() as discord_receiver:
        settings.DISCORD_WEBHOOK_URL = f"{discord_receiver.url}/api/webhooks/1/token"
        discord_receiver.answer((204, {}, b""))
        for i, subject in packs(strings, limit=240):
            ticket = make_ticket(department=department, subject=subject)
            Ticket.objects.filter(pk=ticket.pk).update(ai_summary=f"<!here> {subject}")
            ticket.refresh_from_db()
            assert slack.slack_escalation_post(ticket_id=ticket.pk, reason="<@U0BOSS> please") == "posted"
            assert discord.discord_escalation_post(ticket_id=ticket.pk, reason="@everyone look") == "posted"
            text = fake_slack.requests[-1].json()["text"]
            link = f"<{settings.SITE_URL}/admin/tickets/ticket/{ticket.pk}/change/|Open in SupportFlow>"
            outside_link = text.replace(link, "")
            if "<" in outside_link or ">" in outside_link:
                problems.append(f"#{i} {subject!r}: an unescaped < or > reached Slack: {text!r}")
            if slack._escape(ticket.subject) not in text:
                problems.append(f"#{i} {subject!r}: the subject did not reach Slack intact")
            posted = discord_receiver.requests[-1].json()
            if posted["allowed_mentions"] != {"parse": []} or posted["flags"] != discord.SUPPRESS_EMBEDS:
                problems.append(f"#{i}: Discord mentions or link previews not disabled")
            if f"escalated: {discord._escape(ticket.subject)}\n" not in posted["content"]:
                problems.append(f"#{i} {subject!r}: the subject did not reach Discord with its Markdown escaped")
            if ticket.reference not in posted["content"] or len(posted["content"]) > 2000:
                problems.append(f"#{i}: Discord content lost its reference or is over 2,000 characters")
    assert not problems, "\n".join(problems[:20])


def test_discord_markdown_from_a_customer_is_shown_literally():
    escaped = discord._escape("[Reset your password](https://evil.example) **now** @everyone `x` ||s|| # h")
    assert escaped == (r"\[Reset your password\]\(https\://evil.example\) \*\*now\*\* \@everyone \`x\` \|\|s\|\| \# h")
