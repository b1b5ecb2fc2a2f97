"""What schemathesis found in the API (issue 13, finding 9), each with the exact input
that made a 500: it is now a 422 with a reason, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sending.conftest import POSTAL_ADDRESS
from tidings.audience import mailing_lists, services
from tidings.audience.models import Contact, Segment
from tidings.campaigns.models import Campaign
from tidings.sending import services as sending
from tidings.transfer.models import ExportJob, ImportJob

NUL_RULE = {"field": "attribute", "key": "city", "op": "eq", "value": "G\x00"}
SENDER = {"from_email": "news@example.net"}


def _snapshot(account: Any) -> tuple[Any, ...]:
    contacts = Contact.objects.filter(account=account).order_by("pk")
    return (
        list(contacts.values_list("email", "name", "attributes", "tags", "basis_at")),
        list(Segment.objects.filter(account=account).values_list("name", "rules")),
        list(Campaign.objects.filter(account=account).values_list("status", "scheduled_at")),
        ExportJob.objects.filter(account=account).count(),
    )


def _refused(response: Any) -> str:
    assert response.status_code == 422, response.content
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body["detail"]


@pytest.fixture
def ada(customer) -> Contact:  # type: ignore[no-untyped-def]
    return services.add_contact(customer.account, "ada@example.net", attributes={"city": "Ghent"})


@pytest.mark.parametrize(
    "path", ["/imports?offset=9223372036854775808", "/exports?offset=20000000000000000000"]
)
def test_an_offset_beyond_bigint_is_refused(api, path):
    # `?offset=9223372036854775808` reached PostgreSQL's OFFSET, which refused it: a 500.
    _refused(api("get", path))
    assert api("get", "/imports?offset=9223372036854775000").status_code == 200


def test_a_layout_id_beyond_bigint_is_refused_as_input(api, customer):
    # It was a 404 ("No such layout"): an id no row can have is a fault of the input.
    before = _snapshot(customer.account)
    body = {"name": "n", "subject": "s", "from_email": "a@example.org", "layout": 2**63}
    assert "layout" in _refused(api("post", "/campaigns", body))
    assert _snapshot(customer.account) == before


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/contacts", {"email": "nul@example.net", "name": "Ada\x00"}),
        ("post", "/contacts", {"email": "nul@example.net", "attributes": {"city": "G\x00"}}),
        ("patch", "/contacts/{ada}", {"attributes": {"city": "G\x00hent"}}),
        ("patch", "/contacts/{ada}", {"tags": ["vip\x00"]}),
        ("post", "/lists", {"name": "News\x00"}),
        ("post", "/segments", {"name": "S", "rules": {"match": "all", "conditions": [NUL_RULE]}}),
        ("post", "/segments/count", {"rules": {"match": "all", "conditions": [NUL_RULE]}}),
        ("post", "/exports", {"format": "csv", "scope": "search", "q": "a\x00"}),
        ("post", "/campaigns", {"name": "N\x00", "subject": "s", "from_email": "a@example.org"}),
        ("post", "/tx", {"to": "bob@example.net", "subject": "s\x00", "body": "b", **SENDER}),
    ],
)
def test_a_nul_character_in_a_body_is_refused(api, customer, ada, method, path, body):
    # PostgreSQL refuses U+0000 in text and in jsonb: each of these was a 500.
    before = _snapshot(customer.account)
    detail = _refused(api(method, path.format(ada=ada.uuid), body))
    assert "NUL" in detail
    assert _snapshot(customer.account) == before


@pytest.mark.parametrize("path", ["/contacts?q=ada%00", "/contacts?tag=%00"])
def test_a_nul_character_in_a_query_is_refused(api, ada, path):
    assert "NUL" in _refused(api("get", path))


def test_a_nul_character_in_an_upload_name_is_refused(api, customer):
    response = api.upload(b"email\nbob@example.net\n", name="contacts%00.csv")
    assert "NUL" in _refused(response)
    assert not ImportJob.objects.filter(account=customer.account).exists()


@pytest.mark.parametrize(
    "basis_at",
    [
        "9999-12-31T23:00:00-05:00",  # year 10000 in UTC: written, then a 500 on each read
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
        "2026-03-01T10:00:00",  # no offset: was read in the server's zone, with a warning
    ],
)
def test_a_consent_time_out_of_range_is_refused(api, customer, basis_at):
    before = _snapshot(customer.account)
    body = {"email": "tz@example.net", "basis_at": basis_at}
    assert "basis_at" in _refused(api("post", "/contacts", body))
    assert _snapshot(customer.account) == before


def test_a_consent_time_with_an_offset_beyond_postgresqls_is_kept_in_utc(api):
    # PostgreSQL takes offsets up to ±15:59; ISO 8601 (and Python) up to ±23:59: a 500.
    body = {"email": "tz@example.net", "basis_at": "2026-03-01T10:00:00+20:00"}
    created = api("post", "/contacts", body)
    assert created.status_code == 201, created.content
    assert created.json()["basis_at"] == "2026-02-28T14:00:00Z"


@pytest.fixture
def draft(customer) -> Campaign:  # type: ignore[no-untyped-def]
    sending.set_postal_address(customer.account, POSTAL_ADDRESS, by=customer)
    campaign = Campaign.objects.create(
        account=customer.account, name="n", subject="s", from_email="news@example.net",
        body="<p>Our news.</p>",
    )  # fmt: skip
    news = mailing_lists.save_list(customer.account, name="News")
    campaign.lists.add(news)
    # Somebody to send to: a campaign without recipients can be neither sent nor scheduled.
    services.add_contact(customer.account, "reader@example.net", lists=[news])
    return campaign


def test_a_schedule_time_out_of_the_calendar_is_refused(api, customer, draft):
    before = _snapshot(customer.account)
    at = "9999-12-31T23:00:00-05:00"
    assert "at" in _refused(api("post", f"/campaigns/{draft.uuid}/schedule", {"at": at}))
    assert _snapshot(customer.account) == before


def test_a_schedule_time_with_an_offset_beyond_postgresqls_is_kept_in_utc(api, draft):
    at = "2099-03-01T09:30:00+18:00"
    response = api("post", f"/campaigns/{draft.uuid}/schedule", {"at": at})
    assert response.status_code == 200, response.content
    draft.refresh_from_db()
    assert draft.scheduled_at.isoformat() == "2099-02-28T15:30:00+00:00"
