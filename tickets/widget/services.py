"""Writes of the widget: its sites (created, changed, identity secret rotated) and a conversation started in
it. Preconditions are checked here; a broken rule raises ``ValidationError`` / ``TicketRuleError`` and
changes nothing."""

from __future__ import annotations

from django.db import transaction

from tickets import services
from tickets.models import Customer, Department, Ticket, WidgetConversation, WidgetSite
from tickets.models.widget import new_identity_secret
from tickets.widget import selectors
from tickets.widget.origins import origins_parse
from tickets.widget.selectors import Visitor


def widget_site_create(
    *,
    name: str,
    allowed_origins: list[str] | str,
    department: Department | None = None,
    is_active: bool = True,
    public_key: str = "",
) -> WidgetSite:
    """A new site with a generated identity secret and public key (``public_key``: a fixed one, for the demo
    page, whose snippet cannot change)."""
    site = WidgetSite(
        name=name.strip()[:100],
        allowed_origins=origins_parse(allowed_origins),
        department=department,
        is_active=is_active,
    )
    if public_key:
        site.public_key = public_key
    site.save()
    return site


def widget_site_update(
    *, site: WidgetSite, name: str, allowed_origins: list[str] | str, department: Department | None, is_active: bool
) -> WidgetSite:
    site.name = name.strip()[:100]
    site.allowed_origins = origins_parse(allowed_origins)
    site.department = department
    site.is_active = is_active
    site.save(update_fields=["name", "allowed_origins", "department", "is_active"])
    return site


def widget_site_rotate_secret(*, site: WidgetSite) -> WidgetSite:
    """A new identity secret: hashes signed with the old one are refused from now on."""
    site.identity_secret = new_identity_secret()
    site.save(update_fields=["identity_secret"])
    return site


def _customer_for(*, site: WidgetSite, visitor: Visitor | None, name: str, email: str) -> Customer:
    if visitor is None:  # a guest: the same rules as the chat page's form
        return services.customer_get_or_create(email=email, name=name)
    known = selectors.widget_customer_for(site=site, visitor=visitor)
    if known is not None:
        return known
    return services.customer_get_or_create(email=visitor.email, name=visitor.name or name or visitor.user_id)


@transaction.atomic
def widget_conversation_start(
    *,
    site: WidgetSite,
    visitor: Visitor | None,
    name: str,
    email: str,
    body: str,
    ui_language: str = "",
    ui_language_chosen: bool = False,
) -> Ticket:
    """Open a chat conversation from the site's widget, in the site's queue.

    A verified ``visitor`` is tied to their customer record: the one of their earlier verified
    conversations on this site, else the customer with their (site-verified) email. A guest (``visitor``
    None) gets what the chat page's form gives: ``name`` and the optional, unverified ``email``."""
    customer = _customer_for(site=site, visitor=visitor, name=name, email=email)
    ticket = services.ticket_create(
        customer=customer,
        subject="",
        body=body,
        channel=Ticket.Channel.CHAT,
        department=site.department if site.department_id and site.department.is_active else None,
        ui_language=ui_language,
        ui_language_chosen=ui_language_chosen,
    )
    WidgetConversation.objects.create(
        ticket=ticket,
        site=site,
        external_user_id=visitor.user_id if visitor else "",
        identity_verified=visitor is not None,
    )
    return ticket
