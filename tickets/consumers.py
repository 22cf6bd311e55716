"""Websocket consumers: they authenticate, join groups, validate and call services — nothing else.

Protocol (client → server, JSON; htmx's ws extension sends the form's fields plus ``HEADERS``):
- ``{"type": "message", "body": "...", "client_id": "..."}``: a customer message. Stored first, then
  broadcast to the conversation (the sender's own copy is its confirmation). A resend with the same
  ``client_id`` is answered with the stored message, never stored twice.
- ``{"type": "resync", "after": 12}``: everything after sequence 12 (sent on every (re)connect).
- ``{"type": "typing"}``: the other side sees "… is typing".
Server → client: htmx out-of-band HTML fragments (``tickets/chat.html`` partials).

What a customer's socket sends is in the conversation's language (``tickets.languages``; the socket's
cookie and Accept-Language stand in for a request's); what an agent's sends, in the console's default.

Refusals close before accepting, with code 4403: bad or missing token, a conversation that is not
the token's, staff without access to the ticket, or (via ``AllowedHostsOriginValidator``) a
foreign origin. Nothing is joined in those cases.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import Http404
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from supportflow import i18n, ratelimit
from supportflow.resilience import DATABASE_ERRORS
from tickets import languages, limits, realtime, selectors, services
from tickets.models import Ticket

logger = logging.getLogger(__name__)

REFUSED = 4403
SERVICE_RESTART = 1012  # the page reconnects (htmx ws: 1006, 1011, 1012, 1013) and resyncs
TRY_AGAIN_LATER = 1013
MAX_FRAME_CHARS = 64_000
TYPING_EVERY_SECONDS = 2.0
RESYNC_BATCH = 200
TOO_LARGE = gettext_lazy("That message is too large to send.")
UNREADABLE = gettext_lazy("The request could not be read; please reload the page.")


def db(fn):
    """Run ORM work on the thread pool, not Channels' single shared thread: each call is a
    self-contained transaction, so it needs no thread affinity, and sockets must not queue behind
    each other's database work."""
    return database_sync_to_async(fn, thread_sensitive=False)


class ChatSocket(AsyncWebsocketConsumer):
    """Shared by both audiences: group membership, fragments out, JSON requests in."""

    group: str | None = None  # the ticket's (``realtime.ticket_group``), once connected
    audiences: frozenset[str] = frozenset()  # what of the ticket's fan-outs this socket sends on
    ticket_id: int | None = None
    typing_sends: tuple[tuple[realtime.Audience, str], ...] = ()  # what "… is typing" sends: (audience, fragment)
    language: str = settings.LANGUAGE_CODE  # what this socket's own errors are written in
    _last_typing = 0.0

    async def dispatch(self, message: dict) -> None:
        """Channels' ``dispatch`` without its ``aclose_old_connections()`` before every event: that is a
        hop to the sync thread for each frame received and each fragment delivered, to close Django
        connections this loop never holds (database work runs in ``db()``, which closes its own, or on
        ``supportflow.aio``'s connections).

        A database outage (``supportflow.resilience``) closes the socket with 1013 (try again later)
        instead of crashing the consumer with a traceback; the page reconnects and resyncs."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        try:
            await handler(message)
        except DATABASE_ERRORS as exc:
            logger.warning("database unavailable on a chat socket (%s); closing with %s", exc, TRY_AGAIN_LATER)
            await self.close(code=TRY_AGAIN_LATER)

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def join(self, ticket_id: int) -> None:
        self.ticket_id = ticket_id
        self.group = realtime.ticket_group(ticket_id)
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def chat_fanout(self, event: dict) -> None:
        """A change's fragments for the ticket's audiences (``realtime.fanout``): this socket's only."""
        for audience, html in event["parts"]:
            if html and audience in self.audiences:
                await self.send(text_data=html)

    async def layer_reconnected(self, event: dict) -> None:
        """Broadcasts may have been lost while Redis was away (``supportflow.layers``): the page
        reconnects on 1012 and resyncs from its last sequence number."""
        await self.close(code=SERVICE_RESTART)

    async def send_error(self, text: str, *, client_id: str = "") -> None:
        """``text``: a lazy translation (or text already in it), written out in this socket's language."""
        await self.send(text_data=_render_error(text, client_id, self.language))  # a template, no database

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_FRAME_CHARS:
            await self.send_error(TOO_LARGE)
            return
        try:
            data = json.loads(text_data)
        except ValueError:
            await self.send_error(UNREADABLE)
            return
        if not isinstance(data, dict):
            await self.send_error(UNREADABLE)
            return
        kind = data.get("type")
        if kind == "resync":
            await self.resync(data.get("after"))
        elif kind == "typing":
            await self.typing()
        elif kind == "message":
            await self.message(data)
        else:
            await self.send_error(gettext_lazy("Unknown request."))

    async def resync(self, after) -> None:
        try:
            after = max(0, int(after or 0))
        except (TypeError, ValueError):
            after = 0
        while True:
            html, last = await db(self.render_after)(after)
            if html:
                await self.send(text_data=html)
            if last is None:
                return
            after = last

    async def typing(self) -> None:
        now = time.monotonic()
        if now - self._last_typing < TYPING_EVERY_SECONDS:
            return
        self._last_typing = now
        await realtime.publish(self.typing_sends)

    async def message(self, data: dict) -> None:
        await self.send_error(gettext_lazy("Replies from the console go through the reply box."))

    def render_after(self, after: int) -> tuple[str, int | None]:
        raise NotImplementedError


