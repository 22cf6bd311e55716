"""Which language a customer's conversation is shown in: its pages, the fragments pushed live, its emails.

One answer per conversation, whoever renders it (a view, a socket, a Celery worker), so a page and the
fragments swapped into it never mix languages:

1. the language the customer picked with the switcher (``Ticket.ui_language_chosen``);
2. else the language the conversation is written in, as triage detected it (``Ticket.language``);
3. else the language of their pages when the conversation started (``Ticket.ui_language``: the browser's);
4. else ``fallback`` — for a view, what ``LocaleMiddleware`` picked for this request — else English.

Only our languages (``settings.LANGUAGES``) count at each step: a conversation in Italian falls through to
the browser's language. The AI's own words follow the language each message is written in
(``tickets.ai.phrases``); this decides everything around them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpRequest
from django.utils import translation

from supportflow import i18n
from tickets.models import Ticket


def ticket_language(ticket: Ticket, *, fallback: str = "") -> str:
    if ticket.ui_language_chosen and (language := i18n.supported(ticket.ui_language)):
        return language
    return (
        i18n.supported(ticket.language)
        or i18n.supported(ticket.ui_language)
        or i18n.supported(fallback)
        or i18n.supported(settings.LANGUAGE_CODE)
    )


@contextmanager
def speaking(ticket: Ticket, *, fallback: str = "") -> Iterator[str]:
    """Render (templates, gettext) inside in the conversation's language; yields it."""
    language = ticket_language(ticket, fallback=fallback)
    with translation.override(language):
        yield language


def activate_for_request(request: HttpRequest, ticket: Ticket) -> str:
    """A conversation's page or fragment: switch this request to the conversation's language (the request's
    own, from ``LocaleMiddleware``, is the last fallback). ``LocaleMiddleware`` sends it as Content-Language."""
    language = ticket_language(ticket, fallback=getattr(request, "LANGUAGE_CODE", ""))
    translation.activate(language)
    request.LANGUAGE_CODE = language
    return language


def start_language(request: HttpRequest) -> tuple[str, bool]:
    """For a conversation started from this request: (the page's language, whether the visitor chose it)."""
    picked = i18n.chosen(request.COOKIES)
    return (picked, True) if picked else (i18n.supported(getattr(request, "LANGUAGE_CODE", "")), False)
