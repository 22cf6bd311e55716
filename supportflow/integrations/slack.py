"""Slack: escalations posted to a channel; agents' replies in the thread become ticket messages.

Outbound: ``slack_escalation_post`` calls ``chat.postMessage`` on ``SLACK_API_BASE`` with the bot token
and remembers the message as the ticket's ``SlackThread``. A second escalation of the same ticket is
posted as a reply in that thread.

Inbound (Events API): ``slack_request_verify`` checks the v0 signature (HMAC-SHA256 of
``v0:{timestamp}:{body}`` with the signing secret, constant-time compare) and a 5-minute window on the
timestamp; ``slack_event_handle`` answers ``url_verification``, drops an ``event_id`` already handled
(``InboundEvent``, unique — Slack retries when we are slow), ignores bot messages, edits and anything
outside a known thread, and adds a reply from a mapped agent (``SLACK_USER_MAP``: Slack user id →
username) as that agent's public message, if they may work the ticket. Unmapped users are ignored and
logged: a workspace member who is not a SupportFlow agent must not write to customers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from supportflow import outbound
from supportflow.integrations.webhooks import ticket_admin_url
from supportflow.models import InboundEvent, SlackThread

logger = logging.getLogger(__name__)

REPLAY_WINDOW_S = 300
IGNORED = {"ok": True}


class SlackAuthError(Exception):
    """Signature or timestamp refused: answer 401."""


class SlackTransientError(Exception):
    """Slack could not be reached or asked us to slow down: retry the task later."""


class SlackPermanentError(Exception):
    """Slack refused the call for a reason a retry will not fix (bad token, unknown channel)."""


def _escape(text: str) -> str:
    """Slack mrkdwn control characters; stops a customer's subject from pinging ``<!channel>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_api_call(method: str, payload: dict) -> dict:
    """POST ``payload`` as JSON to ``SLACK_API_BASE/method`` with the bot token; the decoded answer
    when ``ok``. ``SLACK_API_BASE`` is operator configuration, so private addresses are allowed."""
    url = f"{settings.SLACK_API_BASE.rstrip('/')}/{method}"
    try:
        response = outbound.post(
            url,
            body=json.dumps(payload).encode(),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Authorization": f"Bearer {settings.SLACK_BOT_TOKEN}",
            },
            timeout=settings.WEBHOOK_TIMEOUT_S,
            allow_private=True,
        )
    except outbound.TransportError as exc:
        raise SlackTransientError(str(exc)) from exc
    except outbound.UnsafeURLError as exc:
        raise SlackPermanentError(str(exc)) from exc
    if response.status == 429 or response.status >= 500:
        raise SlackTransientError(f"Slack answered HTTP {response.status}")
    try:
        answer = json.loads(response.body)
    except ValueError as exc:
        raise SlackPermanentError(f"Slack answered HTTP {response.status} without JSON") from exc
    if not answer.get("ok"):
        error = str(answer.get("error", "unknown_error"))
        if error in {"ratelimited", "internal_error", "service_unavailable", "request_timeout"}:
            raise SlackTransientError(error)
        raise SlackPermanentError(error)
    return answer


def slack_escalation_text(ticket: Any, reason: str) -> str:
    lines = [
        f":rotating_light: *{_escape(ticket.reference)}* escalated: {_escape(ticket.subject)}",
        f"*Reason:* {_escape(reason)}" if reason else "",
        f"*Priority:* {ticket.priority}"
        + (f" · *Queue:* {_escape(ticket.department.name)}" if ticket.department else ""),
        f"*Summary:* {_escape(ticket.ai_summary)}" if ticket.ai_summary else "",
        f"<{ticket_admin_url(ticket.pk)}|Open in SupportFlow>" if settings.SITE_URL else "",
        "_Reply in this thread to answer the customer._",
    ]
    return "\n".join(line for line in lines if line)