def _render_error(text: str, client_id: str, language: str) -> str:
    with translation.override(language):
        return realtime.render_notice("chat-error", str(text), client_id=client_id)


def _typing_notice(name: str, language: str | None = None) -> str:
    """``language``: None for the active one (``realtime.agent_sends`` switches to each console language)."""
    with translation.override(language) if language else contextlib.nullcontext():
        return realtime.render_notice("typing", _("%(name)s is typing…") % {"name": name}, expires_ms=4000)


class CustomerChatConsumer(ChatSocket):
    """A customer's conversation, opened with its signed token (``/ws/chat/<token>/``)."""

    async def connect(self) -> None:
        ticket = await db(_ticket_for_token)(self.scope["url_route"]["kwargs"]["token"])
        if ticket is None:
            await self.close(code=REFUSED)
            return
        self.language = languages.ticket_language(ticket, fallback=i18n.from_scope(self.scope))
        # "… is typing" is for the agents: in each console language, to the agents reading the console in it
        self.typing_sends = tuple(
            realtime.agent_sends(ticket.pk, lambda: _typing_notice(ticket.customer.name or _("The customer")))
        )
        self.audiences = realtime.CUSTOMER_AUDIENCES
        await self.join(ticket.pk)
        await self.accept()

    def render_after(self, after: int) -> tuple[str, int | None]:
        ticket = Ticket.objects.get(pk=self.ticket_id)
        messages = selectors.ticket_customer_messages(ticket=ticket, after_seq=after, limit=RESYNC_BATCH)
        html = realtime.render_messages(messages, viewer="customer", language=self.language)
        if len(messages) < RESYNC_BATCH:
            return html + realtime.render_status(ticket, language=self.language), None
        return html, messages[-1].seq

    async def message(self, data: dict) -> None:
        """Limits, store, broadcast — awaited on this loop, no thread hop, for a message on a ``new`` or
        ``open`` conversation (``services.message_create_customer_async``); a resend, a transition or a
        closed conversation goes the general way on a worker thread. What only this socket gets (an
        error, the stored copy of a resend) is sent to it; a new message reaches every socket of the
        conversation, this one included, through the broadcast."""
        client_id = str(data.get("client_id") or "")[:64]
        body = data.get("body")
        ip = ratelimit.scope_ip(self.scope)
        with translation.override(self.language):
            verdict, refused = await ratelimit.ahit_all(limits.send_limits(conversation=self.ticket_id, ip=ip))
            if not verdict.allowed:
                await self.send_error(limits.too_many(refused, verdict), client_id=client_id)
                return
            try:
                stored = await services.message_create_customer_async(
                    ticket_id=self.ticket_id, body=body, client_msg_id=client_id
                )
            except services.TicketRuleError as exc:
                await self.send_error(str(exc), client_id=client_id)
                return
        if stored is None:
            loop = asyncio.get_running_loop()
            reply = await db(_store_customer_message)(self.ticket_id, body, client_id, loop, self.language)
            if reply:
                await self.send(text_data=reply)


