"""Schemathesis over the whole OpenAPI of /api/v1/ (issue 13, finding 9).

The schema is read where clients read it (`/api/v1/openapi.json`), and every operation in
it is called in-process through the WSGI application on the test database, with the keys
of two accounts that each hold lists, contacts, segments, campaigns, an import, an export
and a webhook endpoint. Path ids are drawn from the caller's own objects, the other
account's, and made-up values; bodies and queries are generated from the schema, valid
and not. Each answer must not be a 5xx, must have a documented status, content type and
body (the 422's included), and another account's id must never be a 2xx.

Bounded: MAX_EXAMPLES per operation, so the whole run takes a minute or two on two cores;
`-m ""` runs it (it is marked slow). Reproduce a failure with the curl command it prints.
docs/api.md says how to run it, and with more examples.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import UserFactory, populate_account
from tests.sending.conftest import POSTAL_ADDRESS
from tidings.accounts import apikeys
from tidings.audience.models import Contact, MailingList, Segment
from tidings.automations.models import WebhookEndpoint
from tidings.campaigns.models import Campaign
from tidings.sending import services as sending
from tidings.wsgi import application

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

# Per operation; more to explore further (docs/api.md).
MAX_EXAMPLES = int(os.environ.get("TIDINGS_SCHEMATHESIS_EXAMPLES", "12"))

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
# The key is ours, not generated: every call is an account's, and the generated ones
# reach the routes instead of stopping at 401.
schema.config.generation.update(
    max_examples=MAX_EXAMPLES, with_security_parameters=False, deterministic=True
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# How many calls each operation got, and their statuses, printed at the end of the run
# (`-s` shows it).
CALLS: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


@dataclass
class Tenant:
    key: str
    ids: dict[str, list[str]] = field(default_factory=dict)


def _uuids(model: Any, account: Any) -> list[str]:
    return [str(u) for u in model.objects.filter(account=account).values_list("uuid", flat=True)]


def _tenant(client: Any, n: int) -> Tenant:
    user = UserFactory(email=f"owner{n}@example.org")
    account = user.account
    populate_account(account)
    sending.set_postal_address(account, POSTAL_ADDRESS, by=user)
    _, key = apikeys.create_api_key(account, name="schemathesis", by=user)
    auth = {"Authorization": f"Bearer {key}"}

    def post(path: str, body: Any, content_type: str = "application/json") -> Any:
        response = client.post(f"/api/v1{path}", body, content_type=content_type, headers=auth)
        assert response.status_code < 300, response.content
        return response.json()

    for i in range(3):
        post("/contacts", {"email": f"c{i}@tenant{n}.example", "name": f"Contact {i}"})
    post("/lists", {"name": f"Second list of {n}"})
    post("/segments", {"name": "Everyone", "rules": {"match": "all", "conditions": []}})
    imported = post("/imports?name=people.csv", b"email,name\nz@example.net,Z\n", "text/csv")
    exported = post("/exports", {"format": "csv"})
    post("/webhooks", {"url": f"https://hooks{n}.example/in", "events": ["contact.updated"]})
    tenant = Tenant(key=key)
    tenant.ids = {
        "contact_uuid": _uuids(Contact, account),
        "list_uuid": _uuids(MailingList, account),
        "segment_uuid": _uuids(Segment, account),
        "campaign_uuid": _uuids(Campaign, account),
        "endpoint_uuid": _uuids(WebhookEndpoint, account),
        "import_id": [str(imported["id"])],
        "export_id": [str(exported["id"])],
    }
    return tenant


# Fields of request bodies that name an object, and the path parameter of its kind.
BODY_IDS = {
    "contact": "contact_uuid",
    "list": "list_uuid",
    "lists": "list_uuid",
    "segments": "segment_uuid",
    "template": "campaign_uuid",
}


@pytest.fixture
def tenants(client, settings) -> Iterator[list[Tenant]]:  # type: ignore[no-untyped-def]
    # The API's throttle (429) must not cut the run short: TIDINGS_API_RATE_PER_KEY and
    # _PER_ACCOUNT, raised here (429 stays documented, and is accepted if it comes).
    settings.API_RATE_PER_KEY = settings.API_RATE_PER_ACCOUNT = 10**9
    made = [_tenant(client, 1), _tenant(client, 2)]
    # Django's WSGI handler closes the connection after each request; the test client
    # does not, and neither may the run: the data lives in the test's transaction. (The
    # test client connects the handler again after each of its requests: hence after.)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield made
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(STATUSES.items()))
    print(f"\nschemathesis: {len(CALLS)} operations, {sum(CALLS.values())} calls ({statuses})")


@schema.parametrize()
@schema.given(data=st.data())
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    # The same inputs on every run: CI fails on a change of the code, never on a draw.
    derandomize=True,
    # The tenants are made once per operation, and examples share them (as clients do).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_documented(case, data, tenants):  # type: ignore[no-untyped-def]
    caller, other = data.draw(st.permutations(tenants))
    foreign = False
    for name, made_up in (case.path_parameters or {}).items():
        choices = [made_up, *caller.ids.get(name, []), *other.ids.get(name, [])]
        value = data.draw(st.sampled_from(choices), label=name)
        foreign |= value in other.ids.get(name, [])
        case.path_parameters[name] = value
    if isinstance(case.body, dict):
        # Ids in bodies too (a contact to subscribe, a campaign's lists), or no call past
        # the validation would reach a real object.
        for name, kind in BODY_IDS.items():
            given = case.body.get(name)
            pool = caller.ids[kind] + other.ids[kind]
            if isinstance(given, str):
                case.body[name] = data.draw(st.sampled_from([given, *pool]), label=name)
            elif isinstance(given, list):
                case.body[name] = data.draw(st.lists(st.sampled_from(pool), max_size=3))
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {caller.key}"}, checks=CHECKS
    )
    CALLS[f"{case.method} {case.path}"] += 1
    STATUSES[response.status_code] += 1
    if foreign:
        assert response.status_code >= 400, "another account's object was reachable"
