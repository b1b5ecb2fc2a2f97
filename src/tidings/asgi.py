"""The application `tidings web` serves (uvicorn, docs/operator.md): HTTP goes to Django
as it did under WSGI; WebSockets (the support desk's live chat) go to Channels'
consumers, only from this site's own origins (ALLOWED_HOSTS) and with the session, so
that staff are known by their login. `tidings web` also gives its processes a pool of
database connections (TIDINGS_DB_POOL): set it when serving this module another way."""

import asyncio
import os
import weakref
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")

from django.core.asgi import get_asgi_application

# Django is set up before anything imports a model (the consumers do).
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from tidings.desk.routing import websocket_urlpatterns  # noqa: E402


class ThreadsLimit:
    """At most `limit` HTTP requests of this process in Django at once (like gunicorn's
    threads before); the others wait their turn without a thread. Django runs each
    request of a synchronous view in a thread of its own: 200 clients at once were 200
    threads fighting for the GIL (bench/run.py web, figures in the commit)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit
        # One per event loop (a server has one; tests start several).
        self.semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self.semaphores = weakref.WeakKeyDictionary()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        loop = asyncio.get_running_loop()
        semaphore = self.semaphores.get(loop)
        if semaphore is None:
            semaphore = self.semaphores[loop] = asyncio.Semaphore(self.limit)
        async with semaphore:
            await self.app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": ThreadsLimit(django_application, settings.WEB_THREADS),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