def _ticket_for_token(token: str) -> Ticket | None:
    try:
        return selectors.ticket_get_for_customer(token=token)
    except Http404:
        return None


def _store_customer_message(
    ticket_id: int, body, client_id: str, loop: asyncio.AbstractEventLoop, language: str
) -> str:
    """The general way (limits already counted): one trip to a worker thread, and none back — the
    committed message's broadcast is handed to the consumer's event ``loop`` as soon as it is ready
    (``realtime.publish_from_thread``). Returns what only the sender should get: an error, or the stored
    copy of a resend, in the socket's ``language``."""
    with translation.override(language):
        try:
            with realtime.publish_from_thread(loop):
                message = services.message_create(
                    ticket=Ticket(pk=ticket_id), author_kind="customer", body=body, client_msg_id=client_id
                )
        except services.TicketRuleError as exc:
            return realtime.render_notice("chat-error", str(exc), client_id=client_id)
        return "" if message.was_created else realtime.render_messages([message], viewer="customer")


class AgentTicketConsumer(ChatSocket):
    """The agent console's live thread for one ticket (``/ws/agent/tickets/<id>/``), session-authenticated."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        ticket = await agent_ticket(self.scope)
        if ticket is None:
            await self.close(code=REFUSED)
            return
        # what this socket sends the customer (typing, presence) is in the conversation's language
        self.customer_language = languages.ticket_language(ticket)
        with translation.override(self.customer_language):
            self.agent_name = realtime.agent_display_name(user)
            joined = _("%(name)s joined the conversation") % {"name": self.agent_name}
            self.left_html = realtime.render_notice("presence", _("%(name)s left") % {"name": self.agent_name})
        self.typing_sends = (
            (realtime.customer_audience(ticket.pk), _typing_notice(self.agent_name, self.customer_language)),
        )
        # what the agents get is in the language of this agent's console page (realtime.agent_sends)
        self.language = i18n.console_from_scope(self.scope)
        self.audiences = realtime.agent_audiences(self.language)
        await self.join(ticket.pk)
        await self.accept()
        await realtime.publish([(realtime.customer_audience(ticket.pk), realtime.render_notice("presence", joined))])

    async def disconnect(self, code: int) -> None:
        try:
            if self.ticket_id is not None:
                await realtime.publish([(realtime.customer_audience(self.ticket_id), self.left_html)])
        finally:
            await super().disconnect(code)

    def render_after(self, after: int) -> tuple[str, int | None]:
        ticket = Ticket.objects.select_related("customer").get(pk=self.ticket_id)
        messages = list(
            selectors.ticket_thread(ticket=ticket, include_internal=True).filter(seq__gt=after)[:RESYNC_BATCH]
        )
        html = realtime.render_messages(
            messages, viewer="agent", customer_name=ticket.customer.name, language=self.language
        )
        return html, (messages[-1].seq if len(messages) == RESYNC_BATCH else None)


async def agent_ticket(scope: dict) -> Ticket | None:
    """The ticket of a console socket's URL if its signed-in user may see it; None: refuse the socket."""
    return await db(_ticket_for_agent)(scope.get("user"), scope["url_route"]["kwargs"]["ticket_id"])


def _ticket_for_agent(user, ticket_id) -> Ticket | None:
    if user is None or not user.is_authenticated:
        return None
    try:
        return selectors.ticket_get_for_user(user=user, pk=ticket_id)
    except Http404:
        return None
