"""The live connections (WebSockets), served by stock Daphne: ``daphne mttcrm.asgi:application``.

Pages and the notify URL are served by gunicorn (``mttcrm.wsgi``); the proxy in front sends ``/ws/`` here
(deploy/Caddyfile), `make run` points the pages at Daphne's own port (WEBSOCKET_URL). Plain HTTP that
reaches Daphne anyway is answered by Django's stock ASGI handler (the container health check asks /ping).
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mttcrm.settings")

from django.core.asgi import get_asgi_application

# Django must be set up before anything imports models (the consumers).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from calls.realtime.urls import websocket_urlpatterns  # noqa: E402
from mttcrm.wsorigin import ExactOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The page's origin must be one of WEBSOCKET_ALLOWED_ORIGINS exactly: scheme, host and port.
        "websocket": ExactOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), settings.WEBSOCKET_ALLOWED_ORIGINS
        ),
    }
)
