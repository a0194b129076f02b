from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mttcrm.settings")

from mttcrm.asgi_handler import get_asgi_application

# Django must be set up before anything imports models (consumers, routing).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from integrations.fastlane import NotifyFastLane  # noqa: E402
from mttcrm.logs import AccessLogMiddleware, mask_daphne_access_log  # noqa: E402
from mttcrm.routing import websocket_urlpatterns  # noqa: E402

# Our access log (through logging: LOG_FORMAT, the notify URL's token masked) replaces Daphne's, which
# prints raw paths to stdout: run Daphne with -v 0. Daphne's is masked as well, should it be on.
mask_daphne_access_log()

application = ProtocolTypeRouter(
    {
        # Ordinary notifications are stored in front of Django (integrations/fastlane.py).
        "http": AccessLogMiddleware(NotifyFastLane(django_asgi_app)),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
