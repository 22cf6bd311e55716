"""``{% ticket_tags_panel original as panel %}``: what the ticket page's tags panel shows, so the include
(``admin/tickets/ticket/tags.html``) needs nothing from the page's view but the ticket."""

from __future__ import annotations

from django import template

from tickets import inbox
from tickets.models import Ticket

register = template.Library()


@register.simple_tag
def ticket_tags_panel(ticket: Ticket) -> dict:
    return {"tags": list(ticket.tags.order_by("name")), "choices": inbox.tag_choices()}
