"""ASGI entry point: HTTP through Django, the signaling WebSocket through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before anything imports models (the consumer does).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.middleware import WebSocketAuthStack  # noqa: E402
from config.metrics import with_metrics  # noqa: E402
from config.origins import SiteOriginValidator  # noqa: E402
from signaling.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # /metrics for Prometheus on the internal network (config/metrics.py), then Django.
        "http": with_metrics(django_asgi_app),
        # Only pages of this site (scheme, host and port) may open the socket.
        "websocket": SiteOriginValidator(WebSocketAuthStack(URLRouter(websocket_urlpatterns))),
    }
)
