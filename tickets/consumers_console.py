"""The agent console's presence sockets: who else is on a ticket and who is typing, on the ticket page
and in the ticket list (``static/supportflow/presence.js``). Presence itself lives in Redis
(``tickets.presence``); these consumers authenticate, join groups, validate and call it.

Ticket page, ``/ws/agent/presence/tickets/<id>/``: an open socket is a viewer of the ticket. The
consumer beats for it (``presence.HEARTBEAT_SECONDS``) while the connection lives, so a tab in the
background — whose timers the browser slows to once a minute — stays listed. A peer that is gone
without closing (a closed laptop) stops answering the ASGI server's websocket pings (uvicorn: every
20 s, 20 s to answer), the connection is closed and the leave is broadcast; a web process that dies
leaves entries that expire after ``presence.TTL_SECONDS``, pruned at the next beat on the ticket.
Client → server, JSON:
- ``{"type": "typing", "kind": "reply" | "note" | "idle"}``: the agent is writing (or stopped). Only
  the kind is read and passed on, never any text; at most one per ``TYPING_EVERY_SECONDS`` per socket
  and ``TYPING_LIMIT`` per agent over all their sockets.

Ticket list, ``/ws/agent/presence/``:
- ``{"type": "watch", "tickets": [ids]}``: the rows on screen. Only tickets the agent may see are
  watched (``selectors.ticket_queryset_for_user``), at most ``MAX_WATCHED``. The rows are re-read every
  beat, so an expired viewer disappears from the list too.

Server → client: HTML fragments (partials of ``admin/tickets/ticket/presence.html``), each replacing
the element with its id. An agent is shown the *other* agents: their own tabs are never listed.

Refusals close before accepting: 4403 — not signed in, not staff who may view tickets, or a ticket
outside the agent's queues (the same 404 the page gives); 4429 — more than ``CONNECT_LIMIT`` sockets
opened by one agent (the page retries later). Group events carry user ids and display names only, so
a socket renders them for its own user in its own language.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid

import redis
from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string
from django.utils import translation

from supportflow import i18n, ratelimit
from supportflow.resilience import DATABASE_ERRORS
from tickets import presence, selectors
from tickets.consumers import REFUSED, SERVICE_RESTART, TRY_AGAIN_LATER, agent_ticket, db

logger = logging.getLogger(__name__)

TEMPLATE = "admin/tickets/ticket/presence.html"
TOO_MANY = 4429
MAX_FRAME_CHARS = 4_000
MAX_WATCHED = 200  # the admin's "show all" limit (list_max_show_all)
TYPING_EVERY_SECONDS = 2.0  # the page sends one per 3 s while typing; this is the server's floor
WATCH_EVERY_SECONDS = 2.0
TYPING_SHOWN_MS = 6_000
TYPING_LIMIT = ratelimit.Limit(60, 60)  # per agent, all sockets: two tabs typing at the page's pace
CONNECT_LIMIT = ratelimit.Limit(120, 60)  # per agent: a reload storm of every open tab still fits
REDIS_ERRORS = (redis.RedisError, OSError)


def store(fn):
    """Presence calls (blocking redis-py, one round trip each) run on the thread pool, like ``db``."""
    return sync_to_async(fn, thread_sensitive=False)


def language_of(scope: dict) -> str:
    """The language this socket's fragments are rendered in: the console page's (the language cookie, else
    the browser's Accept-Language, kept to the console's languages), else the site default."""
    return i18n.console_from_scope(scope)


class PresenceSocket(AsyncWebsocketConsumer):
    """What both presence sockets share: admission, a beat while open, JSON frames in, fragments out."""

    user_id: int | None = None
    groups_joined: frozenset[str] = frozenset()
    handlers: dict[str, str] = {}
    _ticker: asyncio.Task | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._last: dict[str, float] = {}
        self._sent: dict[str, str] = {}

    async def __call__(self, scope, receive, send):
        """The beat lives exactly as long as the consumer, however it ends (a cancelled consumer
        never runs ``disconnect``; its entries then expire by themselves)."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._ticker is not None:
                self._ticker.cancel()

    async def dispatch(self, message: dict) -> None:
        """A database outage closes with 1013 (the page reconnects later); a Redis one costs presence
        only — the frame is dropped and the socket stays."""
        try:
            await super().dispatch(message)
        except DATABASE_ERRORS as exc:
            logger.warning("database unavailable on a presence socket (%s); closing", exc)
            await self.close(code=TRY_AGAIN_LATER)
        except REDIS_ERRORS as exc:
            logger.warning("presence store unavailable (%s); frame dropped", exc)

    async def admit(self, user) -> bool:
        """Accept the socket unless its agent opened too many."""
        verdict = await store(ratelimit.hit)("presence-connect", str(user.pk), CONNECT_LIMIT)
        if not verdict.allowed:
            await self.close(code=TOO_MANY)
            return False
        self.user_id = user.pk
        self.language = language_of(self.scope)
        await self.accept()
        return True

    async def start_beating(self) -> None:
        """Beat now and every ``presence.HEARTBEAT_SECONDS`` while the socket is open (a failed beat is
        tried again at the next one)."""
        self._ticker = asyncio.create_task(self._beat_while_open())
        await self.beat()

    async def _beat_while_open(self) -> None:
        while True:
            await asyncio.sleep(presence.HEARTBEAT_SECONDS)
            try:
                await self.beat()
            except REDIS_ERRORS as exc:
                logger.warning("presence store unavailable (%s); beat skipped", exc)

    async def beat(self) -> None:
        raise NotImplementedError

    async def join(self, groups: set[str]) -> None:
        for name in groups - self.groups_joined:
            await self.channel_layer.group_add(name, self.channel_name)
        for name in self.groups_joined - groups:
            await self.channel_layer.group_discard(name, self.channel_name)
        self.groups_joined = frozenset(groups)

    async def disconnect(self, code: int) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.join(set())

    async def layer_reconnected(self, event: dict) -> None:
        """Presence events may have been lost while Redis was away: the page reconnects and rejoins."""
        await self.close(code=SERVICE_RESTART)

    def allowed(self, what: str, every: float) -> bool:
        now = time.monotonic()
        if now - self._last.get(what, float("-inf")) < every:
            return False
        self._last[what] = now
        return True

    def render(self, partial: str, **context) -> str:
        with translation.override(self.language):
            return render_to_string(f"{TEMPLATE}#{partial}", context)

    async def send_fragment(self, target: str, html: str) -> None:
        """Send ``html`` for the element ``target`` unless this socket already shows exactly that."""
        if self._sent.get(target) != html:
            self._sent[target] = html
            await self.send(text_data=html)

    def others(self, viewers: list[presence.Viewer]) -> list[presence.Viewer]:
        return [v for v in viewers if v.user_id != self.user_id]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_FRAME_CHARS:
            return
        try:
            data = json.loads(text_data)
        except ValueError:
            return
        handler = self.handlers.get(data.get("type")) if isinstance(data, dict) else None
        if handler is not None:
            await getattr(self, handler)(data)


