"""Tidings served under a path (/app/), as behind a proxy that mounts it there."""

from django.urls import include, path

urlpatterns = [path("app/", include("tidings.urls"))]
