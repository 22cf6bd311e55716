from __future__ import annotations

from django import template
from django.utils.safestring import mark_safe

from supportflow.markdown import render_message
from tickets import message_html
from tickets.reply_estimates import ticket_reply_estimate_phrase

register = template.Library()


@register.filter
def chat_markdown(text: str) -> str:
    """Sanitised HTML (nh3 allowlist), so marking it safe is sound."""
    return mark_safe(render_message(text))  # noqa: S308


safe_link = register.filter("safe_link", message_html.safe_link)


@register.simple_tag(takes_context=True)
def chat_message(context) -> str:
    """The message ``m`` of the context as ``viewer`` sees it (``tickets.message_html``): the pages' and the
    live fragments' one renderer. Reads ``customer_name``, ``token`` and ``site_name`` from the context too."""
    return message_html.message_html(
        context["m"],
        viewer=context.get("viewer", ""),
        customer_name=context.get("customer_name") or "",
        token=context.get("token") or "",
        site_name=context.get("site_name"),
        context=context,
    )


@register.simple_tag
def reply_estimate(ticket) -> str:
    """When a person will reply, as promised at the handover ("by about 14:30 UTC today"), or ""."""
    return ticket_reply_estimate_phrase(ticket)
