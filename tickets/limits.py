"""The rate limits a customer's send counts against, shared by the websocket and the HTTP fallback."""

from __future__ import annotations

from django.conf import settings

from supportflow import ratelimit

SUBJECTS = ("this conversation", "your network")


def send_limits(*, conversation: int, ip: str) -> list[tuple[str, str, ratelimit.Limit]]:
    """The limits every customer send counts against, websocket or HTTP alike."""
    return [
        ("chat-conversation", str(conversation), ratelimit.parse(settings.CHAT_RATE_PER_CONVERSATION)),
        ("chat-ip", ip, ratelimit.parse(settings.CHAT_RATE_PER_IP)),
    ]


def too_many(refused: int, verdict: ratelimit.Verdict) -> str:
    return (
        f"Too many messages from {SUBJECTS[refused]}. Wait {verdict.retry_after} s and send again; "
        "your message is still in the box."
    )
