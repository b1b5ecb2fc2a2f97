"""The `tidings` command's choices that a user notices."""

from __future__ import annotations

import os
import subprocess
import sys

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


def test_tidings_port_alone_gives_links_on_that_port(tmp_path):
    """A process started with TIDINGS_PORT and no TIDINGS_BASE_URL (a worker started by
    itself, a management command) makes mail links on that port, as `tidings up` does."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TIDINGS_BASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env |= {"TIDINGS_PORT": "8123", "TIDINGS_DATA_DIR": str(tmp_path)}
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'tidings.settings'; "
        "django.setup(); from tidings.core.baseurl import absolute; print(absolute('/p/x'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "http://127.0.0.1:8123/p/x", done.stderr
