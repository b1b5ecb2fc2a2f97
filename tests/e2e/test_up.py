"""`tidings up`, run for real as the README says: web server, Celery worker and scheduler.

Each variant starts the whole product in a subprocess with a fresh data directory, signs
a customer up over plain HTTP, follows the confirmation mail that the real worker put in
the local outbox, logs in, then stops everything with SIGINT and looks for orphans.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from django.contrib.auth.hashers import check_password

from tests.conftest import free_port

pytestmark = pytest.mark.slow

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
E2E_DATABASE = "tidings_e2e_up"
BROKER_REDIS = "redis://127.0.0.1:6379/13"
CACHE_REDIS = "redis://127.0.0.1:6379/12"
STARTUP_SECONDS = 120
MAIL_SECONDS = 30
STOP_SECONDS = 20
EMAIL = "ada@example.org"
PASSWORD = "a long enough passphrase"
# Whatever configures the test process must not leak into the product under test.
FOREIGN_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_", "DJANGO_", "EMAIL_", "TIDINGS_")


@dataclass
class Installation:
    """A configuration of the product, and how to read its outbox table."""

    env: dict[str, str]
    # (recipient) -> [(subject, body)] from the outbox_outboxmessage table.
    outbox: Callable[[str], list[tuple[str, str]]]


def embedded_default(data_dir: Path) -> Iterator[Installation]:
    """SQLite in the data directory, the filesystem broker, the database cache."""
    database = data_dir / "tidings.sqlite3"

    def outbox(recipient: str) -> list[tuple[str, str]]:
        if not database.exists():
            return []
        try:
            with contextlib.closing(sqlite3.connect(database, timeout=10)) as connection:
                return connection.execute(
                    "SELECT subject, body FROM outbox_outboxmessage WHERE recipients LIKE ?",
                    (f"%{recipient}%",),
                ).fetchall()
        except sqlite3.OperationalError:
            return []  # not migrated yet

    yield Installation(env={}, outbox=outbox)


def postgres_and_redis(data_dir: Path) -> Iterator[Installation]:
    """A PostgreSQL database of its own, Redis as broker and as cache."""
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {E2E_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {E2E_DATABASE}")
    for url in (BROKER_REDIS, CACHE_REDIS):
        redis.Redis.from_url(url).flushdb()

    def outbox(recipient: str) -> list[tuple[str, str]]:
        try:
            with psycopg.connect(f"{POSTGRES}/{E2E_DATABASE}") as connection:
                return connection.execute(
                    "SELECT subject, body FROM outbox_outboxmessage WHERE recipients LIKE %s",
                    (f"%{recipient}%",),
                ).fetchall()
        except psycopg.errors.UndefinedTable:
            return []  # not migrated yet

    try:
        yield Installation(
            env={
                "DATABASE_URL": f"{POSTGRES}/{E2E_DATABASE}",
                "CELERY_BROKER_URL": BROKER_REDIS,
                "REDIS_URL": CACHE_REDIS,
            },
            outbox=outbox,
        )
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {E2E_DATABASE} WITH (FORCE)")
        for url in (BROKER_REDIS, CACHE_REDIS):
            redis.Redis.from_url(url).flushdb()


@dataclass
class Process:
    pid: int
    state: str
    ppid: int
    session: int
    cmdline: str


def processes() -> Iterator[Process]:
    """Every process that has not exited (zombies have), read from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue  # it exited while we looked
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses.
        state, ppid, _pgrp, sid = raw[raw.rindex(")") + 2 :].split()[:4]
        if state != "Z":
            yield Process(int(entry.name), state, int(ppid), int(sid), cmdline)


def live_processes(session: int) -> list[str]:
    """The processes of a session that have not exited."""
    return [f"{p.pid} {p.state} {p.cmdline}" for p in processes() if p.session == session]


def kill_session(session: int) -> None:
    for line in live_processes(session):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split()[0]), signal.SIGKILL)


def tidings_command() -> list[str]:
    script = Path(sys.executable).with_name("tidings")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tidings.cli"]


