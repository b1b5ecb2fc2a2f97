"""The audience through the HTTP API: contacts, lists, subscriptions and segments, each
scoped to the key's account, each bad input refused with nothing written."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tidings.audience import mailing_lists, segments, services
from tidings.audience.models import ConsentProof, Contact, MailingList, Segment, Subscription


@pytest.fixture
def news(customer) -> MailingList:  # type: ignore[no-untyped-def]
    return mailing_lists.save_list(customer.account, name="News", visibility="public")


def test_create_get_update_and_erase_a_contact(api, customer, news):
    created = api(
        "post",
        "/contacts",
        {
            "email": "Ada@Example.org",
            "name": "Ada",
            "attributes": {"age": 36, "city": "Ghent", "member": True},
            "tags": ["vip"],
            "lists": [str(news.uuid)],
            "legal_basis": "consent",
            "basis_at": "2024-03-01T10:00:00Z",
            "note": "signed up at the shop",
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["email"] == "ada@example.org" and body["source"] == "api"
    assert body["attributes"] == {"age": 36, "city": "Ghent", "member": True}
    assert body["subscriptions"][0]["list"] == str(news.uuid)
    proof = ConsentProof.objects.get(contact__uuid=body["uuid"])
    assert proof.method == "api" and proof.note == "signed up at the shop"

    path = f"/contacts/{body['uuid']}"
    assert api("get", path).json()["name"] == "Ada"
    patched = api("patch", path, {"name": "Ada King", "attributes": {"age": 37, "city": None}})
    assert patched.status_code == 200
    assert patched.json()["attributes"] == {"age": 37, "member": True}
    assert api("post", f"{path}/blocklist").json()["status"] == "blocklisted"
    assert api("delete", path).status_code == 204
    assert api("get", path).status_code == 404
    assert services.is_suppressed(customer.account, "ada@example.org")


def test_contacts_are_listed_by_pages_with_a_cursor(api, customer):
    for i in range(7):
        services.add_contact(customer.account, f"guest{i}@example.org", tags=["t"] if i % 2 else [])
    first = api("get", "/contacts?limit=3").json()
    assert [c["email"] for c in first["items"]] == [
        "guest6@example.org",
        "guest5@example.org",
        "guest4@example.org",
    ]
    second = api("get", f"/contacts?limit=3&after={first['next']}").json()
    assert second["items"][0]["email"] == "guest3@example.org"
    third = api("get", f"/contacts?limit=3&after={second['next']}").json()
    assert len(third["items"]) == 1 and third["next"] is None
    tagged = api("get", "/contacts?tag=t").json()
    assert len(tagged["items"]) == 3
    assert api("get", "/contacts?q=guest5@").json()["items"][0]["email"] == "guest5@example.org"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"email": "not-an-address"}, 422, "not a valid email address"),
        ({"email": "a@example.org", "attributes": {"bad key!": 1}}, 422, "not an attribute name"),
        ({"email": "a@example.org", "attributes": {"nested": {"a": 1}}}, 422, None),
        ({"email": "a@example.org", "tags": ["a,b"]}, 422, "is not a tag"),
        ({"email": "a@example.org", "legal_basis": "whim"}, 422, None),
        ({"email": "a@example.org", "lists": [str(uuid.uuid4())]}, 404, "No such list"),
        ({"email": "a@example.org", "name": "x" * 201}, 422, None),
        ({"name": "no email"}, 422, None),
    ],
)
def test_bad_contacts_are_refused_and_nothing_is_written(api, customer, body, status, message):
    response = api("post", "/contacts", body)
    assert response.status_code == status, response.content
    if message:
        assert message in response.json()["detail"]
    assert not Contact.objects.exists()


def test_an_existing_or_erased_address_is_a_conflict(api, customer):
    services.add_contact(customer.account, "here@example.org")
    services.erase_contact(services.add_contact(customer.account, "gone@example.org"))
    assert api("post", "/contacts", {"email": "HERE@example.org"}).status_code == 409
    response = api("post", "/contacts", {"email": "gone@example.org"})
    assert response.status_code == 409 and "new consent" in response.json()["detail"]
    assert Contact.objects.count() == 1


def test_the_customer_cannot_undo_an_unsubscription_through_the_api(api, customer):
    contact = services.add_contact(customer.account, "left@example.org")
    services.unsubscribe(contact)
    response = api("patch", f"/contacts/{contact.uuid}", {"status": "active", "name": "X"})
    assert response.status_code == 422
    contact.refresh_from_db()
    assert contact.status == "unsubscribed" and contact.name == ""


def test_lists_crud_with_counts(api, customer):
    created = api("post", "/lists", {"name": "Weekly", "visibility": "public", "optin": "single"})
    assert created.status_code == 201
    key = created.json()["uuid"]
    services.add_contact(
        customer.account, "a@example.org", lists=[MailingList.objects.get(uuid=key)]
    )
    assert api("get", f"/lists/{key}").json()["counts"]["confirmed"] == 1
    assert api("patch", f"/lists/{key}", {"name": "Weekly news"}).json()["name"] == "Weekly news"
    assert [x["name"] for x in api("get", "/lists").json()] == ["Weekly news"]
    assert api("post", "/lists", {"name": "weekly NEWS"}).status_code == 422
    assert api("post", "/lists", {"name": "X", "optin": "triple"}).status_code == 422
    assert api("delete", f"/lists/{key}").status_code == 204
    assert not MailingList.objects.exists()


def test_subscribe_and_unsubscribe_a_contact(api, customer, news):
    contact = services.add_contact(customer.account, "a@example.org")
    path = f"/lists/{news.uuid}/subscriptions"
    added = api("post", path, {"contact": str(contact.uuid), "note": "asked at the desk"})
    assert added.status_code == 201 and added.json()["status"] == "confirmed"
    left = api("delete", f"{path}/{contact.uuid}")
    assert left.status_code == 200 and left.json()["unsubscribed_at"]
    # Their unsubscription is not undone by the customer.
    again = api("post", path, {"contact": str(contact.uuid)})
    assert again.status_code == 409
    assert Subscription.objects.get(contact=contact).status == "unsubscribed"


def test_segments_crud_count_and_members(api, customer, news):
    for i in range(5):
        services.add_contact(
            customer.account, f"p{i}@example.org", attributes={"n": i}, lists=[news]
        )
    rules = {
        "match": "all",
        "conditions": [{"field": "attribute", "key": "n", "op": "gt", "value": 1}],
    }
    created = api("post", "/segments", {"name": "Big n", "rules": rules})
    assert created.status_code == 201, created.content
    key = created.json()["uuid"]
    assert api("get", f"/segments/{key}/count").json() == {"count": 3}
    page = api("get", f"/segments/{key}/contacts?limit=2").json()
    assert len(page["items"]) == 2 and page["next"]
    rest = api("get", f"/segments/{key}/contacts?limit=2&after={page['next']}").json()
    assert len(rest["items"]) == 1
    assert api("post", "/segments/count", {"rules": {"conditions": []}}).json() == {"count": 5}
    patched = api("patch", f"/segments/{key}", {"name": "Renamed"})
    assert patched.json()["name"] == "Renamed" and patched.json()[
        "rules"
    ] == segments.validate_rules(customer.account, rules)
    assert [s["name"] for s in api("get", "/segments").json()] == ["Renamed"]
    assert api("delete", f"/segments/{key}").status_code == 204


@pytest.mark.parametrize(
    "rules",
    [
        {"conditions": [{"field": "sql", "op": "eq", "value": "1=1"}]},
        {"conditions": [{"field": "email", "op": "regex", "value": ".*"}]},
        {"match": "some"},
        {"conditions": [{"field": "list", "op": "eq", "value": str(uuid.uuid4())}]},
    ],
)
def test_bad_segment_rules_are_refused_and_nothing_is_saved(api, customer, rules):
    response = api("post", "/segments", {"name": "Bad", "rules": rules})
    assert response.status_code == 422 and response.json()["detail"]
    assert api("post", "/segments/count", {"rules": rules}).status_code == 422
    assert not Segment.objects.exists()


def _theirs(other) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    account = other.account
    their_list = mailing_lists.save_list(account, name="Their list")
    contact = services.add_contact(account, "their@example.net", name="Theirs", lists=[their_list])
    segment = segments.save_segment(account, name="Their segment", rules={})
    return {"contact": contact.uuid, "list": their_list.uuid, "segment": segment.uuid}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/contacts/{contact}", None),
        ("patch", "/contacts/{contact}", {"name": "Mine"}),
        ("delete", "/contacts/{contact}", None),
        ("post", "/contacts/{contact}/blocklist", None),
        ("get", "/lists/{list}", None),
        ("patch", "/lists/{list}", {"name": "Mine"}),
        ("delete", "/lists/{list}", None),
        ("post", "/lists/{list}/subscriptions", {"contact": "{contact}"}),
        ("delete", "/lists/{list}/subscriptions/{contact}", None),
        ("get", "/segments/{segment}", None),
        ("patch", "/segments/{segment}", {"name": "Mine"}),
        ("delete", "/segments/{segment}", None),
        ("get", "/segments/{segment}/count", None),
        ("get", "/segments/{segment}/contacts", None),
        ("post", "/contacts", {"email": "x@example.org", "lists": ["{list}"]}),
    ],
)
def test_another_accounts_ids_are_not_found_and_nothing_of_theirs_changes(
    api, customer, other_customer, method, path, body
):
    ids = _theirs(other_customer)

    def fill(text: str) -> str:
        for name, value in ids.items():
            text = text.replace("{" + name + "}", str(value))
        return text

    if body is not None:
        body = json.loads(fill(json.dumps(body)))
    before = (
        list(Contact.objects.filter(account=other_customer.account).values()),
        list(MailingList.objects.filter(account=other_customer.account).values()),
        list(Segment.objects.filter(account=other_customer.account).values()),
        list(Subscription.objects.filter(contact__account=other_customer.account).values()),
    )
    response = api(method, fill(path), body)
    assert response.status_code == 404, response.content
    assert "their" not in response.content.decode().lower()
    after = (
        list(Contact.objects.filter(account=other_customer.account).values()),
        list(MailingList.objects.filter(account=other_customer.account).values()),
        list(Segment.objects.filter(account=other_customer.account).values()),
        list(Subscription.objects.filter(contact__account=other_customer.account).values()),
    )
    assert before == after
    assert not Contact.objects.filter(account=customer.account).exists()


def test_listings_show_only_the_keys_account(api, customer, other_customer):
    _theirs(other_customer)
    assert api("get", "/contacts").json()["items"] == []
    assert api("get", "/lists").json() == []
    assert api("get", "/segments").json() == []
    assert api("get", f"/contacts?list={_theirs_list(other_customer)}").status_code == 422


def _theirs_list(other) -> str:  # type: ignore[no-untyped-def]
    return MailingList.objects.filter(account=other.account).first().uuid.hex


def test_the_openapi_document_describes_the_audience_routes(client):
    schema = client.get("/api/v1/openapi.json").json()
    for path in (
        "/api/v1/contacts",
        "/api/v1/contacts/{contact_uuid}",
        "/api/v1/lists",
        "/api/v1/lists/{list_uuid}/subscriptions",
        "/api/v1/segments/{segment_uuid}/contacts",
    ):
        assert path in schema["paths"], path
    assert client.get("/api/v1/docs").status_code == 200


def test_a_request_without_a_key_is_refused(client):
    assert client.get("/api/v1/contacts").status_code == 401