def _viewers_event(ticket_id: int, viewers: list[presence.Viewer]) -> dict:
    return {"type": "presence.viewers", "ticket": ticket_id, "viewers": [[v.user_id, v.name] for v in viewers]}


def _viewers_from(event: dict) -> list[presence.Viewer]:
    return [presence.Viewer(int(user_id), str(name)) for user_id, name in event["viewers"]]


class TicketPresenceConsumer(PresenceSocket):
    """One ticket page: a viewer of the ticket while its connection lives; it sees the others."""

    ticket_id: int | None = None
    handlers = {"typing": "typing"}

    async def connect(self) -> None:
        ticket = await agent_ticket(self.scope)
        if ticket is None:
            await self.close(code=REFUSED)
            return
        user = self.scope["user"]
        if not await self.admit(user):
            return
        self.ticket_id, self.name, self.connection = ticket.pk, presence.display_name(user), uuid.uuid4().hex
        await self.join({presence.group(ticket.pk)})
        await self.start_beating()

    async def disconnect(self, code: int) -> None:
        try:
            await super().disconnect(code)
        finally:
            if self.ticket_id is not None:
                await self._leave()

    async def _leave(self) -> None:
        try:
            change = await store(presence.viewer_leave)(
                ticket_id=self.ticket_id, user_id=self.user_id, connection=self.connection, name=self.name
            )
            if change.changed:
                await self.channel_layer.group_send(
                    presence.group(self.ticket_id), _viewers_event(self.ticket_id, change.viewers)
                )
        except REDIS_ERRORS as exc:
            logger.warning("presence store unavailable on leave (%s); the entry expires by itself", exc)

    async def beat(self) -> None:
        change = await store(presence.viewer_touch)(
            ticket_id=self.ticket_id, user_id=self.user_id, connection=self.connection, name=self.name
        )
        if change.changed:  # everyone on the ticket, this socket included, gets the new list
            await self.channel_layer.group_send(
                presence.group(self.ticket_id), _viewers_event(self.ticket_id, change.viewers)
            )
        else:
            await self.show(change.viewers)

    async def typing(self, data: dict) -> None:
        kind = data.get("kind")
        if kind not in presence.TYPING_KINDS or not self.allowed(f"typing-{kind}", TYPING_EVERY_SECONDS):
            return
        if not (await store(ratelimit.hit)("presence-typing", str(self.user_id), TYPING_LIMIT)).allowed:
            return
        await self.channel_layer.group_send(
            presence.group(self.ticket_id),
            {
                "type": "presence.typing",
                "ticket": self.ticket_id,
                "user": self.user_id,
                "name": self.name,
                "kind": kind,
            },
        )

    async def show(self, viewers: list[presence.Viewer]) -> None:
        await self.send_fragment("viewers", self.render("viewers", viewers=self.others(viewers)))

    async def presence_viewers(self, event: dict) -> None:
        await self.show(_viewers_from(event))

    async def presence_typing(self, event: dict) -> None:
        if event["user"] == self.user_id:
            return
        html = self.render(
            "typing",
            typing_user=event["user"],
            typing_name=event["name"],
            kind=event["kind"],
            expires_ms=TYPING_SHOWN_MS,
        )
        await self.send(text_data=html)