class Browser:
    """Just enough of a browser over urllib: a cookie jar, forms with their CSRF token."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path_or_url: str) -> tuple[str, str]:
        url = urllib.parse.urljoin(self.base_url, path_or_url)
        with self.opener.open(url, timeout=10) as response:
            return response.geturl(), response.read().decode()

    def submit(self, path: str, fields: dict[str, str]) -> tuple[str, str]:
        """GET the form (which sets the CSRF cookie), then POST it with its token."""
        _, html = self.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        assert token, html
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1), **fields})
        request = urllib.request.Request(self.base_url + path, data=data.encode(), method="POST")
        with self.opener.open(request, timeout=10) as response:
            return response.geturl(), response.read().decode()

    def cookies(self) -> set[str]:
        return {cookie.name for cookie in self.jar}


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"tidings up exited with {process.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer 200 within {STARTUP_SECONDS} s")


def said_running(log_path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if "Tidings is running at" in log_path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise AssertionError(f"tidings up exited with {process.returncode} before serving")
        time.sleep(0.3)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise AssertionError(f"tidings up did not say it was running in {STARTUP_SECONDS} s:\n{tail}")


def wait_for_mail(installation: Installation, recipient: str, subject: str) -> str:
    deadline = time.monotonic() + MAIL_SECONDS
    while time.monotonic() < deadline:
        for found_subject, body in installation.outbox(recipient):
            if subject in found_subject:
                return body
        time.sleep(0.3)
    raise AssertionError(f"no mail {subject!r} to {recipient} in the outbox after {MAIL_SECONDS} s")


def admin_password_hash(installation: Installation, data_dir: Path) -> str:
    sql = "SELECT password FROM accounts_user WHERE is_superuser"
    if "DATABASE_URL" in installation.env:
        with psycopg.connect(installation.env["DATABASE_URL"]) as connection:
            row = connection.execute(sql).fetchone()
    else:
        with contextlib.closing(sqlite3.connect(data_dir / "tidings.sqlite3")) as connection:
            row = connection.execute(sql).fetchone()
    assert row, "no admin in the database"
    return str(row[0])


def start_up(
    tmp_path: Path, installation: Installation
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`tidings up` on a free port with a data directory in `tmp_path`: the process, its
    base URL and its log."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_VARIABLES)}
    env |= {
        "TIDINGS_DATA_DIR": str(tmp_path / "data"),
        "TIDINGS_BASE_URL": base_url,
        "TIDINGS_ALLOWED_HOSTS": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        **installation.env,
    }
    log_path = tmp_path / "tidings-up.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*tidings_command(), "up", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a session of its own: every descendant is findable
        )
    return process, base_url, log_path


@pytest.fixture
def installation(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Installation]:
    make = embedded_default if request.param == "sqlite-filesystem-broker" else postgres_and_redis
    yield from make(tmp_path / "data")


def kill_int(pid: int) -> None:
    os.kill(pid, signal.SIGINT)


def ctrl_c(pid: int) -> None:
    # A terminal signals its whole foreground process group: Ctrl-C...
    os.killpg(pid, signal.SIGINT)


def terminal_closed(pid: int) -> None:
    # ... and SIGHUP when it closes (an SSH session that drops).
    os.killpg(pid, signal.SIGHUP)


# Each installation with each way of stopping would be six runs of about 40 s; every
# installation and every way of stopping are each covered by these three (the stopping
# is the supervisor's own code, the same whatever the database).
@pytest.mark.parametrize(
    ("installation", "interrupt"),
    [
        pytest.param("sqlite-filesystem-broker", kill_int, id="sqlite-filesystem-broker-kill-INT"),
        pytest.param(
            "sqlite-filesystem-broker",
            terminal_closed,
            id="sqlite-filesystem-broker-terminal-closed",
        ),
        pytest.param("postgres-redis", ctrl_c, id="postgres-redis-ctrl-c"),
    ],
    indirect=["installation"],
)
def test_tidings_up_serves_a_customer_and_stops_cleanly_when_interrupted(
    installation: Installation,
    interrupt: Callable[[int], None],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    data_dir = tmp_path / "data"
    process, base_url, log_path = start_up(tmp_path, installation)
    port = int(base_url.rsplit(":", 1)[1])
    session = process.pid
    try:
        # "Running" is said once the address answers, not before (a person opens it then).
        said_running(log_path, process)
        with urllib.request.urlopen(base_url + "/", timeout=30) as response:
            assert response.status == 200
        wait_until_up(base_url + "/", process)

        # The first admin was created with a generated password, readable by the owner only.
        credentials = data_dir / "admin-credentials.txt"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        password = re.search(r"^password: (\S+)$", credentials.read_text(), re.MULTILINE)
        assert password, credentials.read_text()
        assert len(password.group(1)) >= 20 and len(set(password.group(1))) >= 10
        assert check_password(password.group(1), admin_password_hash(installation, data_dir))

        # A customer signs up; the confirmation goes through the real worker to the outbox.
        browser = Browser(base_url)
        _, html = browser.submit(
            "/register/",
            {"organisation": "Acme Newsletters", "name": "Ada Lovelace", "email": EMAIL,
             "password": PASSWORD},
        )  # fmt: skip
        assert "Check your email" in html, html
        body = wait_for_mail(installation, EMAIL, "Confirm your email address")
        link = re.search(r"https?://\S+/confirm/\S+/", body)
        assert link and link.group(0).startswith(base_url + "/confirm/"), body
        url, html = browser.get(link.group(0))
        assert url == base_url + "/login/" and f"{EMAIL} is confirmed" in html, html

        url, html = browser.submit("/login/", {"username": EMAIL, "password": PASSWORD})
        assert url == base_url + "/dashboard/" and "Audience growth" in html, html
        url, html = browser.get("/account/")
        assert "My Account" in html and "Acme Newsletters" in html and EMAIL in html
        assert browser.cookies() <= {"sessionid", "csrftoken"}

        # Interrupted, the product and every process it started are gone within the limit.
        deadline = time.monotonic() + STOP_SECONDS
        interrupt(process.pid)
        try:
            code = process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"tidings up runs on {STOP_SECONDS} s after the signal") from None
        while live_processes(session) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert live_processes(session) == [], "orphans left behind"
        assert code == 0
        output = log_path.read_text()
        assert "Tidings stopped." in output
        # The mail went through the worker, not in the web process.
        assert re.search(r"Task tidings\.sending\.tasks\.deliver\[\S+\] succeeded", output)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except BaseException:
        print(f"--- output of tidings up ({request.node.callspec.id}) ---")
        print(log_path.read_text(errors="replace"))
        raise
    finally:
        if live_processes(session):
            kill_session(session)
            process.wait(timeout=10)


def children_of(pid: int) -> dict[int, str]:
    """The live direct children of a process, with their command lines."""
    return {p.pid: p.cmdline for p in processes() if p.ppid == pid}


def the_worker(supervisor: int) -> int:
    workers = [pid for pid, cmd in children_of(supervisor).items() if " celery " in f" {cmd} "]
    assert len(workers) == 1, children_of(supervisor)
    return workers[0]


def test_tidings_up_restarts_a_killed_worker_and_logs_its_death(tmp_path: Path) -> None:
    """The worker (with the scheduler in it) is killed as the kernel's OOM killer would:
    `tidings up` says so, starts it again, and mail goes out through the new one."""
    installation = next(embedded_default(tmp_path / "data"))
    process, base_url, log_path = start_up(tmp_path, installation)
    session = process.pid
    try:
        wait_until_up(base_url + "/", process)
        first = the_worker(process.pid)
        os.killpg(first, signal.SIGKILL)  # the worker, its pool and the scheduler in it

        deadline = time.monotonic() + STARTUP_SECONDS
        while "worker restarted" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        output = log_path.read_text()
        assert "worker died (killed by SIGKILL); restarting" in output
        assert "worker restarted" in output
        second = the_worker(process.pid)
        assert second != first
        # Nothing of the old group is left behind to double the pool.
        assert not [line for line in live_processes(session) if line.startswith(f"{first} ")]

        # The new worker does the work: a sign-up's confirmation reaches the outbox.
        browser = Browser(base_url)
        _, html = browser.submit(
            "/register/",
            {"organisation": "Acme", "name": "Ada", "email": EMAIL, "password": PASSWORD},
        )
        assert "Check your email" in html, html
        wait_for_mail(installation, EMAIL, "Confirm your email address")

        os.kill(process.pid, signal.SIGINT)
        assert process.wait(timeout=STOP_SECONDS) == 0
        deadline = time.monotonic() + STOP_SECONDS
        while live_processes(session) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert live_processes(session) == [], "orphans left behind"
    except BaseException:
        print(log_path.read_text(errors="replace"))
        raise
    finally:
        if live_processes(session):
            kill_session(session)
            process.wait(timeout=10)
