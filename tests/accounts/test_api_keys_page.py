"""Account → API keys: a key is shown once, works, and stops working when revoked."""

from __future__ import annotations

import re

import pytest

from tidings.accounts import apikeys
from tidings.accounts.models import ApiKey


def test_a_key_created_on_the_page_is_shown_once_and_works(client, customer):
    client.force_login(customer)
    assert "API keys" in client.get("/account/").content.decode()
    response = client.post("/account/api-keys/", {"name": "CRM sync"})
    assert response.status_code == 200
    key = re.search(r'value="(tid_[^"]+)"', response.content.decode()).group(1)  # type: ignore[union-attr]
    assert ApiKey.objects.get(account=customer.account).digest == apikeys.digest(key)
    again = client.get("/account/api-keys/").content.decode()
    assert key not in again and "CRM sync" in again
    api = client.get("/api/v1/account", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 200


def test_a_key_needs_a_name(client, customer):
    client.force_login(customer)
    response = client.post("/account/api-keys/", {"name": "  "})
    assert response.status_code == 400 and "Give the key a name" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_a_key_revoked_on_the_page_stops_working(client, customer):
    api_key, key = apikeys.create_api_key(customer.account, name="Old", by=customer)
    client.force_login(customer)
    client.post(f"/account/api-keys/{api_key.pk}/revoke/")
    assert (
        client.get("/api/v1/account", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    )
    assert "revoked" in client.get("/account/api-keys/").content.decode()


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_accounts_key_cannot_be_revoked(client, customer, other_customer, method):
    theirs, _ = apikeys.create_api_key(other_customer.account, name="Theirs", by=other_customer)
    client.force_login(customer)
    response = getattr(client, method)(f"/account/api-keys/{theirs.pk}/revoke/")
    assert response.status_code in (404, 405)
    theirs.refresh_from_db()
    assert theirs.active
    assert "Theirs" not in client.get("/account/api-keys/").content.decode()
