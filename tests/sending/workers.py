"""Real `celery worker` processes for the slow tests: started with the test database,
the Redis broker given, and short leases, so recovery shows within the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from celery import Celery
from django.conf import settings as django_settings
from django.db import connection

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
