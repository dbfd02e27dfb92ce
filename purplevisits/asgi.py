"""HTTP and WebSocket entry point (daphne)."""

import gc
import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purplevisits.settings")
django.setup(set_prefix=False)

from purplevisits.asgi_http import HTTPHandler  # noqa: E402

# Django's ASGIHandler with the synchronous stack run in one thread hop per request.
django_asgi_app: Any = HTTPHandler()

from django.conf import settings  # noqa: E402

if settings.SERVE_STATIC:
    # Embedded setup and small deployments: daphne serves /static/ itself. Behind a
    # proxy that serves collected static files, set SERVE_STATIC=false.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from purplevisits.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# Every object made while starting (Django, the apps, their views and URL patterns) lives
# as long as the process: frozen, Python's full garbage collections no longer walk them.
# Under the booking rush each full collection stopped a web process for 73–170 ms; with
# the start-up objects frozen, 12–38 ms (bench/booking_rush.py, docs/reliability.md).
get_resolver().url_patterns  # noqa: B018  (imports every view module now, before the freeze)
gc.freeze()
