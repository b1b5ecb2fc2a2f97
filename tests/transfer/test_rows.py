"""The per-row checks: the fast address path agrees with email-validator."""

from __future__ import annotations

import string
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.audience.services import InvalidEmail, normalise_email
from tidings.privacy.services import email_digest
from tidings.transfer.rows import Contact, Refusal, RowReader, import_email

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
local = st.text(ATEXT + ".", min_size=1, max_size=70)
label = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=66)
domain = st.lists(label, min_size=1, max_size=4).map(".".join)
addresses = st.one_of(
    st.builds(lambda a, b: f"{a}@{b}", local, domain),
    st.builds(lambda a, b: f" {a}@{b}.xn--p1ai ", local, domain),
    st.text(max_size=40),
)


@settings(max_examples=3000, deadline=None)
@given(addresses)
def test_the_fast_path_accepts_and_normalises_exactly_like_email_validator(raw):
    try:
        expected: str | None = normalise_email(raw)
    except InvalidEmail:
        expected = None
    try:
        got: str | None = import_email(raw)
    except InvalidEmail:
        got = None
    assert got == expected


@pytest.mark.parametrize(
    "raw", ["a@localhost", "a@b.test", "a..b@example.org", "a@-x.org", "a@x.123", "@x.org"]
)
def test_invalid_addresses_are_refused(raw):
    with pytest.raises(InvalidEmail):
        import_email(raw)


def test_the_digest_is_the_suppression_lists_keyed_hash():
    result = RowReader(["email"], ["email"])(0, ["Ada@Example.org"])
    assert isinstance(result, Contact)
    assert result.digest == email_digest("ada@example.org")
    public_id = uuid.UUID(result.uuid)
    assert public_id.version == 7 and public_id.variant == uuid.RFC_4122


def test_an_empty_row_is_not_an_error_but_a_missing_address_is():
    reader = RowReader(["email", "name"], ["email", "name"])
    assert reader(0, ["", "  "]) is None
    assert reader(1, ["", "Ada"]) == Refusal("no email address", "rejected")
    assert isinstance(reader(2, ["ada@example.org", "x" * 201]), Refusal)
