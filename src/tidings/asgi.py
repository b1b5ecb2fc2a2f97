"""The application `tidings web` serves (uvicorn, docs/operator.md): HTTP goes to Django
as it did under WSGI; WebSockets (the support desk's live chat) go to Channels'
consumers, only from this site's own origins (ALLOWED_HOSTS) and with the session, so
that staff are known by their login. `tidings web` also gives its processes a pool of
database connections (TIDINGS_DB_POOL): set it when serving this module another way."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")

from django.core.asgi import get_asgi_application

# Django is set up before anything imports a model (the consumers do).
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from tidings.desk.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
