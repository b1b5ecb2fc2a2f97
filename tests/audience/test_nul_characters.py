"""The web pages that reach the same services as the API refuse a NUL character as the
API does (PostgreSQL cannot store one in text or jsonb: each of these was a 500), and
save nothing."""

from __future__ import annotations

import pytest

from tests.audience.conftest import path_of
from tidings.audience import links, services, setup
from tidings.audience.models import ContactRequest


@pytest.mark.parametrize(
    "change",
    [
        {"name": "Ada\x00"},
        {"tags": "vip\x00"},
        {"attr_key": ["city"], "attr_type": ["text"], "attr_value": ["Gh\x00ent"]},
        {"attr_key": ["ci\x00ty"], "attr_type": ["text"], "attr_value": ["Ghent"]},
    ],
)
def test_the_contact_page_refuses_a_nul_character(logged_in, account, change):
    contact = services.add_contact(account, "ada@example.org", name="Ada", tags=["a"])
    form = {"name": "Ada", "tags": "a", "attr_key": [], "attr_type": [], "attr_value": []}
    response = logged_in.post(f"/contacts/{contact.uuid}/", form | change)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()
    contact.refresh_from_db()
    assert (contact.name, contact.tags, contact.attributes) == ("Ada", ["a"], {})


@pytest.mark.parametrize("change", [{"name": "Rea\x00"}, {"attr:city": "Ant\x00werp"}])
def test_the_preference_page_refuses_a_nul_character(client, account, newsletter, change):
    reader = services.add_contact(
        account, "reader@example.org", name="Rea", attributes={"city": "Ghent"}
    )
    setup.set_editable_attributes(account, ["city"])
    path = path_of(links.preference_url(reader))
    response = client.post(path, {"action": "save", "name": "Rea", "attr:city": "Ghent"} | change)
    assert "NUL" in response.content.decode()
    reader.refresh_from_db()
    assert (reader.name, reader.attributes) == ("Rea", {"city": "Ghent"})


def test_a_request_with_a_nul_character_is_refused(client, account):
    reader = services.add_contact(account, "reader@example.org")
    path = path_of(links.preference_url(reader))
    form = {"action": "request", "kind": "access", "details": "All my data\x00"}
    response = client.post(path, form)
    assert response.status_code == 400 and "NUL" in response.content.decode()
    assert not ContactRequest.objects.exists()
