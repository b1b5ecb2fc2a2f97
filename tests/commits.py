"""On-commit callbacks in tests that run inside the test case's transaction.

A test with pytest-django's `db` runs inside atomic blocks that the test case opens and
rolls back at the end: they never commit, so `transaction.on_commit` callbacks (the mail a
service queues, the job it enqueues) would never run, and tests used `transactional_db`
instead, which commits for real and then empties every table (about ten times slower).

`run_on_commit_callbacks()` (the `on_commit_runs` fixture; `mailbox` and `smtp_mail`
use it) gives the code under test production's semantics inside the
test case's transaction: a callback registered outside any block of the code's own runs at
once (as in autocommit), one registered inside runs when the code's outermost block exits
without error, and is dropped when that block rolls back. Nothing commits, so a second
connection (a worker process, a live server, a thread of its own) still sees nothing: such
tests keep `transactional_db`, where these patches do nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

log = logging.getLogger(__name__)


def _only_the_test_case_is_open(connection: BaseDatabaseWrapper) -> bool:
    blocks = connection.atomic_blocks
    return bool(blocks) and all(block._from_testcase for block in blocks)


def _run(func: Callable[[], Any], robust: bool) -> None:
    if not robust:
        func()
        return
    try:
        func()
    except Exception as error:
        # What Django does with a robust callback that fails.
        log.error("Error calling %s in on_commit() (%s).", func.__qualname__, error, exc_info=True)


@contextmanager
def run_on_commit_callbacks() -> Iterator[None]:
    original_on_commit = BaseDatabaseWrapper.on_commit
    original_exit = transaction.Atomic.__exit__

    def on_commit(self: BaseDatabaseWrapper, func: Callable[[], Any], robust: bool = False) -> None:
        if _only_the_test_case_is_open(self) and not self.needs_rollback:
            if not callable(func):
                raise TypeError("on_commit()'s callback must be a callable.")
            _run(func, robust)  # autocommit in production: at once
            return
        original_on_commit(self, func, robust)

    def exit(self: transaction.Atomic, exc_type: Any, exc_value: Any, traceback: Any) -> Any:
        connection = transaction.get_connection(self.using)
        blocks = connection.atomic_blocks
        outermost = (
            not self._from_testcase
            and len(blocks) >= 2
            and blocks[-1] is self
            and all(block._from_testcase for block in blocks[:-1])
        )
        if not outermost:
            return original_exit(self, exc_type, exc_value, traceback)
        committed = False
        try:
            result = original_exit(self, exc_type, exc_value, traceback)
            committed = exc_type is None and not connection.needs_rollback
        finally:
            # Everything still pending was registered inside this block: it "commits" or
            # rolls back with it.
            pending, connection.run_on_commit = connection.run_on_commit, []
        if committed:
            for _, func, robust in pending:
                _run(func, robust)
        return result

    # Callbacks queued before (by fixtures set up without this) stay as Django leaves
    # them in a test: never run.
    earlier = {}
    for connection in connections.all(initialized_only=True):
        earlier[connection.alias], connection.run_on_commit = connection.run_on_commit, []
    BaseDatabaseWrapper.on_commit = on_commit  # type: ignore[method-assign]
    transaction.Atomic.__exit__ = exit  # type: ignore[method-assign]
    try:
        yield
    finally:
        BaseDatabaseWrapper.on_commit = original_on_commit  # type: ignore[method-assign]
        transaction.Atomic.__exit__ = original_exit  # type: ignore[method-assign]
        for alias, pending in earlier.items():
            connections[alias].run_on_commit[:0] = pending
