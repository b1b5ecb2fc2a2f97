"""Customers' templates run in render processes with hard limits on time and memory.

The sandbox (`sandbox.py`) refuses what it can see coming (a repetition or a value past
its size cap, too many loop steps), but the cost of a step is not bounded there: sorting
a long list forty times, or a filter written in Python over a long string, holds a CPU
for minutes. So every render runs in a child process (forked from a fork server, not
from the caller: it shares nothing with the caller's threads or connections), kept warm
and reused:

- before each unit of work (one message, one preview) the child lowers its own CPU
  limit (RLIMIT_CPU) to what it has used plus the timeout, and its address space
  (RLIMIT_AS) is capped at its size at start plus `TIDINGS_RENDER_MEMORY_MB`: a
  runaway allocation fails with MemoryError there, not in a web or sending worker;
- the caller waits at most `TIDINGS_RENDER_TIMEOUT` seconds (wall clock) for each unit
  and kills the child when that passes; a killed or broken child is replaced by a new
  one on the next call.

Render processes are forked from a fork server made on first use (Django set up and the
rendering modules imported once), so a new one, or the replacement of a killed one,
starts in milliseconds.

A call runs a generator function in the child and gets one result per unit it yields
(a batch of a campaign renders its claimed chunk in one call: one round trip, not one
per message). When a unit hits a limit, the units done before it are kept and the
limit is reported as a `TemplateError` with `limit=True`.

The pool is made on first use, at most `TIDINGS_RENDER_PROCESSES` children per process;
its children exit when the caller goes away (their pipe closes) and are stopped at
exit. Inside a render process a call just runs in place.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import multiprocessing
import os
import resource
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import AuthenticationString  # type: ignore[attr-defined]
from typing import Any

import django
from django.conf import settings
from django.utils.translation import gettext as _

from tidings.campaigns.sandbox import TemplateError

# Settings the rendered messages depend on (links, their signatures): the child takes
# the caller's values with each call, so that what a test or an operator changed at run
# time holds there too.
MIRRORED_SETTINGS = ("BASE_URL", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "SENDING")
# A fresh interpreter loading Django and the project takes a few seconds on a busy
# machine; that start is not the template's time.
START_SECONDS = 120.0
# What the first unit of a call made with `prepare=True` may take: compiling a
# campaign's templates, inlining its CSS and, in a fresh process, a first message (the
# first of a process costs tenfold: lazy set-ups). Its template ran for the sample
# contact at save time already, within the limits.
PREPARE_SECONDS = 60.0

_in_child = False
# In a render process, the limits of the call it runs (`one_message_at_most`).
_call_limits: Limits | None = None


@dataclass(frozen=True)
class Limits:
    timeout: float
    memory_mb: int

    @classmethod
    def current(cls) -> Limits:
        return cls(float(settings.RENDER["timeout"]), int(settings.RENDER["memory_mb"]))


def limit_error(limits: Limits, *, memory: bool) -> TemplateError:
    if memory:
        text = _(
            "the template needs more than %(mb)s MB of memory to render one message; "
            "nothing was sent for it"
        ) % {"mb": limits.memory_mb}
    else:
        text = _(
            "the template takes longer than %(s)s seconds to render one message; "
            "nothing was sent for it"
        ) % {"s": f"{limits.timeout:g}"}
    return TemplateError(text, limit=True)


@dataclass
class Outcome:
    """The results of the units done, in order; `error` is the limit that stopped the
    unit after them (None: every unit was done)."""

    results: list[Any] = field(default_factory=list)
    error: TemplateError | None = None


# --- the child ----------------------------------------------------------------------------


def _address_space() -> int:
    """This process's virtual size in bytes (Linux), or 0 when it cannot be read."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_cpu(seconds: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds) + 1
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def one_message_at_most() -> None:
    """In a render process, before a customer's template runs during a preparation (the
    check renders of the inlined template): from here, the CPU it may take is one
    message's (the call's timeout), not the preparation's PREPARE_SECONDS. Past it the
    process dies of SIGXCPU and the caller reports the limit, as for a message. Outside
    a render process, nothing."""
    if _in_child and _call_limits is not None:
        _limit_cpu(_call_limits.timeout)


