"""The visitor's IP address is read one way: by the forms, consent records and axes."""

from __future__ import annotations

import pytest
from axes.helpers import get_client_ip_address
from django.test import RequestFactory

from tidings.core.clientip import client_ip


def request(forwarded: str = ""):  # type: ignore[no-untyped-def]
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    return RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", **extra)


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1"),  # no proxy: a client's header is not believed
        (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),
        (2, "198.51.100.1, 203.0.113.9", "198.51.100.1"),
        (2, "203.0.113.9", "10.0.0.1"),  # fewer hops than proxies: the connection's
    ],
)
def test_only_the_trusted_proxies_are_believed(settings, hops, forwarded, expected):
    settings.TRUSTED_PROXIES = hops
    assert client_ip(request(forwarded)) == expected


def test_login_throttling_reads_the_same_address(settings):
    settings.TRUSTED_PROXIES = 1
    assert get_client_ip_address(request("198.51.100.1, 203.0.113.9")) == "203.0.113.9"
