"""Typed attributes: one rule turns what people write into numbers, dates and yes/no;
an account's declared types hold on every path that writes a contact (the contact page,
the API's service), and segments compare declared attributes as their type, with the
operators that fit it, on PostgreSQL and SQLite alike."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.apiclient import Api
from tests.audience.conftest import path_of
from tidings.accounts import apikeys
from tidings.audience import attribute_types, links, segments, services, setup
from tidings.audience.errors import AudienceError
from tidings.audience.models import Contact, ContactAttribute
from tidings.audience.segments import SegmentError
from tidings.core import datamap


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("42", 42),
        ("-7", -7),
        ("3,5", 3.5),
        ("3.5", 3.5),
        ("1 234,50", 1234.5),
        ("1\u202f234", 1234),
        ("1.234.567", 1234567),
        ("1.234,5", 1234.5),
        ("1,234.5", 1234.5),
        ("1'234.5", 1234.5),
        ("abc", None),
        ("1,2,3", None),
        ("4 2", None),
        ("", None),
        ("1.234.5", None),
    ],
)
def test_numbers_as_people_write_them(text, number):
    assert attribute_types.parse_number(text) == number


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("31/01/2025", "2025-01-31"),
        ("1/2/2024", "2024-02-01"),
        ("31.01.2025", "2025-01-31"),
        ("31-01-2025", "2025-01-31"),
        ("2025-01-31", "2025-01-31"),
        ("2025-01-31T00:00:00", "2025-01-31"),
        ("31/02/2024", None),
        ("01/31/2025", None),
        ("2025", None),
    ],
)
def test_dates_day_first_or_iso(text, iso):
    assert attribute_types.parse_date(text) == iso


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["41", "40", "67,5"], "number"),
        (["15/03/2024", "2023-06-01"], "date"),
        (["oui", "non", "Oui"], "boolean"),
        (["ja", "nein"], "boolean"),
        (["yes", "", "false"], "boolean"),
        (["0612345678", "0712345678"], "text"),  # phone numbers keep their zero
        (["75001", "01000"], "text"),  # so do postal codes
        (["1234567890123456789"], "text"),  # an identifier, not a quantity
        (["41", "forty"], "text"),
        (["", " "], "text"),
        ([42, 3.5], "number"),  # a workbook's number cells
    ],
)
def test_the_type_is_guessed_from_the_first_values(values, kind):
    assert attribute_types.guess(values) == kind


def test_values_are_converted_to_their_typed_form_or_refused_with_a_reason():
    assert attribute_types.convert("number", "67,5") == 67.5
    assert attribute_types.convert("date", "02/01/2025") == "2025-01-02"
    assert attribute_types.convert("boolean", "Nein") is False
    assert attribute_types.convert("text", 42) == "42"
    for kind, value, reason in (
        ("number", "quarante", "“quarante” is not a number"),
        ("date", "2025-13-01", "“2025-13-01” is not a date"),
        ("boolean", "maybe", "“maybe” is not yes or no"),
    ):
        with pytest.raises(attribute_types.AttributeValueError, match=reason):
            attribute_types.convert(kind, value)


# --- declarations and the paths that write a contact ----------------------------------


def test_a_declared_type_holds_when_a_contact_is_added_or_changed(account):
    services.declare_attributes(account, {"age": "number", "since": "date"})
    contact = services.add_contact(account, "ada@example.org", attributes={"age": "41"})
    assert contact.attributes == {"age": 41}
    with pytest.raises(AudienceError, match="“age” is a number: “old” is not a number"):
        services.update_contact(contact, name="Changed", attributes={"age": "old"})
    contact.refresh_from_db()
    assert contact.name == "" and contact.attributes == {"age": 41}
    with pytest.raises(AudienceError, match="is a date"):
        services.add_contact(account, "bob@example.org", attributes={"since": "soon"})
    assert not Contact.objects.filter(email="bob@example.org").exists()
    # Undeclared attributes are text, as they always were.
    services.update_contact(contact, attributes={"age": 42, "city": "Ghent"})
    contact.refresh_from_db()
    assert contact.attributes == {"age": 42, "city": "Ghent"}


def test_a_declared_type_cannot_be_declared_again_as_another(account):
    services.declare_attributes(account, {"age": "number"})
    with pytest.raises(AudienceError, match="declared as number"):
        services.declare_attributes(account, {"age": "text", "city": "text"})
    assert attribute_types.types_of(account) == {"age": "number"}
    with pytest.raises(AudienceError, match="not an attribute type"):
        services.declare_attributes(account, {"city": "colour"})
    assert not ContactAttribute.objects.filter(key="city").exists()


def test_the_contact_page_validates_by_the_declared_type(logged_in, account):
    services.declare_attributes(account, {"age": "number"})
    contact = services.add_contact(account, "ada@example.org", attributes={"age": 41})
    url = reverse("audience:contact", args=[contact.uuid])
    page = logged_in.get(url).content.decode()
    assert '<option value="number" selected>' in page
    response = logged_in.post(
        url,
        {"name": "Ada", "tags": "", "attr_key": ["age"], "attr_type": ["text"],
         "attr_value": ["forty-one"]},
    )  # fmt: skip
    assert response.status_code == 400
    assert "“age” is a number: “forty-one” is not a number" in response.content.decode()
    contact.refresh_from_db()
    assert contact.attributes == {"age": 41} and contact.name == ""
    response = logged_in.post(
        url,
        {"name": "Ada", "tags": "", "attr_key": ["age"], "attr_type": ["number"],
         "attr_value": ["42,5"]},
    )  # fmt: skip
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.attributes == {"age": 42.5}


def test_declared_attributes_are_in_the_accounts_data_map():
    # In the customer's "all my data" archive, and erased with the account.
    entry = next(e for e in datamap.application_data() if e.model is ContactAttribute)
    assert entry.account_path == "account"
    assert datamap.is_declared_free(ContactAttribute)


# --- segments -------------------------------------------------------------------------


@pytest.fixture
def people(account):  # type: ignore[no-untyped-def]
    services.declare_attributes(
        account, {"age": "number", "signup": "date", "loyal": "boolean", "city": "text"}
    )
    rows = [
        ("a@example.org", {"age": 41, "signup": "2024-12-31", "loyal": True, "city": "Lyon"}),
        ("b@example.org", {"age": 40, "signup": "2025-01-01", "loyal": False, "city": "Paris"}),
        ("c@example.org", {"age": 9, "signup": "2023-02-01", "loyal": True}),
        ("d@example.org", {"age": 100.5, "signup": "2025-06-30"}),
        ("e@example.org", {}),
    ]
    for email, attributes in rows:
        services.add_contact(account, email, attributes=attributes)


def _rules(key: str, op: str, value: str) -> dict:
    condition = {"field": "attribute", "key": key, "op": op, "value": value}
    return {"match": "all", "conditions": [condition]}


def _found(account, key, op, value):  # type: ignore[no-untyped-def]
    rules = _rules(key, op, value)
    emails = set(segments.matching(account, rules).values_list("email", flat=True))
    assert segments.size(account, rules) == len(emails)
    return {e.split("@")[0] for e in emails}


def test_numbers_and_dates_compare_as_numbers_and_dates(account, people):
    assert _found(account, "age", "gt", "40") == {"a", "d"}
    assert _found(account, "age", "lt", "40,5") == {"b", "c"}
    assert _found(account, "age", "eq", "41") == {"a"}
    assert _found(account, "age", "in", "9, 40") == {"b", "c"}
    assert _found(account, "signup", "before", "2025-01-01") == {"a", "c"}
    assert _found(account, "signup", "after", "01/01/2025") == {"d"}
    assert _found(account, "signup", "eq", "31/12/2024") == {"a"}
    assert _found(account, "loyal", "eq", "oui") == {"a", "c"}
    assert _found(account, "loyal", "neq", "yes") == {"b", "d", "e"}
    assert _found(account, "city", "contains", "ari") == {"b"}
    # Rules saved before the attributes were declared keep their meaning.
    assert _found(account, "signup", "gt", "2025-01-01") == {"d"}
    assert _found(account, "age", "before", "10") == {"c"}


def test_a_rule_on_the_columns_header_means_the_attribute_the_import_named_from_it(account, people):
    """The import names the column "Âge" attribute "age": a marketer who types the header
    they know gets the right people, not a silent zero."""
    assert _found(account, "Âge", "gt", "40") == {"a", "d"}
    assert _found(account, "AGE", "gt", "40") == {"a", "d"}
    saved = segments.save_segment(account, name="Over 40", rules=_rules("Âge", "gt", "40"))
    assert saved.rules["conditions"][0]["key"] == "age"
    # A name that is not declared under either form stays as typed.
    assert _found(account, "Ville", "eq", "Lyon") == set()


@pytest.mark.parametrize(
    ("key", "op", "value", "message"),
    [
        ("age", "contains", "4", "“age” is a number: use one of eq, neq, gt, lt, in, exists"),
        ("age", "gt", "forty", "“forty” is not a number"),
        ("signup", "contains", "2025", "“signup” is a date"),
        ("signup", "before", "soon", "“soon” is not a date"),
        ("loyal", "eq", "perhaps", "“perhaps” is not yes or no"),
        ("city", "gt", "M", "“city” is a text"),
    ],
)
def test_operators_and_values_that_do_not_fit_the_type_are_refused(
    account, people, key, op, value, message
):
    rules = _rules(key, op, value)
    with pytest.raises(SegmentError, match=message):
        segments.save_segment(account, name="x", rules=rules)
    assert not account.segments.exists()


def test_the_rule_builder_offers_the_operators_of_each_type(logged_in, account, people):
    page = logged_in.get(reverse("audience:segment_new")).content.decode()
    assert 'id="attribute-types"' in page
    assert '"age": "number"' in page
    assert '"number": ["eq", "neq", "gt", "lt", "in", "exists"]' in page


def test_declaring_a_type_converts_the_values_contacts_already_hold(account):
    ada = services.add_contact(account, "ada@example.org", attributes={"age": "41"})
    bob = services.add_contact(account, "bob@example.org", attributes={"age": "3,5"})
    services.add_contact(account, "eve@example.org", attributes={"city": "Ghent"})
    assert _found(account, "age", "gt", "40") == set()  # "41" is text, not a number
    services.declare_attributes(account, {"age": "number"})
    ada.refresh_from_db()
    bob.refresh_from_db()
    assert (ada.attributes, bob.attributes) == ({"age": 41}, {"age": 3.5})
    assert _found(account, "age", "gt", "40") == {"ada"}


def test_a_type_that_values_already_held_do_not_fit_is_refused_and_nothing_changes(
    account, logged_in
):
    services.add_contact(account, "ada@example.org", attributes={"age": "41"})
    services.add_contact(account, "bob@example.org", attributes={"age": "old"})
    response = logged_in.post(
        reverse("audience:settings"), {"action": "declare", "key": "age", "kind": "number"}
    )
    assert response.status_code == 400
    assert (
        "1 of your contacts hold a value of “age” that is not a number (for example “old”)"
        in response.content.decode()
    )
    assert not ContactAttribute.objects.exists()
    assert Contact.objects.get(email="ada@example.org").attributes == {"age": "41"}
    response = logged_in.post(
        reverse("audience:settings"), {"action": "declare", "key": "since", "kind": "date"}
    )
    assert response.status_code == 302
    page = logged_in.get(reverse("audience:settings")).content.decode()
    assert "<td>since</td><td>date</td>" in page


def test_the_contact_corrects_a_declared_attribute_by_its_type_on_their_page(client, account):
    services.declare_attributes(account, {"birthday": "date"})
    setup.set_editable_attributes(account, ["birthday"])
    ada = services.add_contact(account, "ada@example.org", attributes={"birthday": "1990-04-01"})
    path = path_of(links.preference_url(ada))
    response = client.post(path, {"action": "save", "name": "Ada", "attr:birthday": "someday"})
    assert "“someday” is not a date" in response.content.decode()
    ada.refresh_from_db()
    assert ada.attributes == {"birthday": "1990-04-01"} and ada.name == ""
    client.post(path, {"action": "save", "name": "Ada", "attr:birthday": "02/05/1991"})
    ada.refresh_from_db()
    assert ada.attributes == {"birthday": "1991-05-02"}


def test_the_api_stores_declared_attributes_typed_and_refuses_what_does_not_fit(client, customer):
    _, key = apikeys.create_api_key(customer.account, name="tests", by=customer)
    api = Api(client, key)
    services.declare_attributes(customer.account, {"age": "number", "since": "date"})
    response = api("post", "/contacts", {"email": "ada@example.org", "attributes": {"age": "41"}})
    assert response.status_code == 201, response.content
    assert Contact.objects.get(email="ada@example.org").attributes == {"age": 41}
    response = api("post", "/contacts", {"email": "bob@example.org", "attributes": {"age": "old"}})
    assert response.status_code == 422
    assert "“age” is a number: “old” is not a number" in response.json()["detail"]
    assert not Contact.objects.filter(email="bob@example.org").exists()
    uuid = Contact.objects.get(email="ada@example.org").uuid
    response = api("patch", f"/contacts/{uuid}", {"attributes": {"since": "yesterday"}})
    assert response.status_code == 422
    assert Contact.objects.get(email="ada@example.org").attributes == {"age": 41}
