"""Real `celery worker` processes for the slow tests: started with the test database,
the Redis broker given, and short leases, so recovery shows within the test."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis
from celery import Celery
from django.conf import settings as django_settings
from django.db import connection

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


class Workers:
    def __init__(
        self, broker: str, *, lease: int, streams: int, extra: dict[str, str] | None = None
    ) -> None:
        self.broker = broker
        self.procs: list[subprocess.Popen[bytes]] = []
        db = dict(connection.settings_dict)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_BROKER_URL": broker,
            "TIDINGS_TASKS_EAGER": "false",
            "TIDINGS_DATA_DIR": str(django_settings.DATA_DIR),
            "TIDINGS_SENDING_LEASE_SECONDS": str(lease),
            "TIDINGS_SENDING_BATCH": "100",
            "TIDINGS_SENDING_STREAMS": str(streams),
            "TIDINGS_BROKER_VISIBILITY_TIMEOUT": "15",
            "PYTHONPATH": str(ROOT),
            **(extra or {}),
        }
        # Not the current app: tasks queued by later tests must keep using Tidings's own.
        self.client = Celery(broker=broker, set_as_current=False)

    def start(self, name: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tidings", "worker", "-c", "2",
             "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            cwd=ROOT, env=self.env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def send(self, task: str, *args: object) -> None:
        self.client.send_task(f"tidings.sending.tasks.{task}", args=list(args))

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)  # the worker and its pool: as if the machine died
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.client.close()


def wait_until(
    condition: Callable[[], bool], timeout: float, every: Callable[[], None] | None = None
) -> None:
    end = time.monotonic() + timeout
    last = 0.0
    while time.monotonic() < end:
        if condition():
            return
        if every is not None and time.monotonic() - last > 2:
            every()
            last = time.monotonic()
        time.sleep(0.2)
    raise AssertionError("timed out")


def cut_every_other_connection() -> int:
    """What the workers see when PostgreSQL restarts: every connection to the database
    is cut (the test's own is kept, to watch)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


class PrivateRedis:
    """A Redis of the test's own on a free port (never the shared one)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.start()

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no"]  # fmt: skip
        self.procs.append(
            subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        client = redis.Redis(port=self.port)
        wait_until(lambda: _pings(client), 10)

    def restart(self) -> None:
        """Killed (no persistence: every queued message is lost), then started again."""
        self.procs[-1].kill()
        self.procs[-1].wait()
        self.start()

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def attempt(fn: Callable[..., object], *args: object) -> None:
    """Call `fn`, ignoring failure: the broker may still be coming back."""
    with contextlib.suppress(Exception):
        fn(*args)


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb on a free port, never the shared
    one), holding a copy of the test database, that the test can crash and start again."""

    def __init__(self, source: dict[str, object]) -> None:
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="tidings-pg-"))
        self.data = self.home / "data"
        self.home.chmod(0o755)
        self.name = "tidings_private"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/{self.name}"
        self._as_owner(["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                        "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])  # fmt: skip
        self.start()
        # The test's data, as it committed it: schema, rows, triggers.
        source_url = (
            f"postgresql://{source['USER']}@{source['HOST']}:{source['PORT']}/{source['NAME']}"
        )
        target = f"postgresql://postgres@127.0.0.1:{self.port}"
        with psycopg.connect(f"{target}/postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {self.name}")
        dump = subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", source_url],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{target}/{self.name}"],
            input=dump.stdout, check=True, capture_output=True,
        )  # fmt: skip

    def _as_owner(self, command: list[str]) -> None:
        # PostgreSQL refuses to run as root: as root, run it as the `postgres` user.
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def _ctl(self, *args: str) -> None:
        self._as_owner([str(Path(shutil.which("pg_ctl") or "pg_ctl")), "-D", str(self.data), *args])

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.home} -c fsync=off"
        self._ctl("-o", options, "-l", str(self.home / "log"), "-w", "start")

    def crash_and_restart(self) -> None:
        """Stopped as a crash would (immediate: no shutdown checkpoint, every connection
        cut), then started again (it recovers from its log)."""
        self._ctl("-m", "immediate", "-w", "stop")
        self.start()

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.url.replace("postgres://", "postgresql://")) as conn:
            return list(conn.execute(sql, params).fetchall())

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("-m", "immediate", "stop")
        shutil.rmtree(self.home, ignore_errors=True)
