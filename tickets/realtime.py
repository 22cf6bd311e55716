"""Live delivery: what a committed change sends to the sockets of a conversation.

Audiences per ticket, one Channels group: every socket of a ticket — the customer's, the agent
console's — joins ``ticket.<ticket id>`` (``ticket_group``), and what a change sends to the ticket's
audiences goes out as one layer message (``publish``: a ``chat.fanout`` with one fragment per audience) that
each socket filters by the audiences it belongs to:
- ``customer``: the customer's sockets. Public messages only, rendered for the customer.
- ``agent``: the agent console's sockets. Everything, internal notes included; ``agent.<language>``: the
  agents reading the console in that language.
One layer message instead of one per audience: a chat message has three (the customer, agents in English,
in German), and each ``group_send`` is a Redis PUBLISH the sender pays for whether anyone listens or not. What is
meant for the agents passes through the customer's consumer on the server, never to its socket: the filter
is the audience, checked in ``ChatSocket.chat_fanout``.

Messages are rendered by the pages' own renderer (``tickets.message_html``) and sent
as htmx out-of-band fragments. Delivery is best effort (channels_redis is at-most-once): the message
is already stored, and every client resyncs from its last sequence number when it (re)connects. What
goes to the customer is rendered in the conversation's language (``tickets.languages``), whoever
sends it: a worker has no request to take a language from, and a customer's socket speaks the customer's.
What goes to the agents is rendered once per console language (``agent_sends``: two renders, whatever the
number of sockets) for ``agent.<language>``; fragments without words go to ``agent``.

The services schedule these on commit themselves (``broadcast_on_commit``). The AI pipeline stores its
reply with ``services.message_create(author_kind="ai", …)`` — which broadcasts like any other message —
and calls ``ai_status()`` around the work so the customer sees that an answer is being prepared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from tickets import languages
from tickets.message_html import message_html
from tickets.models import Message, Ticket

logger = logging.getLogger(__name__)

STATUS_TEMPLATE = "tickets/chat.html#status"
NOTICE_TEMPLATE = "tickets/chat.html#notice"


class Audience(NamedTuple):
    """Who of a ticket's sockets a fragment is for (``customer_audience``, ``agent_audience``)."""

    ticket_id: int
    name: str


def ticket_group(ticket_id: int) -> str:
    """The Channels group every socket of the ticket joins; ``publish`` addresses audiences within it."""
    return f"ticket.{ticket_id}"


def customer_audience(ticket_id: int) -> Audience:
    return Audience(ticket_id, "customer")


def agent_audience(ticket_id: int, language: str = "") -> Audience:
    """``language``: the agents reading the console in it (``agent_sends``); none: all of them."""
    return Audience(ticket_id, f"agent.{language}" if language else "agent")


def agent_audiences(language: str) -> frozenset[str]:
    """What an agent's socket in a console ``language`` receives."""
    return frozenset({"agent", f"agent.{language}"})


CUSTOMER_AUDIENCES = frozenset({"customer"})


def agent_sends(ticket_id: int, render: Callable[[], str]) -> list[tuple[Audience, str]]:
    """``render()`` once per console language, each for the agents reading the console in it.

    Rendering for every console language (two) rather than for the languages of the sockets open: it
    costs one more render of a fragment (well under a millisecond) and needs no record of who is open."""
    sends = []
    for language in settings.CONSOLE_LANGUAGES:
        with translation.override(language):
            sends.append((agent_audience(ticket_id, language), render()))
    return sends


def agent_display_name(user) -> str:
    """What a customer sees of an agent: a first name, never a username."""
    return (user.first_name if user is not None else "") or pgettext("the author of a message", "Support")


def _in_language(language: str | None):
    """``language`` for what is rendered inside; None: the active one (a view already switched to it)."""
    return translation.override(language) if language else contextlib.nullcontext()


