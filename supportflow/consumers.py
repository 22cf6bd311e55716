"""Bare Channels echoes over the same Redis layer: the baselines the chat benchmark compares against;
and the consumer that refuses a socket no route matches.

The echoes are routed only when ``BENCH_ENDPOINTS`` is on (never by default); ``NoRouteConsumer`` always,
as the last route. Every socket of a room gets what any
socket of the room sends, through ``group_send`` — the same path as a chat message, minus our work.

``StoreEchoConsumer`` is the floor of "stored before delivered" (DESIGN: a message is in PostgreSQL
before anyone sees it): the echo plus one ``INSERT`` in autocommit, made the way the chat consumer makes
its store (``database_sync_to_async`` on a worker thread, a pooled connection) — nothing else. What chat
costs above it is ours; what it costs above the bare echo, any store-first chat pays.
"""

from __future__ import annotations

import re

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import connection

ROOM_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")


class NoRouteConsumer(AsyncWebsocketConsumer):
    """Refuses a socket on a path no other route matches: the handshake is answered 403, nothing runs."""

    async def connect(self) -> None:
        await self.close()


class EchoConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        room = self.scope["url_route"]["kwargs"]["room"]
        if not ROOM_RE.fullmatch(room):
            await self.close(code=4400)
            return
        self.group = f"echo.{room}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data and len(text_data) <= 64_000:
            await self.channel_layer.group_send(self.group, {"type": "echo.message", "text": text_data})

    async def echo_message(self, event: dict) -> None:
        await self.send(text_data=event["text"])


STORE_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS bench_echo_message "
    "(id bigserial PRIMARY KEY, room text NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)
_table_ready = False


def _store(room: str, body: str) -> None:
    global _table_ready
    with connection.cursor() as cursor:
        if not _table_ready:
            cursor.execute(STORE_TABLE_SQL)
            _table_ready = True
        cursor.execute("INSERT INTO bench_echo_message (room, body) VALUES (%s, %s)", [room, body])


class StoreEchoConsumer(EchoConsumer):
    store = staticmethod(database_sync_to_async(_store, thread_sensitive=False))

    async def connect(self) -> None:
        await super().connect()
        self.room = self.scope["url_route"]["kwargs"]["room"]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data and len(text_data) <= 64_000:
            await self.store(self.room, text_data)
            await self.channel_layer.group_send(self.group, {"type": "echo.message", "text": text_data})