def _limit_memory(base: int, megabytes: int) -> None:
    if not base:
        return
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    soft = base + megabytes * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _apply(mirrored: dict[str, Any]) -> None:
    for name, value in mirrored.items():
        if getattr(settings, name, None) != value:
            setattr(settings, name, value)


_preload: list[str] = ["tidings.campaigns.renderpreload"]
_forkserver: Any = None


def preload(module: str) -> None:
    """Have the render processes' fork server import `module` (named, not imported
    here: a higher layer names what its renders need), so no render process pays for it."""
    if module not in _preload:
        _preload.append(module)


def _context() -> Any:
    """A fork server (multiprocessing's "forkserver"): one fresh interpreter, started on
    first use, with Django set up and the rendering modules imported; each render
    process is forked from it at once, single-threaded, sharing nothing with the
    caller's threads or connections."""
    global _forkserver
    if _forkserver is None:
        _forkserver = multiprocessing.get_context("forkserver")
        _forkserver.set_forkserver_preload(list(_preload))
    return _forkserver


def _child(conn: Connection, settings_module: str) -> None:
    """A render process: set up Django, then run calls until the pipe closes."""
    global _in_child, _call_limits
    _in_child = True
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    django.setup()
    base = _address_space() + 64 * 1024 * 1024  # the modules a first call still imports
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        fn, args, limits, mirrored, prepare = request
        _call_limits = limits
        # Unpickling the call imported what it needs: done, the units' time starts now.
        conn.send(("start", None))
        _limit_memory(base, limits.memory_mb)
        try:
            _apply(mirrored)
            units = fn(*args)
            while True:
                _limit_cpu(PREPARE_SECONDS if prepare else limits.timeout)
                prepare = False
                try:
                    item = next(units)
                except StopIteration:
                    break
                conn.send(("item", item))
            del units
            conn.send(("end", None))
        except MemoryError:
            # Whatever was half-built is garbage; a fresh process is cleaner than this one.
            conn.send(("memory", None))
            return
        except Exception as error:  # reported to the caller, who raises it
            conn.send(("raise", _portable(error)))


def _portable(error: Exception) -> Exception:
    if isinstance(error, TemplateError):
        return error
    return RuntimeError(f"{type(error).__name__}: {error}")


# --- the caller -------------------------------------------------------------------------------


_starting = threading.Lock()


class _Child:
    def __init__(self) -> None:
        context = _context()
        self.conn, theirs = context.Pipe()
        module = os.environ.get("DJANGO_SETTINGS_MODULE") or settings.SETTINGS_MODULE
        self.process = context.Process(
            target=_child, args=(theirs, module), name="tidings-render", daemon=True
        )
        with _starting:
            # A Celery prefork child is marked daemonic, and multiprocessing refuses
            # children to daemonic processes lest they be orphaned; a render process is
            # not: it exits when its pipe to us closes, its fork server likewise. Its
            # key is billiard's, which multiprocessing cannot pass on: a key of our own.
            config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
            saved = dict(config)
            config.pop("daemon", None)
            if not isinstance(config.get("authkey"), AuthenticationString):
                config["authkey"] = AuthenticationString(os.urandom(32))
            self.process.authkey = os.urandom(32)
            try:
                self.process.start()
            finally:
                config.clear()
                config.update(saved)
        theirs.close()
        if not self.conn.poll(START_SECONDS):
            self.kill()
            raise RuntimeError("a render process did not start")
        self.conn.recv()

    @property
    def alive(self) -> bool:
        return self.process.is_alive() and not self.conn.closed

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # already gone
            self.conn.send(None)
        self.process.join(2)
        self.kill()

    def run(
        self,
        fn: Callable[..., Iterator[Any]],
        args: tuple[Any, ...],
        limits: Limits,
        prepare: bool,
    ) -> Outcome:
        mirrored = {name: getattr(settings, name, None) for name in MIRRORED_SETTINGS}
        self.conn.send((fn, args, limits, mirrored, prepare))
        outcome = Outcome()
        # The first call imports the modules it needs: not the template's time.
        if not self.conn.poll(START_SECONDS):
            self.kill()
            raise RuntimeError("a render process did not take its work")
        kind, value = self.conn.recv()
        if kind == "raise":
            raise value
        while True:
            wait = PREPARE_SECONDS if prepare and not outcome.results else limits.timeout
            if not self.conn.poll(wait):
                self.kill()
                outcome.error = limit_error(limits, memory=False)
                return outcome
            try:
                kind, value = self.conn.recv()
            except (EOFError, OSError):
                # Killed where it stood: the CPU limit (SIGXCPU) or the kernel's OOM killer.
                self.kill()
                outcome.error = limit_error(limits, memory=self.process.exitcode != -signal.SIGXCPU)
                return outcome
            if kind == "item":
                outcome.results.append(value)
            elif kind == "end":
                return outcome
            elif kind == "memory":
                self.kill()
                outcome.error = limit_error(limits, memory=True)
                return outcome
            else:
                raise value


