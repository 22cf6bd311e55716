"""The rate limits a customer's send counts against, shared by the websocket and the HTTP fallback."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _

from supportflow import ratelimit


def send_limits(*, conversation: int, ip: str) -> list[tuple[str, str, ratelimit.Limit]]:
    """The limits every customer send counts against, websocket or HTTP alike."""
    return [
        ("chat-conversation", str(conversation), ratelimit.parse(settings.CHAT_RATE_PER_CONVERSATION)),
        ("chat-ip", ip, ratelimit.parse(settings.CHAT_RATE_PER_IP)),
    ]


def too_many(refused: int, verdict: ratelimit.Verdict) -> str:
    """A refused message, by the limit that refused it (``refused``: its index in ``send_limits``)."""
    values = {"seconds": verdict.retry_after}
    if refused == 0:
        return (
            _(
                "Too many messages from this conversation. Wait %(seconds)s s and send again; "
                "your message is still in the box."
            )
            % values
        )
    return (
        _("Too many messages from your network. Wait %(seconds)s s and send again; your message is still in the box.")
        % values
    )


def too_many_clicks(refused: int, verdict: ratelimit.Verdict) -> str:
    """A refused click (a rating, "talk to a person"…), by the limit that refused it."""
    values = {"seconds": verdict.retry_after}
    if refused == 0:
        return _("Too many requests from this conversation. Wait %(seconds)s s and try again.") % values
    return _("Too many requests from your network. Wait %(seconds)s s and try again.") % values
