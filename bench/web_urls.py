"""The product's URLs plus bare views, for the web benchmark only: what Django and the
middleware cost on the same server with no work of Tidings's own; the same plus one
database statement (the least a link that records an event must do); and the same plus
an endpoint's necessary statements (`work`: so many reads by primary key, then so many
updates by primary key in one transaction, committed before the answer)."""

import random

from django.db import connection, transaction
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


def work(request: HttpRequest, reads: int, writes: int) -> HttpResponse:
    with connection.cursor() as cursor:
        for _ in range(reads):
            cursor.execute("SELECT n FROM bench_web_floor WHERE id = %s", [random.randrange(1000)])
            cursor.fetchone()
        if writes:
            # Rows in order: two requests never wait on each other crosswise (deadlock).
            with transaction.atomic():
                for row in sorted(random.sample(range(1000), writes)):
                    cursor.execute("UPDATE bench_web_floor SET n = n + 1 WHERE id = %s", [row])
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [
    path("bench/bare/", bare),
    path("bench/floor/", floor),
    path("bench/work/<int:reads>/<int:writes>/", work),
    path("", include("tidings.urls")),
]
