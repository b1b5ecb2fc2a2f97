"""Fixtures shared by the whole suite: real SMTP (aiosmtpd), real Redis, factories."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings
from django.utils import translation

from tests.apiclient import Api
from tests.automations.webhook_receiver import Receiver
from tests.commits import run_on_commit_callbacks
from tests.dnsserver import dns_server  # noqa: F401  (a fixture: a real DNS server on loopback)
from tests.factories import PASSWORD, AccountFactory, StaffFactory, UserFactory
from tidings.accounts import apikeys
from tidings.core import clock


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        # The SQLite run (./dev test's second) leaves out what needs PostgreSQL itself.
        needs = [item for item in items if item.get_closest_marker("postgres") is not None]
        if needs:
            config.hook.pytest_deselected(items=needs)
            items[:] = [item for item in items if item.get_closest_marker("postgres") is None]
    for item in items:
        for marker in item.iter_markers("promise"):
            for pid in marker.args:
                if not (isinstance(pid, str) and pid.startswith("P") and pid[1:].isdigit()):
                    raise pytest.UsageError(f"{item.nodeid}: bad promise id {pid!r}")


@pytest.fixture(scope="session", autouse=True)
def _clean_redis() -> None:
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(autouse=True)
def _mail_through_the_pipeline(settings) -> None:  # type: ignore[no-untyped-def]
    # pytest-django points Django's mail at its memory backend; Tidings's own backend
    # hands it to the pipeline, whose local end (TIDINGS_EMAIL=memory) is that memory.
    settings.EMAIL_BACKEND = "tidings.sending.backend.PipelineBackend"


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    # A request in French leaves French active in the thread (as LocaleMiddleware does):
    # every test starts, and ends, in the default language.
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    # Login throttling lives in the cache: no test inherits another's failures.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def customer(db):  # type: ignore[no-untyped-def]
    return UserFactory(name="Ada Lovelace", email="ada@example.org", phone="+44 20 7946 0018")


@pytest.fixture
def other_customer(db):  # type: ignore[no-untyped-def]
    return UserFactory(name="Grace Hopper", email="grace@example.org")


@pytest.fixture
def staff(db):  # type: ignore[no-untyped-def]
    return StaffFactory(email="agent@operator.example", name="Support Agent")


@pytest.fixture
def on_commit_runs(db) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """On-commit callbacks run inside `db`'s transaction as they would in production
    (tests/commits.py): no `transactional_db` only to see on-commit mail and jobs."""
    with run_on_commit_callbacks():
        yield


@pytest.fixture
def mailbox(on_commit_runs, mailoutbox):  # type: ignore[no-untyped-def]
    """Django's test outbox; on-commit mail is sent (tests/commits.py)."""
    return mailoutbox


@dataclass
class SMTPSink:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["X-Envelope-To"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SMTPSink]:
    """A real SMTP server on a free loopback port."""
    sink = SMTPSink("127.0.0.1", free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def customer_relays_on_loopback(settings, monkeypatch):  # type: ignore[no-untyped-def]
    """A customer's relay on 127.0.0.1 is refused (core.netguard) unless the operator
    allows it: the tests' relays are aiosmtpd on loopback, so they allow it, explicitly,
    as an operator would (also for worker processes the test starts)."""
    settings.ALLOWED_RELAY_HOSTS = ["127.0.0.1"]
    monkeypatch.setenv("TIDINGS_ALLOWED_RELAY_HOSTS", "127.0.0.1")


@pytest.fixture
def smtp_mail(smtp_server: SMTPSink, settings, on_commit_runs) -> SMTPSink:  # type: ignore[no-untyped-def]
    """Route Tidings's mail through the real SMTP server (the operator's, from settings)."""
    settings.EMAIL_DELIVERY = "smtp"
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    return smtp_server


__all__ = ["AccountFactory", "StaffFactory", "UserFactory"]


@pytest.fixture
def api(client, customer) -> Api:  # type: ignore[no-untyped-def]
    """The HTTP API with a key of the customer's account."""
    _, key = apikeys.create_api_key(customer.account, name="tests", by=customer)
    return Api(client, key)


@pytest.fixture
def other_api(client, other_customer) -> Api:  # type: ignore[no-untyped-def]
    """The HTTP API with a key of another account."""
    _, key = apikeys.create_api_key(other_customer.account, name="theirs", by=other_customer)
    return Api(client, key)


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:  # type: ignore[no-untyped-def]
    """A real HTTP server on 127.0.0.1 that webhooks may reach (allowed explicitly)."""
    settings.ALLOWED_WEBHOOK_HOSTS = ["127.0.0.1"]
    server = Receiver()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def test_clock(settings) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """The development test clock on, at the real time (core/clock.py)."""
    settings.TEST_CLOCK = True
    clock.reset()
    yield clock
    clock.reset()
