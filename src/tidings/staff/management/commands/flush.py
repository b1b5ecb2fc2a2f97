"""Django's `flush`, able to empty the audit log along with everything else.

The audit log's triggers refuse TRUNCATE (P7), and `flush` empties every table with one
TRUNCATE (PostgreSQL) or DELETEs (SQLite). Emptying the whole database is a deliberate
act (the command asks for confirmation, and the test suite does it between tests); a
TRUNCATE of the audit log alone stays refused.
"""

from typing import Any

from django.core.management.commands.flush import Command as DjangoFlush
from django.db import DEFAULT_DB_ALIAS, connections

from tidings.staff import db_guard


class Command(DjangoFlush):
    def handle(self, **options: Any) -> None:
        connection = connections[options.get("database") or DEFAULT_DB_ALIAS]
        with db_guard.whole_database_wipe(connection):
            super().handle(**options)
