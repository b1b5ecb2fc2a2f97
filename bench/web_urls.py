"""The product's URLs plus two bare views, for the web benchmark only: what Django and
the middleware cost on the same server with no work of Tidings's own, and the same plus
one database statement (the least a link that records an event must do)."""

import random

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


def floor(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE bench_web_floor SET n = n + 1 WHERE id = %s", [random.randrange(1000)]
        )
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [
    path("bench/bare/", bare),
    path("bench/floor/", floor),
    path("", include("tidings.urls")),
]