def render_messages(
    messages: list[Message], *, viewer: str, customer_name: str = "", token: str = "", language: str | None = None
) -> str:
    """``token``: the customer's conversation link, for the forms under AI answers (made here when the
    viewer is the customer, none is given and there is an AI answer to put a form under).
    ``language``: see ``_in_language``."""
    if not messages:
        return ""
    if viewer == "customer" and not token and any(m.author_kind == "ai" for m in messages):
        from tickets.selectors import ticket_customer_token

        token = ticket_customer_token(ticket=messages[0].ticket)
    with _in_language(language):
        items = "".join(message_html(m, viewer=viewer, customer_name=customer_name, token=token) for m in messages)
    return f'<ol hx-swap-oob="beforeend:#messages">{items}</ol>'


def render_status(ticket: Ticket, *, token: str = "", language: str | None = None) -> str:
    from tickets.selectors import ticket_customer_token

    token = token or ticket_customer_token(ticket=ticket)
    with _in_language(language):
        return render_to_string(STATUS_TEMPLATE, {"ticket": ticket, "oob": True, "token": token})


def render_notice(target: str, text: str, *, expires_ms: int = 0, client_id: str = "") -> str:
    """A one-line notice swapped into an element by id (typing, presence, AI status, errors); ``text`` is
    already in the reader's language."""
    return render_to_string(
        NOTICE_TEMPLATE, {"target": target, "text": text, "expires_ms": expires_ms, "client_id": client_id}
    )


_collecting = threading.local()


