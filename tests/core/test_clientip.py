"""The visitor's IP address and the request's scheme are read one way, and what a proxy
reports is believed only from the configured proxies' addresses."""

from __future__ import annotations

import pytest
from axes.helpers import get_client_ip_address
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from tidings.core.clientip import client_ip
from tidings.settings import envnetworks


def request(forwarded: str = "", remote: str = "10.0.0.1"):  # type: ignore[no-untyped-def]
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **extra)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "remote", "expected"),
    [
        ([], "203.0.113.9", "10.0.0.1", "10.0.0.1"),  # no proxy: the header is not believed
        (["10.0.0.1/32"], "198.51.100.1, 203.0.113.9", "10.0.0.1", "203.0.113.9"),
        (["10.0.0.0/8"], "198.51.100.1, 10.0.0.7", "10.0.0.1", "198.51.100.1"),
        (["10.0.0.0/8"], "", "10.0.0.1", "10.0.0.1"),
        (["10.0.0.0/8"], "not-an-address", "10.0.0.1", "10.0.0.1"),
        # A client that is no proxy writes the header itself: not believed.
        (["10.0.0.0/8"], "198.51.100.1", "203.0.113.50", "203.0.113.50"),
    ],
)
def test_only_the_trusted_proxies_are_believed(settings, proxies, forwarded, remote, expected):
    settings.TRUSTED_PROXIES = proxies
    assert client_ip(request(forwarded, remote)) == expected


def test_login_throttling_reads_the_same_address(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1/32"]
    assert get_client_ip_address(request("198.51.100.1, 203.0.113.9")) == "203.0.113.9"


@pytest.mark.parametrize(("remote", "secure"), [("10.0.0.1", True), ("203.0.113.50", False)])
def test_x_forwarded_proto_counts_only_from_a_trusted_proxy(client, db, settings, remote, secure):
    settings.TRUSTED_PROXIES = ["10.0.0.1/32"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/privacy/", HTTP_X_FORWARDED_PROTO="https", REMOTE_ADDR=remote)
    # Django redirects a request it believes to be plain http to https.
    assert (response.status_code != 301) is secure


@pytest.mark.parametrize("value", ["1", "proxy.example", "10.0.0.300"])
def test_a_trusted_proxy_that_is_no_address_stops_the_start(monkeypatch, value):

    monkeypatch.setenv("TIDINGS_TRUSTED_PROXIES", value)
    with pytest.raises(ImproperlyConfigured, match="TIDINGS_TRUSTED_PROXIES"):
        envnetworks("TIDINGS_TRUSTED_PROXIES")


def test_trusted_proxies_are_read_as_networks(monkeypatch):

    monkeypatch.setenv("TIDINGS_TRUSTED_PROXIES", "10.0.0.5, 10.1.0.0/16,::1")
    assert envnetworks("TIDINGS_TRUSTED_PROXIES") == ["10.0.0.5/32", "10.1.0.0/16", "::1/128"]
