"""One normalisation of email addresses (core.addresses), used by every app."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.conf import settings

from tidings.accounts.models import User
from tidings.audience import services as audience
from tidings.core import addresses
from tidings.core.digests import email_digest
from tidings.sending import postman


@pytest.mark.parametrize(
    ("raw", "sent_to", "stored"),
    [
        ("  Ada@Example.ORG ", "Ada@example.org", "ada@example.org"),
        ("Jörg@Bücher.example", "Jörg@xn--bcher-kva.example", "jörg@xn--bcher-kva.example"),
        ("user@XN--BCHER-KVA.example", "user@xn--bcher-kva.example", "user@xn--bcher-kva.example"),
    ],
)
def test_the_address_sent_to_keeps_its_local_part_and_the_stored_one_is_lower_case(
    raw, sent_to, stored
):
    assert addresses.mailbox(raw) == sent_to
    assert addresses.normalise_email(raw) == stored
    # Every app uses this one rule.
    assert postman._address(raw) == sent_to
    assert audience.normalise_email(raw) == stored


@pytest.mark.parametrize("raw", ["", "not-an-address", "a@b", "two@@example.org", "x" * 400])
def test_an_invalid_address_is_refused_by_every_caller_with_a_reason(raw):
    with pytest.raises(addresses.InvalidAddress, match="not a valid email address"):
        addresses.normalise_email(raw)
    with pytest.raises(audience.InvalidEmail, match="not a valid email address"):
        audience.normalise_email(raw)
    with pytest.raises(postman.InvalidRecipient, match="not a valid email address"):
        postman._address(raw)


def test_canonical_never_refuses_a_local_name():
    assert addresses.canonical(" Admin@LOCALHOST ") == "admin@localhost"
    assert addresses.canonical("Jörg@Bücher.example") == "jörg@xn--bcher-kva.example"


@pytest.mark.parametrize("raw", ["Ada@Example.org", " bob@example.net ", "C.D+tag@Sub.Example.com"])
def test_the_digest_of_an_address_is_unchanged(raw):
    """Digests stored before (suppression after erasure) keep matching."""
    key = settings.SUPPRESSION_KEY.encode()
    before = hmac.new(key, raw.strip().lower().encode(), hashlib.sha256).hexdigest()
    assert email_digest(raw) == before == email_digest(addresses.normalise_email(raw))


def test_users_are_stored_in_the_one_form_and_found_by_either_form_of_their_domain(db):
    new = User.objects.create_user("Jörg@Bücher.example", password=None)
    assert new.email == "jörg@xn--bcher-kva.example"
    assert User.objects.get_by_natural_key("JÖRG@bücher.example").pk == new.pk
    # A user saved before, with the Unicode domain, still logs in.
    old = User.objects.create_user("someone@example.org", password=None)
    User.objects.filter(pk=old.pk).update(email="ann@café.example")
    assert User.objects.get_by_natural_key("Ann@Café.example").pk == old.pk
    with pytest.raises(User.DoesNotExist):
        User.objects.get_by_natural_key("nobody@example.org")