@contextlib.contextmanager
def publish_from_thread(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """For a consumer's worker thread (one block, one thread): ``send_html`` hands its fragments to the
    consumer's event loop ``loop`` and returns at once, instead of hopping to the loop and waiting for
    the publish. The broadcast thus leaves as soon as it is committed and rendered, while the thread
    goes on with the message's other on-commit work (the AI enqueue, the event subscribers); the
    sends of one block are published in the order they were made.

    What is handed over was already committed (the broadcasts run on commit); a send scheduled for a
    transaction that commits after the block ends is published the ordinary way.
    """
    outer = getattr(_collecting, "loop", None)
    _collecting.loop = loop
    try:
        yield
    finally:
        _collecting.loop = outer


async def publish(sends: list[tuple[Audience, str]]) -> None:
    """Publish ``(audience, html)`` pairs from async code: one layer message per ticket (``fanout``)."""
    layer = get_channel_layer()
    for group, event in fanout(sends):
        await layer.group_send(group, event)


def fanout(sends: list[tuple[Audience, str]]) -> list[tuple[str, dict]]:
    """``(audience, html)`` pairs as ``(group, event)``: one ``chat.fanout`` per ticket, its fragments in the
    order given; a socket sends those of its audiences (``ChatSocket.chat_fanout``)."""
    parts: dict[int, list[tuple[str, str]]] = {}
    for (ticket_id, audience), html in sends:
        parts.setdefault(ticket_id, []).append((audience, html))
    return [(ticket_group(ticket_id), {"type": "chat.fanout", "parts": each}) for ticket_id, each in parts.items()]


def _published(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("live delivery failed (stored; clients will resync)", exc_info=future.exception())


SEND_TIMEOUT_S = 10.0
_own_loop_wanted = False
_own_loop: tuple[int, asyncio.AbstractEventLoop] | None = None
_own_loop_lock = threading.Lock()


def use_own_event_loop() -> None:
    """Send from one long-lived event loop in this process (a Celery worker process calls this at start).

    Outside an ASGI server, ``async_to_sync`` starts a thread and a new event loop for every send, and
    the channel layer opens a new Redis connection for that loop: about 6 ms per send, three sends per
    AI answer. One loop per process keeps its connection. Sends still wait for the publish, in order."""
    global _own_loop_wanted
    _own_loop_wanted = True


def _event_loop() -> asyncio.AbstractEventLoop:
    global _own_loop
    with _own_loop_lock:
        if _own_loop is None or _own_loop[0] != os.getpid():  # a forked child starts its own
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="realtime-send", daemon=True).start()
            _own_loop = (os.getpid(), loop)
        return _own_loop[1]


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def send_html(*sends: tuple[Audience, str]) -> None:
    """Send fragments to a ticket's audiences — ``(audience, html)`` pairs — in one hop to an event loop:
    the consumer's, handed over without waiting, inside ``publish_from_thread``; this process's own
    long-lived loop in a worker (``use_own_event_loop``), waiting for the publish; else a loop of
    ``async_to_sync``'s."""
    loop = getattr(_collecting, "loop", None)
    if loop is not None:
        asyncio.run_coroutine_threadsafe(publish(list(sends)), loop).add_done_callback(_published)
        return
    if _own_loop_wanted and not _in_event_loop():
        asyncio.run_coroutine_threadsafe(publish(list(sends)), _event_loop()).result(timeout=SEND_TIMEOUT_S)
        return
    async_to_sync(publish)(list(sends))


def broadcast_message(message_id: int, message: Message | None = None) -> None:
    """``message``: the instance the service just stored (saves re-reading it), else fetched by id."""
    if message is None:
        message = Message.objects.select_related("author_user", "ticket__customer").get(pk=message_id)
    send_html(*_message_sends(message))


async def abroadcast_message(message: Message) -> None:
    """``broadcast_message`` from the event loop (the chat consumer's hot path, the message just stored
    with its ticket and customer): rendered here, the audiences published at once. A failure is logged
    and swallowed, as on commit: the message is stored and clients resync."""
    try:
        await publish(_message_sends(message))
    except Exception:
        logger.exception("live delivery of message %s failed (stored; clients will resync)", message.pk)


def _message_sends(message: Message) -> list[tuple[Audience, str]]:
    customer_name = message.ticket.customer.name
    sends = agent_sends(
        message.ticket_id, lambda: render_messages([message], viewer="agent", customer_name=customer_name)
    )
    if not message.is_internal:
        language = languages.ticket_language(message.ticket)
        sends.append(
            (customer_audience(message.ticket_id), render_messages([message], viewer="customer", language=language))
        )
    return sends


def broadcast_status(ticket_id: int) -> None:
    """The conversation's state changed (resolved, closed, rated): customers get the new status block."""
    ticket = Ticket.objects.get(pk=ticket_id)
    send_html((customer_audience(ticket_id), render_status(ticket, language=languages.ticket_language(ticket))))


def broadcast_ai_panel(ticket_id: int) -> None:
    """A new AI draft: agents on the ticket page reload the AI panel. What goes over the socket is only
    a placeholder that fetches it, so each agent gets it with their own rights and CSRF token."""
    from django.urls import reverse

    url = reverse("admin:tickets_ticket_ai", args=[ticket_id])

    def placeholder() -> str:
        return format_html(
            '<section id="sf-ai" class="sf-ai" hx-swap-oob="true" hx-get="{}" hx-trigger="load" '
            'hx-swap="outerHTML"><p class="sf-meta">{}</p></section>',
            url,
            _("Loading the AI draft…"),
        )

    send_html(*agent_sends(ticket_id, placeholder))


def _ai_working() -> str:
    return _("The assistant is preparing an answer…")


def ai_status(ticket_id: int, *, working: bool, ticket: Ticket | None = None) -> None:
    """Hook for the AI pipeline (runs in a Celery worker): show or clear 'the assistant is working',
    to the customer in the conversation's language (``ticket``: the ticket as the caller just read it)."""
    if not working:
        html = render_notice("ai-status", "")
        send_html((customer_audience(ticket_id), html), (agent_audience(ticket_id), html))
        return
    if ticket is None:
        ticket = Ticket.objects.only("language", "ui_language", "ui_language_chosen").get(pk=ticket_id)
    with translation.override(languages.ticket_language(ticket)):
        to_customer = render_notice("ai-status", _ai_working())
    to_agents = agent_sends(ticket_id, lambda: render_notice("ai-status", _ai_working()))
    send_html((customer_audience(ticket_id), to_customer), *to_agents)


def broadcast_on_commit(send: Callable[..., None], *args) -> None:
    """Run ``send(*args)`` (one of the ``broadcast_*`` above) once the change it shows is committed.

    A failure is logged and swallowed: the change is stored, and clients catch up on reconnect.
    """

    def deliver() -> None:
        try:
            send(*args)
        except Exception:
            logger.exception("live delivery by %s failed (stored; clients will resync)", send.__name__)

    transaction.on_commit(deliver)
