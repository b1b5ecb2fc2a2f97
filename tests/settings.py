"""Settings for the test suite: real PostgreSQL and Redis on 127.0.0.1 unless told otherwise."""

import os
import tempfile

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tidings")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("TIDINGS_DATA_DIR", tempfile.mkdtemp(prefix="tidings-test-"))
os.environ.setdefault("TIDINGS_TASKS_EAGER", "true")
# Mail without a relay is kept in Django's test list (django.core.mail.outbox).
os.environ.setdefault("TIDINGS_EMAIL", "memory")
# Campaigns spend credits: the suite's accounts get plenty, the billing tests set their own.
os.environ.setdefault("TIDINGS_FREE_CREDITS", "10000000")
# Nothing reaches the EU's VIES from a test: a closed port answers nothing (a pending
# check); the billing tests point it at their fake (tests/billing/conftest.py).
os.environ.setdefault("TIDINGS_VIES_URL", "http://127.0.0.1:9/vies")

from tidings.settings import *  # noqa: F403

# Argon2 costs tens of milliseconds a hash, and every factory user has a password: the
# suite hashes with MD5 (fast, never for production). One test keeps Argon2, the
# production hasher (tests/accounts/test_registration.py::test_passwords_are_hashed_with_argon2).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]  # noqa: F405

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # The SQLite run (./dev test's second): a file, like the embedded default's, so that
    # the sending streams' threads open connections of their own as they do there.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(os.environ["TIDINGS_DATA_DIR"], "test-default.sqlite3")
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    # The same PostgreSQL, but a transactional test's flush deletes rows instead of
    # truncating every table (seconds per test): tests/pgbackend/base.py.
    DATABASES["default"]["ENGINE"] = "tests.pgbackend"  # noqa: F405

# A second database, SQLite (the embedded default's), for the tests that prove a rule
# gives the same answer on both (`@pytest.mark.django_db(databases=["default", "sqlite"])`).
DATABASES["sqlite"] = {  # noqa: F405
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.path.join(os.environ["TIDINGS_DATA_DIR"], "second.sqlite3"),
    "TEST": {"NAME": os.path.join(os.environ["TIDINGS_DATA_DIR"], "test-second.sqlite3")},
}

# Opens and clicks are written in the request, as without Redis: the tests of the stream
# (tests/sending/test_tracking_stream.py) turn it on themselves.
SENDING = {**SENDING, "tracking_stream": False}  # noqa: F405

# Page views are counted in the request, as without Redis: the tests of the buffer
# (tests/consent/test_page_view_buffer.py) turn it on themselves.
PAGE_VIEW_BUFFER = False
