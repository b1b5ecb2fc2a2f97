"""The `tidings` command: run, administer and inspect a Tidings installation."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

COMMANDS = {
    "up": "set up the database and the first admin, then run web server, worker and scheduler",
    "web": "run only the web server (pages)",
    "chat": "run only the live chat's WebSocket server (beside `web`, with Redis)",
    "worker": "run only a Celery worker (on this or any other machine)",
    "beat": "run only the scheduler (one per installation)",
    "migrate": "create or update the database tables",
    "createadmin": "create an operator admin with a generated password and 2FA secret",
    "promises": "print each privacy promise with the tests that prove it",
    "audit": "audit log: `verify` (chain and checkpoints), `checkpoint`, `protect` (PostgreSQL)",
    "retention": "delete what the retention schedule says has expired (--dry-run: only show)",
    "rotate-keys": "re-encrypt encrypted fields with the newest key",
    "inbound": "take mail to the support address over SMTP (the support desk)",
    "breach": "breach register: `drill --by EMAIL` rehearses a whole incident (mail to the outbox)",
    "clock": "development only: show, `advance 2d` or `reset` the test clock (TIDINGS_TEST_CLOCK)",
    "manage": "run any Django management command (`tidings manage help`)",
}


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
    import django

    django.setup()


def _call(name: str, *args: str) -> None:
    _django()
    from django.core.management import call_command

    call_command(name, *args)


def serve_at(host: str, port: int) -> None:
    """Links in mail point where this server listens, unless TIDINGS_BASE_URL says
    otherwise (behind a proxy). Set before Django starts: every process inherits it."""
    if not os.environ.get("TIDINGS_BASE_URL"):
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        os.environ["TIDINGS_BASE_URL"] = f"http://{shown}:{port}"


def _up(args: argparse.Namespace) -> int:
    # The first start creates every table: a minute, and nothing else to show meanwhile.
    print("Setting up the database…", flush=True)
    _call("migrate", "--no-input", "-v", "0")
    _call("createcachetable")
    _call("createadmin", "--if-none")
    _call("publishpolicy")
    return _supervise(
        {
            # One process for pages and chat: the embedded default has no Redis to carry
            # the chat between a page server and a chat server.
            "web": _asgi_command(args.host, args.port),
            "worker": _worker_command(with_beat=True),
        },
        listens=(args.host, args.port),
    )


# What the web server's processes get in their environment beyond the supervisor's:
# database connections from a pool (settings.DB_POOL), as ASGI needs.
WEB_ENV = {"TIDINGS_DB_POOL": "true"}


def _web_command(host: str, port: int) -> list[str]:
    """gunicorn serving the pages (WSGI), as production runs them: ASGI costs the pages
    a good part of their speed (bench/run.py web), so the chat's WebSockets are served
    beside them by `tidings chat`, the proxy sending /ws/ there (docs/operator.md)."""
    import gunicorn

    command = [
        sys.executable, "-m", "gunicorn", "tidings.wsgi:application",
        "--bind", f"{host}:{port}",
        "--workers", os.environ.get("TIDINGS_WEB_WORKERS", "2"),
        "--threads", os.environ.get("TIDINGS_WEB_THREADS", "4"),
        "--graceful-timeout", "5",
    ]  # fmt: skip
    # An access log holds visitors' IP addresses and the signed tokens in confirmation
    # and unsubscribe links: off unless the operator asks for it (docs/operator.md).
    if os.environ.get("TIDINGS_ACCESS_LOG", "").lower() in {"1", "true", "yes", "on"}:
        command += ["--access-logfile", "-"]
    if gunicorn.version_info >= (25, 1):
        # Gunicorn 25.1+ opens a control socket at one fixed path per user
        # (~/.gunicorn/gunicorn.ctl): every installation on the machine would share it,
        # and it hands out runtime control that Tidings does not use.
        command.append("--no-control-socket")
    return command


def _asgi_command(host: str, port: int) -> list[str]:
    """uvicorn serving tidings.asgi: the live chat's WebSockets (`tidings chat`), and with
    them the pages too under `tidings up`, the all-in-one command. Several processes only
    when Redis carries the chat between them (CHANNEL_LAYERS); without it, one process
    holds the chat's layer in memory."""
    workers = os.environ.get("TIDINGS_WEB_WORKERS", "2") if os.environ.get("REDIS_URL") else "1"
    command = [
        sys.executable, "-m", "uvicorn", "tidings.asgi:application",
        "--host", host, "--port", str(port),
        "--workers", workers,
        # Django has no lifespan handler; Tidings reads the client's address itself
        # (core.client_ip, TIDINGS_TRUSTED_PROXIES), so uvicorn must not rewrite it.
        "--lifespan", "off", "--no-proxy-headers", "--no-server-header",
        # A chat message is a few KB: a larger frame is refused by the server itself.
        "--ws-max-size", str(64 * 1024),
        "--timeout-graceful-shutdown", "5",
    ]  # fmt: skip
    # An access log holds visitors' IP addresses and the signed tokens in confirmation
    # and unsubscribe links: off unless the operator asks for it (docs/operator.md).
    # uvicorn's own INFO lines name each WebSocket's address (a chat's token) and client:
    # they go with the access log.
    if os.environ.get("TIDINGS_ACCESS_LOG", "").lower() not in {"1", "true", "yes", "on"}:
        command += ["--no-access-log", "--log-level", "warning"]
    return command


