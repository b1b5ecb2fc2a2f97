"""The API is throttled per key and per account (issue 13, finding 8): beyond the
limit, 429 with `Retry-After` and the API's JSON error body, documented in the
OpenAPI schema so that clients (and schemathesis) expect it."""

from __future__ import annotations

import pytest

from tests.apiclient import Api
from tidings.accounts import apikeys
from tidings.audience.models import MailingList

pytestmark = pytest.mark.django_db


@pytest.mark.promise("P9")
def test_a_key_beyond_its_rate_gets_429_with_retry_after(api, settings):
    settings.API_RATE_PER_KEY = 3
    for _ in range(3):
        assert api("get", "/account").status_code == 200
    response = api("get", "/account")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json() == {"detail": "Too many requests: try again later."}


def test_a_throttled_write_changes_nothing(api, settings, customer):
    settings.API_RATE_PER_KEY = 1
    assert api("get", "/account").status_code == 200
    response = api("post", "/lists", {"name": "Flood"})
    assert response.status_code == 429
    assert not MailingList.objects.filter(account=customer.account, name="Flood").exists()


@pytest.mark.promise("P9")
def test_more_keys_do_not_raise_an_accounts_limit(client, customer, settings):
    settings.API_RATE_PER_KEY = 100
    settings.API_RATE_PER_ACCOUNT = 4
    keys = [
        apikeys.create_api_key(customer.account, name=f"k{i}", by=customer)[1] for i in range(3)
    ]
    calls = [Api(client, key) for key in keys]
    answers = [calls[i % 3]("get", "/account").status_code for i in range(6)]
    assert answers == [200, 200, 200, 200, 429, 429]


def test_one_accounts_flood_does_not_throttle_another(api, client, other_customer, settings):
    settings.API_RATE_PER_KEY = 2
    for _ in range(3):
        api("get", "/account")
    assert api("get", "/account").status_code == 429
    _, key = apikeys.create_api_key(other_customer.account, name="other", by=other_customer)
    assert Api(client, key)("get", "/account").status_code == 200


def test_every_authenticated_operation_documents_the_429(client):
    schema = client.get("/api/v1/openapi.json").json()
    operations = [
        operation
        for path in schema["paths"].values()
        for operation in path.values()
        if operation.get("security")
    ]
    assert operations
    for operation in operations:
        throttled = operation["responses"]["429"]
        assert throttled["headers"]["Retry-After"]["schema"]["type"] == "integer"
        body = throttled["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/Problem"}
    assert schema["components"]["schemas"]["Problem"]["required"] == ["detail"]
