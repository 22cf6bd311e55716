from __future__ import annotations

from django import template
from django.utils.safestring import mark_safe

from supportflow.markdown import render_message
from tickets.reply_estimates import ticket_reply_estimate_phrase

register = template.Library()


@register.filter
def chat_markdown(text: str) -> str:
    """Sanitised HTML (nh3 allowlist), so marking it safe is sound."""
    return mark_safe(render_message(text))  # noqa: S308


@register.filter
def safe_link(url) -> str:
    """A citation link only if it is ours (path) or http(s); anything else (javascript:, data:) is dropped."""
    if not isinstance(url, str):
        return ""
    url = url.strip()
    if url.startswith("/") and not url.startswith("//"):
        return url
    return url if url.lower().startswith(("http://", "https://")) else ""


@register.simple_tag
def reply_estimate(ticket) -> str:
    """When a person will reply, as promised at the handover ("by about 14:30 UTC today"), or ""."""
    return ticket_reply_estimate_phrase(ticket)
