"""Websocket routes of every app, collected in one place for asgi.py."""

from __future__ import annotations

from django.conf import settings
from django.urls import path, re_path

from supportflow.consumers import EchoConsumer, NoRouteConsumer, StoreEchoConsumer
from tickets.consumers import AgentTicketConsumer, CustomerChatConsumer
from tickets.consumers_console import ListPresenceConsumer, TicketPresenceConsumer

websocket_urlpatterns = [
    path("ws/chat/<str:token>/", CustomerChatConsumer.as_asgi()),
    path("ws/agent/tickets/<int:ticket_id>/", AgentTicketConsumer.as_asgi()),
    path("ws/agent/presence/tickets/<int:ticket_id>/", TicketPresenceConsumer.as_asgi()),
    path("ws/agent/presence/", ListPresenceConsumer.as_asgi()),
]

if settings.BENCH_ENDPOINTS:
    websocket_urlpatterns.append(path("ws/bench/echo/<str:room>/", EchoConsumer.as_asgi()))
    websocket_urlpatterns.append(path("ws/bench/store-echo/<str:room>/", StoreEchoConsumer.as_asgi()))

# Last: a socket on a path no route matches is refused (HTTP 403 at the handshake), not left to the
# router, whose ``ValueError: No route found`` became a 500 and a stack trace in the log.
websocket_urlpatterns.append(re_path(r"", NoRouteConsumer.as_asgi()))
