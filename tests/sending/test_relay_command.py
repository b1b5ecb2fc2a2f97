"""The operator's relays are managed with `tidings manage relay`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tidings.sending import engine
from tidings.sending.models import Relay, SendingDomain
from tidings.sending.senders import signing_domain

pytestmark = pytest.mark.django_db


def test_an_operator_relay_serves_accounts_without_their_own(account, monkeypatch):
    monkeypatch.setenv("RELAY_PASSWORD", "s3cret")
    out = StringIO()
    call_command(
        "relay", "add", "--name", "operator", "--host", "smtp.operator.example",
        "--username", "tidings", "--password-env", "RELAY_PASSWORD", stdout=out,
    )  # fmt: skip
    relay = Relay.objects.get()
    assert relay.account is None and relay.password == "s3cret"
    assert engine.pick_relay(account) == relay
    own = Relay.objects.create(account=account, name="own", host="smtp.example.org")
    assert engine.pick_relay(account) == own
    listing = StringIO()
    call_command("relay", "list", stdout=listing)
    assert "smtp.operator.example" in listing.getvalue() and "s3cret" not in listing.getvalue()
    call_command("relay", "remove", str(relay.pk), stdout=StringIO())
    assert list(Relay.objects.all()) == [own]


def test_a_missing_password_variable_adds_nothing(monkeypatch):
    monkeypatch.delenv("NOPE", raising=False)
    with pytest.raises(CommandError):
        call_command("relay", "add", "--name", "x", "--host", "h", "--password-env", "NOPE")
    assert not Relay.objects.exists()


def test_the_operators_dkim_keys_are_managed_with_a_command(account):

    out = StringIO()
    call_command("dkim", "add", "Operator.Example", stdout=out)
    assert 'tidings._domainkey.operator.example TXT "v=DKIM1; k=rsa; p=' in out.getvalue()
    key = SendingDomain.objects.get(account__isnull=True)
    # The operator's own mail and mail "via" the operator from that domain are signed.
    assert signing_domain(None, "no-reply@operator.example") == key
    assert signing_domain(account.pk, "no-reply@operator.example") == key
    with pytest.raises(CommandError):
        call_command("dkim", "add", "operator.example", stdout=StringIO())  # once
    listing = StringIO()
    call_command("dkim", "list", stdout=listing)
    assert "operator.example" in listing.getvalue() and "PRIVATE" not in listing.getvalue()
    call_command("dkim", "remove", "operator.example", stdout=StringIO())
    assert not SendingDomain.objects.exists()
