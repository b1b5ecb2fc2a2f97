"""API keys: shown once, stored hashed, scoped to one account, revocable (P8, P17, P19)."""

from __future__ import annotations

import pytest

from tidings.accounts import apikeys, services
from tidings.accounts.models import ApiKey


def call(client, key: str | None, path: str = "/api/v1/account"):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return client.get(path, headers=headers)


@pytest.mark.promise("P8")
def test_a_key_is_stored_only_as_a_digest_and_works_for_its_account(client, customer):
    api_key, key = apikeys.create_api_key(customer.account, name="CRM sync", by=customer)
    assert key.startswith("tid_") and len(key) > 40
    row = ApiKey.objects.get(pk=api_key.pk)
    assert key not in (row.digest, row.prefix) and row.digest == apikeys.digest(key)
    response = call(client, key)
    assert response.status_code == 200
    assert response.json()["account"] == customer.account.name


@pytest.mark.parametrize("key", [None, "", "tid_wrong", "Basic abc", "tid_" + "x" * 200])
def test_no_or_a_wrong_key_is_refused(client, customer, key):
    apikeys.create_api_key(customer.account, name="CRM sync", by=customer)
    assert call(client, key).status_code == 401


def test_a_revoked_key_stops_working_at_once(client, customer):
    api_key, key = apikeys.create_api_key(customer.account, name="CRM sync", by=customer)
    apikeys.revoke_api_key(api_key, by=customer)
    assert call(client, key).status_code == 401


@pytest.mark.promise("P17")
def test_a_closed_accounts_keys_stop_working(client, customer):
    _, key = apikeys.create_api_key(customer.account, name="CRM sync", by=customer)
    services.close_account(customer.account, by=customer)
    assert call(client, key).status_code == 401


def test_nobody_creates_or_revokes_a_key_of_another_account(customer, other_customer):
    with pytest.raises(services.AccountError):
        apikeys.create_api_key(other_customer.account, name="x", by=customer)
    api_key, _ = apikeys.create_api_key(other_customer.account, name="x", by=other_customer)
    with pytest.raises(services.AccountError):
        apikeys.revoke_api_key(api_key, by=customer)
    assert ApiKey.objects.get(pk=api_key.pk).active


@pytest.mark.promise("P19")
def test_creating_and_revoking_a_key_is_announced(customer, mailbox):
    api_key, _ = apikeys.create_api_key(customer.account, name="CRM sync", by=customer)
    apikeys.revoke_api_key(api_key, by=customer)
    bodies = [m.body for m in mailbox if customer.email in m.to]
    assert any("created" in b and "CRM sync" in b for b in bodies)
    assert any("revoked" in b for b in bodies)


def test_the_openapi_schema_is_published_and_the_docs_load_nothing_from_a_cdn(client):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "Tidings API"
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "cdn." not in html and "unpkg" not in html
