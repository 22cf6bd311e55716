"""Discord: escalations posted through a channel webhook; an interactions endpoint that verifies
Ed25519 signatures (``X-Signature-Ed25519`` over ``timestamp + body`` with ``DISCORD_PUBLIC_KEY``).

Only PING is handled inbound (Discord checks the endpoint with it); any other verified interaction
gets an ephemeral acknowledgement. Discord's webhook URL goes through the same SSRF-safe sender
as subscriptions: discord.com resolves to public addresses, so nothing needs allowing.
"""

from __future__ import annotations

import json
import logging
import re
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings

from supportflow import outbound
from supportflow.integrations.webhooks import ticket_admin_url

logger = logging.getLogger(__name__)

REPLAY_WINDOW_S = 300
PING, PONG = 1, 1
CHANNEL_MESSAGE, EPHEMERAL = 4, 64
SUPPRESS_EMBEDS = 4  # message flag: no link previews fetched for a customer's URLs
_MARKDOWN = re.compile(r"([\\*_~`|>\[\]()#<:@-])")


def _escape(text: str) -> str:
    """Discord Markdown in a customer's words becomes literal text: no masked ``[text](url)`` links,
    headings, quotes, spoilers or code blocks in the team's channel (mentions are off as well)."""
    return _MARKDOWN.sub(r"\\\1", text)


class DiscordAuthError(Exception):
    """Signature or timestamp refused: answer 401."""


class DiscordTransientError(Exception):
    """Discord could not be reached or is rate limiting: retry later."""


def discord_escalation_post(*, ticket_id: int, reason: str) -> str:
    from tickets.models import Ticket

    url = settings.DISCORD_WEBHOOK_URL
    if not url:
        return "not configured"
    ticket = Ticket.objects.select_related("department").filter(pk=ticket_id).first()
    if ticket is None:
        return "no ticket"
    lines = [
        f"**{ticket.reference}** escalated: {_escape(ticket.subject)}",
        f"Reason: {_escape(reason)}" if reason else "",
        f"Priority: {ticket.priority}" + (f" · Queue: {_escape(ticket.department.name)}" if ticket.department else ""),
        f"Summary: {_escape(ticket.ai_summary)}" if ticket.ai_summary else "",
        ticket_admin_url(ticket.pk) if settings.SITE_URL else "",
    ]
    content = "\n".join(line for line in lines if line)[:2000]
    body = {"content": content, "allowed_mentions": {"parse": []}, "flags": SUPPRESS_EMBEDS}  # pings nobody
    try:
        response = outbound.post(
            url,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            timeout=settings.WEBHOOK_TIMEOUT_S,
            allow_private=settings.WEBHOOKS_ALLOW_PRIVATE,
        )
    except outbound.TransportError as exc:
        raise DiscordTransientError(str(exc)) from exc
    except outbound.UnsafeURLError as exc:
        logger.error("DISCORD_WEBHOOK_URL refused: %s", exc)
        return "refused"
    if response.status == 429 or response.status >= 500:
        raise DiscordTransientError(f"Discord answered HTTP {response.status}")
    if not 200 <= response.status < 300:
        logger.error("Discord refused the escalation post for %s: HTTP %s", ticket.reference, response.status)
        return f"HTTP {response.status}"
    return "posted"


def discord_request_verify(*, body: bytes, timestamp: str, signature: str, now: float | None = None) -> None:
    key = settings.DISCORD_PUBLIC_KEY
    if not key:
        raise DiscordAuthError("Discord is not configured")
    try:
        sent_at = int(timestamp)
        public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key))
        public_key.verify(bytes.fromhex(signature or ""), timestamp.encode() + body)
    except (TypeError, ValueError, InvalidSignature) as exc:
        raise DiscordAuthError("bad signature") from exc
    if abs((now or time.time()) - sent_at) > REPLAY_WINDOW_S:
        raise DiscordAuthError("timestamp outside the 5-minute window")


def discord_interaction_handle(*, interaction: dict) -> dict:
    if interaction.get("type") == PING:
        return {"type": PONG}
    return {
        "type": CHANNEL_MESSAGE,
        "data": {"content": "SupportFlow does not take commands here yet.", "flags": EPHEMERAL},
    }
