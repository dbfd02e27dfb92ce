"""HTTP and WebSocket entry point (daphne)."""

import gc
import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purplevisits.settings")
django.setup(set_prefix=False)

from purplevisits.asgi_http import HTTPHandler  # noqa: E402
from purplevisits.body_limit import RequestBodyLimit  # noqa: E402

# Django's ASGIHandler with the synchronous stack run in one thread hop per request,
# behind a body cap that answers 413 before a too-large body is read.
django_asgi_app: Any = RequestBodyLimit(HTTPHandler())

# /static/ is served by whitenoise's middleware (settings.SERVE_STATIC): the collected,
# hashed files of STATIC_ROOT in production, the source folders too with DEBUG.

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from purplevisits import socket_transport  # noqa: E402
from purplevisits.routing import unknown_path_route, websocket_urlpatterns  # noqa: E402
from purplevisits.socket_origin import OriginValidator  # noqa: E402

# A message over daphne's size limit is refused, not the socket dropped.
socket_transport.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin: scheme, host and port (purplevisits/socket_origin.py); any other path
        # closes with 4404 (purplevisits/routing.py).
        "websocket": OriginValidator(
            AuthMiddlewareStack(URLRouter([*websocket_urlpatterns, unknown_path_route]))
        ),
    }
)

# Every object made while starting (Django, the apps, their views and URL patterns) lives
# as long as the process: frozen, Python's full garbage collections no longer walk them.
# Under the booking rush each full collection stopped a web process for 73–170 ms; with
# the start-up objects frozen, 12–38 ms (bench/booking_rush.py, docs/reliability.md).
get_resolver().url_patterns  # noqa: B018  (imports every view module now, before the freeze)
gc.freeze()
