"""The links our emails carry, and the signed tokens behind them (selectors: a bad token is a 404).

- the conversation link of a chat ticket (the chat's own token, ``selectors.ticket_customer_token``);
- a rating link: the ticket's access key signed for rating only (salt ``CSAT_SALT``), so a forwarded survey
  lets its reader rate, not read the conversation; valid ``CSAT_TOKEN_MAX_AGE``;
- an unsubscribe link: the customer's id and the language to answer in, signed (salt ``UNSUBSCRIBE_SALT``),
  without expiry, as RFC 8058 expects of a ``List-Unsubscribe`` address.

Links are absolute, on ``SITE_URL`` (the public address of the install); without it, the local address of
``make run``, which only works on the machine itself — production sets ``SITE_URL``.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.http import Http404
from django.urls import reverse

from supportflow import i18n
from tickets import selectors
from tickets.models import Customer, Ticket

CSAT_SALT = "supportflow.email.csat"
UNSUBSCRIBE_SALT = "supportflow.email.unsubscribe"
CSAT_TOKEN_MAX_AGE = 60 * 60 * 24 * 60  # a rating link works for 60 days
LOCAL_SITE_URL = "http://127.0.0.1:8000"


def absolute(path: str) -> str:
    return (settings.SITE_URL or LOCAL_SITE_URL).rstrip("/") + path


def conversation_url(ticket: Ticket) -> str:
    return absolute(reverse("chat:conversation", args=[selectors.ticket_customer_token(ticket=ticket)]))


def csat_token(ticket: Ticket) -> str:
    return signing.dumps(ticket.access_key, salt=CSAT_SALT, compress=False)


def csat_url(ticket: Ticket, score: int | None = None) -> str:
    url = absolute(reverse("email-rate", args=[csat_token(ticket)]))
    return f"{url}?score={score}" if score else url


def csat_ticket(*, token: str) -> Ticket:
    """The ticket a rating link is for, or 404 (bad signature, expired, revoked by rotating its key)."""
    try:
        key = signing.loads(token, salt=CSAT_SALT, max_age=CSAT_TOKEN_MAX_AGE)
        return Ticket.objects.select_related("customer").get(access_key=key)
    except (signing.BadSignature, Ticket.DoesNotExist, TypeError, ValueError) as exc:
        raise Http404("This rating link is not valid.") from exc


def unsubscribe_token(customer: Customer, *, language: str = "") -> str:
    return signing.dumps([customer.pk, i18n.supported(language)], salt=UNSUBSCRIBE_SALT, compress=False)


def unsubscribe_url(customer: Customer, *, language: str = "") -> str:
    return absolute(reverse("email-unsubscribe", args=[unsubscribe_token(customer, language=language)]))


def unsubscribe_customer(*, token: str) -> tuple[Customer, str]:
    """The customer an unsubscribe link is for and the language to answer in, or 404."""
    try:
        customer_id, language = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        return Customer.objects.get(pk=int(customer_id)), i18n.supported(language)
    except (signing.BadSignature, Customer.DoesNotExist, TypeError, ValueError) as exc:
        raise Http404("This unsubscribe link is not valid.") from exc
