"""Set up Django for a benchmark on its own PostgreSQL database (never the real one).

BENCH_DATABASE_URL names it (default: the `tidings_bench` database on 127.0.0.1); the
database is created and migrated when missing. Its name must contain "bench".
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tidings_bench"
# Set once Django is configured: a child that imports another child's helpers (which
# calls setup() at its top too) does not migrate twice.
_done = False


def setup() -> None:
    global _done
    if _done:
        return
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    name = url.rsplit("/", 1)[-1]
    if "bench" not in name:
        sys.exit(f"BENCH_DATABASE_URL must name a database for benchmarks, not {name!r}")
    _create_database(url, name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("TIDINGS_DATA_DIR", tempfile.mkdtemp(prefix="tidings-bench-"))
    os.environ.setdefault("TIDINGS_TASKS_EAGER", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
    sys.path.insert(0, str(ROOT / "src"))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    # Without REDIS_URL the cache (and the rate limits in it) is a table, as `tidings
    # migrate` makes it.
    call_command("createcachetable")
    _done = True


def _create_database(url: str, name: str) -> None:
    import psycopg

    server = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
