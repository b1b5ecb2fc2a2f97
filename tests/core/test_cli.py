"""The `tidings` command's choices that a user notices."""

from __future__ import annotations

import os

import pytest

from tidings.cli import serve_at


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 8765, "http://127.0.0.1:8765"),
        ("0.0.0.0", 9000, "http://127.0.0.1:9000"),  # noqa: S104
        ("localhost", 8000, "http://localhost:8000"),
    ],
)
def test_links_in_mail_point_to_the_port_served(monkeypatch, host, port, expected):
    monkeypatch.delenv("TIDINGS_BASE_URL", raising=False)
    serve_at(host, port)
    assert os.environ["TIDINGS_BASE_URL"] == expected


def test_a_configured_public_address_is_kept(monkeypatch):
    monkeypatch.setenv("TIDINGS_BASE_URL", "https://mail.example.com")
    serve_at("127.0.0.1", 8765)
    assert os.environ["TIDINGS_BASE_URL"] == "https://mail.example.com"