def _worker_command(*, with_beat: bool) -> list[str]:
    command = [
        sys.executable, "-m", "celery", "-A", "tidings", "worker",
        "--loglevel", os.environ.get("TIDINGS_WORKER_LOG_LEVEL", "INFO"),
        "--concurrency", os.environ.get("TIDINGS_WORKER_CONCURRENCY", "2"),
        # A name of its own, so that several workers on one machine (`tidings up` and
        # `tidings worker`) do not clash as duplicate node names.
        "--hostname", f"tidings-{os.getpid()}@%h",
    ]  # fmt: skip
    if with_beat:
        from django.conf import settings

        command += ["--beat", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME]
    return command


# A child that dies is started again after a pause that doubles with each quick death
# (a crash loop must not spin), and drops back once it has run a while.
RESTART_PAUSE_FIRST = 1.0
RESTART_PAUSE_MAX = 30.0
RESTART_STEADY_SECONDS = 60.0


class _Child:
    """One supervised process: its command, the running process, when to start it again."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.pause = RESTART_PAUSE_FIRST
        self.restart_at: float | None = None
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        # Each child leads a process group of its own, so the terminal's signals (Ctrl-C,
        # hang-up) reach only the supervisor, which stops every child the same way; left
        # to themselves, a hang-up would stop uvicorn and make Celery re-execute itself.
        self.started = time.monotonic()
        return subprocess.Popen(self.command, process_group=0, env={**os.environ, **self.env})

    def check(self) -> None:
        """Note a death (logged, with what killed it) and restart when the pause is over."""
        now = time.monotonic()
        if self.restart_at is None:
            if self.proc.poll() is None:
                return
            code = self.proc.returncode
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
            # What is left of its group (uvicorn's workers, Celery's pool) goes with it,
            # or the new one would find the port taken and the pool doubled.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            if now - self.started >= RESTART_STEADY_SECONDS:
                self.pause = RESTART_PAUSE_FIRST
            print(f"{self.name} died ({how}); restarting in {self.pause:.0f} s", flush=True)
            self.restart_at = now + self.pause
            self.pause = min(self.pause * 2, RESTART_PAUSE_MAX)
        elif now >= self.restart_at:
            self.restart_at = None
            self.proc = self._start()
            print(f"{self.name} restarted (pid {self.proc.pid})", flush=True)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def reap(self, deadline: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        # Whatever is left of the child's group (it, uvicorn's workers, Celery's pool
        # and beat) is killed, so that nothing outlives `tidings up`.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def _answers(host: str, port: int) -> bool:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    try:
        socket.create_connection((shown, port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _supervise(commands: dict[str, list[str]], listens: tuple[str, int] | None = None) -> int:
    """Run the processes together and keep them running: a child that dies (killed, out
    of memory, crashed) is logged and started again; Ctrl-C stops all of them. With
    `listens`, "running" is said once the web server answers there, not before: on a
    busy machine it takes seconds, and a person opening the address at once would find
    nothing."""
    from django.conf import settings

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    # Before the children start: a signal in between would otherwise kill only this
    # process and leave them running. SIGHUP is the terminal closing.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    children = [
        _Child(name, command, WEB_ENV if "uvicorn" in command else {})
        for name, command in commands.items()
    ]
    running = f"Tidings is running at {settings.BASE_URL}  (Ctrl-C stops it)"
    if listens is None:
        print(running, flush=True)
    else:
        print("Starting Tidings…", flush=True)
    while not stopping:
        for child in children:
            child.check()
        if listens is not None and _answers(*listens):
            print(running, flush=True)
            listens = None
        time.sleep(0.3)
    for child in children:
        child.terminate()
    deadline = time.monotonic() + 15
    for child in children:
        child.reap(deadline)
    print("Tidings stopped.", flush=True)
    return 0


def _clock(action: str, step: str | None) -> int:
    _django()
    from django.core.management import CommandError, call_command

    try:
        call_command("clock", action, *([step] if step else []))
    except CommandError as error:
        print(f"tidings clock: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tidings",
        description="Tidings: self-hosted email marketing that keeps its privacy promises.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    up = sub.add_parser("up", help=COMMANDS["up"])
    web = sub.add_parser("web", help=COMMANDS["web"])
    for p in (up, web):
        p.add_argument("--host", default=os.environ.get("TIDINGS_HOST", "127.0.0.1"))
        p.add_argument("--port", type=int, default=int(os.environ.get("TIDINGS_PORT", "8000")))
    chat = sub.add_parser("chat", help=COMMANDS["chat"])
    chat.add_argument("--host", default=os.environ.get("TIDINGS_CHAT_HOST", "127.0.0.1"))
    chat.add_argument("--port", type=int, default=int(os.environ.get("TIDINGS_CHAT_PORT", "8001")))
    sub.add_parser("worker", help=COMMANDS["worker"])
    sub.add_parser("beat", help=COMMANDS["beat"])
    sub.add_parser("migrate", help=COMMANDS["migrate"])
    admin = sub.add_parser("createadmin", help=COMMANDS["createadmin"])
    admin.add_argument("--email", default="admin@localhost")
    admin.add_argument("--if-none", action="store_true", help="only if no admin exists yet")
    promises = sub.add_parser("promises", help=COMMANDS["promises"])
    promises.add_argument("--markdown", action="store_true")
    audit = sub.add_parser("audit", help=COMMANDS["audit"])
    audit.add_argument("action", choices=["verify", "checkpoint", "protect"])
    audit.add_argument("options", nargs=argparse.REMAINDER, help="see `tidings audit -h`")
    retention = sub.add_parser("retention", help=COMMANDS["retention"])
    retention.add_argument("--dry-run", action="store_true", help="delete nothing")
    sub.add_parser("rotate-keys", help=COMMANDS["rotate-keys"])
    inbound = sub.add_parser("inbound", help=COMMANDS["inbound"])
    inbound.add_argument("--host", default=None, help="default: TIDINGS_INBOUND_HOST, 127.0.0.1")
    inbound.add_argument("--port", default=None, help="default: TIDINGS_INBOUND_PORT, 2525")
    breach = sub.add_parser("breach", help=COMMANDS["breach"])
    breach.add_argument("action", choices=["drill"])
    breach.add_argument("options", nargs=argparse.REMAINDER, help="see `tidings breach -h`")
    clock = sub.add_parser("clock", help=COMMANDS["clock"])
    clock.add_argument("action", nargs="?", choices=["show", "advance", "reset"], default="show")
    clock.add_argument("step", nargs="?", help="with advance: 30m, 6h, 2d, 1w")
    manage = sub.add_parser("manage", help=COMMANDS["manage"])
    manage.add_argument("rest", nargs=argparse.REMAINDER)

    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "up":
        serve_at(args.host, args.port)
        return _up(args)
    if args.command == "web":
        serve_at(args.host, args.port)
        _django()
        return _supervise(
            {"web": _web_command(args.host, args.port)}, listens=(args.host, args.port)
        )
    if args.command == "chat":
        if not os.environ.get("REDIS_URL"):
            print(
                "tidings chat serves the live chat beside `tidings web` and needs Redis "
                "(REDIS_URL) to share the chat with it; without Redis, `tidings up` serves "
                "pages and chat in one process.",
                file=sys.stderr,
            )
            return 2
        _django()
        return _supervise(
            {"chat": _asgi_command(args.host, args.port)}, listens=(args.host, args.port)
        )
    if args.command in ("worker", "beat"):
        _django()
        from django.conf import settings

        cmd = (
            _worker_command(with_beat=False)
            if args.command == "worker"
            else [sys.executable, "-m", "celery", "-A", "tidings", "beat", "--schedule",
                  settings.CELERY_BEAT_SCHEDULE_FILENAME]
        )  # fmt: skip
        return _supervise({args.command: cmd})
    if args.command == "migrate":
        _call("migrate", "--no-input")
        _call("createcachetable")
        _call("publishpolicy")
        return 0
    if args.command == "createadmin":
        _call("createadmin", "--email", args.email, *(["--if-none"] if args.if_none else []))
        return 0
    if args.command == "promises":
        _call("promises", *(["--markdown"] if args.markdown else []))
        return 0
    if args.command == "audit":
        _django()
        from django.core.management import CommandError, call_command

        try:
            call_command("audit", args.action, *args.options)
        except SystemExit as exit_:
            return int(exit_.code or 0)
        except CommandError as error:
            print(f"tidings audit {args.action}: {error}", file=sys.stderr)
            return 1
        return 0
    if args.command == "retention":
        _call("retention", *(["--dry-run"] if args.dry_run else []))
        return 0
    if args.command == "rotate-keys":
        _call("rotatekeys")
        return 0
    if args.command == "inbound":
        where = [*(["--host", args.host] if args.host else []),
                 *(["--port", args.port] if args.port else [])]  # fmt: skip
        _call("inbound", *where)
        return 0
    if args.command == "breach":
        _call("breach", args.action, *args.options)
        return 0
    if args.command == "clock":
        return _clock(args.action, args.step)
    if args.command == "manage":
        _django()
        from django.core.management import execute_from_command_line

        execute_from_command_line(["tidings manage", *args.rest])
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
