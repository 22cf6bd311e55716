"""A bare Channels echo over the same Redis layer: the baseline the chat benchmark compares against.

Routed only when ``BENCH_ENDPOINTS`` is on (never by default). Every socket of a room gets what any
socket of the room sends, through ``group_send`` — the same path as a chat message, minus our work.
"""

from __future__ import annotations

import re

from channels.generic.websocket import AsyncWebsocketConsumer

ROOM_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")


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
