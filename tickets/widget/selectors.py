"""Reads of the widget: the site behind a public key, the framing policy of its pages, whether a visitor's
identity is signed by the site, and a conversation of that site."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import Http404
from django.utils.translation import gettext as _

from supportflow.middleware import DEFAULT_CSP
from tickets import selectors
from tickets.models import Ticket, WidgetConversation, WidgetSite

logger = logging.getLogger(__name__)

PUBLIC_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{4,40}$")
USER_ID_MAX = 200
_FRAME_ANCESTORS = re.compile(r"frame-ancestors [^;]*")


class WidgetUnavailable(Exception):
    """The widget cannot be shown for this key; ``status`` and a sentence for the visitor."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class IdentityRefused(Exception):
    """The visitor identity the site passed is not signed with the site's identity secret."""


@dataclass(frozen=True)
class Visitor:
    """A visitor the site vouched for: ``user_id`` signed with its identity secret."""

    user_id: str
    email: str
    name: str


def widget_site_get(*, public_key: str) -> WidgetSite:
    """The active site of this public key, or ``WidgetUnavailable`` (404 unknown, 403 switched off)."""
    site = (
        WidgetSite.objects.select_related("department").filter(public_key=public_key).first()
        if PUBLIC_KEY_RE.match(public_key or "")
        else None
    )
    if site is None:
        raise WidgetUnavailable(404, _("This chat widget is not set up: its site key is unknown."))
    if not site.is_active:
        raise WidgetUnavailable(403, _("This chat widget is switched off."))
    return site


def widget_frame_policy(*, site: WidgetSite | None) -> str:
    """The page's Content-Security-Policy with ``frame-ancestors`` set to exactly the site's origins
    (``'none'`` without a site): the only pages allowed to frame the widget are the site's own."""
    policy = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_CSP) or DEFAULT_CSP
    ancestors = " ".join(site.allowed_origins) if site is not None and site.allowed_origins else "'none'"
    if _FRAME_ANCESTORS.search(policy):
        return _FRAME_ANCESTORS.sub(lambda _m: f"frame-ancestors {ancestors}", policy, count=1)
    return f"{policy}; frame-ancestors {ancestors}"


def widget_visitor_verify(*, site: WidgetSite, user_id: str, email: str, name: str, user_hash: str) -> Visitor | None:
    """The visitor the site vouches for, ``None`` when it passed no identity, or ``IdentityRefused``.

    ``user_hash`` must be the hex HMAC-SHA256 of ``user_id`` under the site's identity secret. An identity
    without a valid hash is never trusted (it would let anyone read themselves into a customer's history);
    the refusal is logged with the site, never with the hash."""
    user_id, email, name, user_hash = (v.strip() for v in (user_id, email, name, user_hash))
    if not (user_id or email or name or user_hash):
        return None
    if not user_id or len(user_id) > USER_ID_MAX or not user_hash:
        logger.warning("widget identity refused for site %s: no user id or no hash", site.public_key)
        raise IdentityRefused
    expected = hmac.new(site.identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, user_hash.lower()):
        logger.warning("widget identity refused for site %s: the hash does not match", site.public_key)
        raise IdentityRefused
    try:
        validate_email(email)
    except ValidationError:
        if email:
            logger.warning("widget identity for site %s: data-user-email is not an address; ignored", site.public_key)
        email = ""  # the verified user id still identifies them
    return Visitor(user_id=user_id, email=email, name=name[:200])


def widget_conversation_get(*, site: WidgetSite, token: str) -> Ticket:
    """The conversation behind ``token`` if it was started on this site's widget; 404 otherwise."""
    ticket = selectors.ticket_get_for_customer(token=token)
    if not WidgetConversation.objects.filter(ticket_id=ticket.pk, site=site).exists():
        # A merged conversation goes on in the ticket it was merged into: accept the site of the original.
        origin = getattr(ticket, "followed_from", "")
        if not (origin and WidgetConversation.objects.filter(ticket__reference=origin, site=site).exists()):
            raise Http404("This conversation was not started on this site.")
    return ticket


def widget_customer_for(*, site: WidgetSite, visitor: Visitor):
    """The customer a verified visitor already is on this site (an earlier verified conversation), if any."""
    earlier = (
        WidgetConversation.objects.filter(site=site, external_user_id=visitor.user_id, identity_verified=True)
        .select_related("ticket__customer")
        .order_by("-created_at")
        .first()
    )
    return earlier.ticket.customer if earlier else None