class _Pool:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.idle: list[_Child] = []
        self.count = 0
        self.ready = threading.Condition()

    def _take(self) -> _Child:
        with self.ready:
            while True:
                while self.idle:
                    child = self.idle.pop()
                    if child.alive:
                        return child
                    child.kill()
                    self.count -= 1
                if self.count < max(1, int(settings.RENDER["processes"])):
                    self.count += 1
                    break
                self.ready.wait()
        try:
            return _Child()
        except BaseException:
            with self.ready:
                self.count -= 1
                self.ready.notify()
            raise

    def _give_back(self, child: _Child) -> None:
        with self.ready:
            if child.alive:
                self.idle.append(child)
            else:
                child.kill()
                self.count -= 1
            self.ready.notify()

    def run(
        self,
        fn: Callable[..., Iterator[Any]],
        args: tuple[Any, ...],
        limits: Limits,
        prepare: bool,
    ) -> Outcome:
        child = self._take()
        try:
            return child.run(fn, args, limits, prepare)
        except BaseException:
            child.kill()  # interrupted mid-call: its pipe may hold a half answer
            raise
        finally:
            self._give_back(child)

    def close(self) -> None:
        with self.ready:
            children, self.idle = self.idle, []
            self.count -= len(children)
        for child in children:
            child.stop()

    def pids(self) -> list[int]:
        with self.ready:
            return [c.process.pid for c in self.idle if c.process.pid is not None]


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _current() -> _Pool:
    global _pool
    with _pool_lock:
        # A forked process (a prefork worker) must not share its parent's children.
        if _pool is None or _pool.pid != os.getpid():
            _pool = _Pool()
        return _pool


def run(
    fn: Callable[..., Iterator[Any]],
    *args: Any,
    limits: Limits | None = None,
    prepare: bool = False,
) -> Outcome:
    """Run the generator function `fn(*args)` in a render process, each unit it yields
    within the limits; with `prepare`, the first unit is a preparation that may take
    PREPARE_SECONDS. `fn` and its arguments must be picklable (a module-level function
    and plain data or models)."""
    limits = limits or Limits.current()
    if _in_child:
        return Outcome(results=list(fn(*args)))
    return _current().run(fn, args, limits, prepare)


def one(fn: Callable[..., Iterator[Any]], *args: Any) -> Any:
    """The single result of `fn(*args)` run in a render process; a limit it hit is
    raised as a TemplateError."""
    outcome = run(fn, *args)
    if outcome.error is not None:
        raise outcome.error
    return outcome.results[0]


def shutdown() -> None:
    """Stop this process's render processes (they are made again when needed)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None and pool.pid == os.getpid():
        pool.close()


def children() -> list[int]:
    """The process ids of this process's idle render processes (for tests)."""
    with _pool_lock:
        pool = _pool
    return pool.pids() if pool is not None and pool.pid == os.getpid() else []


atexit.register(shutdown)
