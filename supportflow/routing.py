"""Websocket routes of every app, collected in one place for asgi.py."""

from __future__ import annotations

websocket_urlpatterns: list = []
