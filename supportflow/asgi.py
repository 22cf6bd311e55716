"""ASGI entry point: HTTP through Django, websockets through Channels.

Websockets are wrapped in ``AllowedHostsOriginValidator(AuthMiddlewareStack(...))`` so a socket from
a foreign origin is refused before any consumer runs; each connection gets a request id for its logs.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportflow.settings")
django_asgi_app = get_asgi_application()  # must run before importing anything that touches models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from supportflow.logs import RequestIdASGIMiddleware  # noqa: E402
from supportflow.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": RequestIdASGIMiddleware(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
