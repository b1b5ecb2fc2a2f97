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


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("plain", "it has no @ sign."),
        ("ann\uff20example.org", "it has a character that looks like the @ sign but is not one."),
        ("@example.org", "nothing comes before the @ sign."),
        ("ann@", "nothing comes after the @ sign."),
        (
            "a b@example.org",
            "the part before the @ sign has characters an address cannot have: a space.",
        ),
        (
            "ann@ex!ample.org",
            "the part after the @ sign has characters a domain name cannot have: “!”.",
        ),
        ("ann\u200b@example.org", "it has characters that are unsafe in an address: U+200B."),
        (
            "ann@example",
            "the part after the @ sign has no period (a domain name has one, as in example.com).",
        ),
        (
            "ann@example.123",
            "the part after the @ sign does not end in a valid top-level domain (such as .com).",
        ),
        (
            "ann@host.invalid",
            "the part after the @ sign is a special-use or reserved name, "
            "which cannot receive email.",
        ),
        ("a..b@example.org", "it cannot have two periods in a row."),
        ("ann.@example.org", "a period cannot come right before the @ sign."),
        ("ann@-example.org", "a hyphen cannot come right after the @ sign."),
        ("x" * 300 + "@example.org", "it is too long (58 characters too many)."),
        (
            "ann@" + "a" * 70 + ".org",
            "after the @ sign, a name between periods is too long (7 characters too many).",
        ),
        (
            "Ann <ann@example.org>",
            "write the address alone, without a name or angle brackets (“<” and “>”).",
        ),
        (
            "ann@[192.0.2.1]",
            "the part after the @ sign must be a domain name, not an address in brackets.",
        ),
        ("ann@xn--zz.org", "the part after the @ sign is not a valid international domain name."),
    ],
)
def test_the_reason_is_tidingss_own_as_precise_as_the_librarys(raw, reason):
    """email-validator explains in English only; the reason is ours, translated (its French
    on the hosted form: tests/audience/test_public_french.py)."""
    with pytest.raises(addresses.InvalidAddress) as refused:
        addresses.mailbox(raw)
    assert str(refused.value) == f"“{raw.strip()[:80]}” is not a valid email address: {reason}"


def test_an_explanation_of_the_library_not_known_is_left_out_rather_than_shown_in_english():
    refusal = addresses._refusal("ann@example.org", "The email address is new in version 3.")
    assert refusal == "“ann@example.org” is not a valid email address."


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