class ListPresenceConsumer(PresenceSocket):
    """The ticket list: for each visible row, who is viewing that ticket."""

    handlers = {"watch": "watch"}
    watched: tuple[int, ...] = ()

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not await db(_may_view_tickets)(user):
            await self.close(code=REFUSED)
            return
        self.user = user
        if await self.admit(user):
            await self.start_beating()

    async def watch(self, data: dict) -> None:
        wanted = data.get("tickets")
        if not isinstance(wanted, list) or not self.allowed("watch", WATCH_EVERY_SECONDS):
            return
        ids = {n for n in wanted[:MAX_WATCHED] if isinstance(n, int) and not isinstance(n, bool) and 0 < n < 2**31}
        self.watched = tuple(await db(_visible)(self.user, ids))
        await self.join({presence.group(ticket_id) for ticket_id in self.watched})
        await self.beat()

    async def beat(self) -> None:
        """Re-read the watched rows: what changed without an event (an expired viewer) is sent."""
        if self.watched:
            for ticket_id, viewers in (await store(presence.viewers_of)(list(self.watched))).items():
                await self.show(ticket_id, viewers)

    async def show(self, ticket_id: int, viewers: list[presence.Viewer]) -> None:
        html = self.render("row", ticket_id=ticket_id, viewers=self.others(viewers))
        await self.send_fragment(f"row-{ticket_id}", html)

    async def presence_viewers(self, event: dict) -> None:
        if event["ticket"] in self.watched:
            await self.show(event["ticket"], _viewers_from(event))

    async def presence_typing(self, event: dict) -> None:
        """The list shows who views a ticket, not who types in it."""


def _may_view_tickets(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm("tickets.view_ticket")
    )


def _visible(user, ids: set[int]) -> list[int]:
    if not ids:
        return []
    return sorted(selectors.ticket_queryset_for_user(user=user).filter(pk__in=ids).values_list("pk", flat=True))