def slack_escalation_post(*, ticket_id: int, reason: str) -> str:
    """Announce an escalation in ``SLACK_CHANNEL``. Returns what happened (for the task's result)."""
    from tickets.models import Ticket

    if not (settings.SLACK_BOT_TOKEN and settings.SLACK_CHANNEL):
        return "not configured"
    ticket = Ticket.objects.select_related("department").filter(pk=ticket_id).first()
    if ticket is None:
        return "no ticket"
    thread = SlackThread.objects.filter(ticket=ticket).first()
    payload: dict[str, Any] = {
        "channel": thread.channel if thread else settings.SLACK_CHANNEL,
        "text": slack_escalation_text(ticket, reason),
        "unfurl_links": False,
        "unfurl_media": False,
    }
    if thread is not None:
        payload["thread_ts"] = thread.thread_ts
    answer = slack_api_call("chat.postMessage", payload)
    if thread is None:
        SlackThread.objects.get_or_create(
            ticket=ticket,
            defaults={"channel": answer.get("channel") or settings.SLACK_CHANNEL, "thread_ts": answer["ts"]},
        )
        return "posted"
    return "posted in thread"


# --- inbound -----------------------------------------------------------------------------------


def slack_request_verify(*, body: bytes, timestamp: str, signature: str, now: float | None = None) -> None:
    secret = settings.SLACK_SIGNING_SECRET
    if not secret:
        raise SlackAuthError("Slack is not configured")
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError) as exc:
        raise SlackAuthError("missing timestamp") from exc
    if abs((now or time.time()) - sent_at) > REPLAY_WINDOW_S:
        raise SlackAuthError("timestamp outside the 5-minute window")
    expected = "v0=" + hmac.new(secret.encode(), f"v0:{sent_at}:".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), (signature or "").encode()):
        raise SlackAuthError("bad signature")


def slack_event_handle(*, envelope: dict) -> dict:
    """Handle a verified Events API request; returns the JSON to answer with (always 200)."""
    kind = envelope.get("type")
    if kind == "url_verification":
        return {"challenge": str(envelope.get("challenge", ""))}
    if kind != "event_callback":
        return IGNORED
    event_id = str(envelope.get("event_id") or "")[:100]
    event = envelope.get("event") or {}
    if not event_id or not isinstance(event, dict):
        return IGNORED
    with transaction.atomic():
        try:
            with transaction.atomic():
                InboundEvent.objects.create(source="slack", event_id=event_id)
        except IntegrityError:
            logger.info("slack event %s already handled", event_id)
            return {"ok": True, "duplicate": True}
        _thread_reply(event_id, event)
    return IGNORED


def _thread_reply(event_id: str, event: dict) -> None:
    from tickets import selectors, services
    from tickets.roles import user_is_agent

    if event.get("type") != "message" or event.get("subtype") or event.get("bot_id"):
        return
    fields = [event.get(name) for name in ("channel", "thread_ts", "text", "user")]
    if not all(isinstance(value, str) and value.strip() for value in fields):
        return  # not a reply in a thread, or a field of the wrong type: nothing we can act on
    channel, thread_ts, text, slack_user = fields
    text = text.strip()
    if thread_ts == event.get("ts"):
        return
    thread = SlackThread.objects.select_related("ticket").filter(channel=channel, thread_ts=thread_ts)
    thread = thread.first()
    if thread is None:
        return
    username = settings.SLACK_USER_MAP.get(slack_user)
    user = get_user_model().objects.filter(username=username).first() if username else None
    if user is None or not user_is_agent(user):
        logger.warning("slack reply from unmapped or non-agent user %s on %s ignored", slack_user, thread.ticket)
        return
    if not selectors.ticket_queryset_for_user(user=user).filter(pk=thread.ticket_id).exists():
        logger.warning("slack user %s (%s) may not work %s; reply ignored", slack_user, username, thread.ticket)
        return
    try:
        services.message_create(
            ticket=thread.ticket,
            author_kind=services.AuthorKind.AGENT,
            author_user=user,
            body=_unescape(text),
            client_msg_id=f"slack-{event_id}"[:64],
        )
    except services.TicketRuleError as exc:
        logger.warning("slack reply on %s refused: %s", thread.ticket, exc)
