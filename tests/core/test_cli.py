"""The `tidings` command's choices that a user notices."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tidings.cli import _asgi_command, _web_command, serve_at


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


def test_pages_are_served_by_gunicorn_and_the_chat_by_uvicorn_beside_them():
    """ASGI serves pages at well under half gunicorn's rate here (bench/run.py web): the
    production commands keep them apart, `tidings up` puts both in one process."""
    assert _web_command("127.0.0.1", 8000)[2] == "gunicorn"
    assert _asgi_command("127.0.0.1", 8001)[2] == "uvicorn"


def test_the_web_servers_size_is_the_documented_variables(monkeypatch):
    """README: TIDINGS_WEB_WORKERS processes of TIDINGS_WEB_THREADS threads (2 and 4)."""

    def option(command: list[str], name: str) -> str:
        return command[command.index(name) + 1]

    monkeypatch.delenv("TIDINGS_WEB_WORKERS", raising=False)
    monkeypatch.delenv("TIDINGS_WEB_THREADS", raising=False)
    command = _web_command("127.0.0.1", 8000)
    assert (option(command, "--workers"), option(command, "--threads")) == ("2", "4")
    monkeypatch.setenv("TIDINGS_WEB_WORKERS", "3")
    monkeypatch.setenv("TIDINGS_WEB_THREADS", "2")
    command = _web_command("127.0.0.1", 8000)
    assert (option(command, "--workers"), option(command, "--threads")) == ("3", "2")


def test_the_chat_server_without_redis_refuses_to_start_and_says_why():
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    run = subprocess.run(
        [sys.executable, "-m", "tidings.cli", "chat"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert "needs Redis (REDIS_URL)" in run.stderr
