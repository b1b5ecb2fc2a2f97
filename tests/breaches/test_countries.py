"""A breach's scope counts people per country where the data map knows it (an account's
billing identity, a contact's attribute "country"), and the rule table's jurisdictions
follow from it: the countries of the people whose data Tidings controls bring their
authority; TIDINGS_BREACH_JURISDICTIONS stays as the operator's override (P33)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.breaches.conftest import make_tenant
from tidings.audience.models import Contact
from tidings.billing.models import Offer, Order, VatTreatment
from tidings.breaches import obligations, services
from tidings.breaches.models import Filing, Incident
from tidings.privacy import breach_scope
from tidings.privacy.models import Disclosure

CONTACTS = "audience.Contact"
USERS = "accounts.User"


def _order(account, country: str, n: int) -> Order:  # type: ignore[no-untyped-def]
    offer, _created = Offer.objects.get_or_create(
        name="Credits", defaults={"kind": "pack", "vat_treatment": VatTreatment.EXEMPT}
    )
    return Order.objects.create(
        account=account, offer=offer, currency="EUR", amount=1, gateway="test",
        idempotency_key=f"k{account.pk}-{n}", status="paid", buyer_kind="company",
        billing_name="Acme Ltd", billing_address="1 Road", billing_country=country,
    )  # fmt: skip


def _say_country(contact: Contact, value: object) -> None:
    Contact.objects.filter(pk=contact.pk).update(attributes={"country": value})


@pytest.fixture
def breach(privacy_officer) -> Incident:  # type: ignore[no-untyped-def]
    incident = services.record_incident(
        by=privacy_officer, summary="A database dump was readable",
        detected_at=timezone.now() - timedelta(hours=2),
    )  # fmt: skip
    return services.qualify_breach(
        incident, by=privacy_officer, confidentiality=True, cause="a bucket",
        consequences="phishing", measures="closed",
    )  # fmt: skip


@pytest.fixture
def world(acme, globex):  # type: ignore[no-untyped-def]
    """Acme bills in Germany then France (its latest order says where it is now), Globex
    in the UK, Initech in the US (no state: the table has no rule for it), Umbrella
    never ordered. Acme's contacts: one in Switzerland, one in Texas, one who wrote
    "France" (no ISO code: unknown)."""
    _order(acme.account, "DE", 1)
    _order(acme.account, "fr", 2)
    _order(globex.account, "GB", 1)
    initech = make_tenant("Initech", 1)
    _order(initech.account, "US", 1)
    umbrella = make_tenant("Umbrella", 0)
    _say_country(acme.contacts[0], "ch")
    _say_country(acme.contacts[1], "US-TX")
    _say_country(acme.contacts[2], "France")
    return acme, globex, initech, umbrella


@pytest.mark.promise("P33")
def test_people_are_counted_per_account_and_per_country_from_the_data_map(
    breach, privacy_officer, world
):
    acme, globex, initech, umbrella = world
    scope = services.scope_incident(breach, by=privacy_officer, entries=[CONTACTS, USERS])
    rows = {row["account"]: row["countries"] for row in scope.per_account}
    assert rows[acme.account.pk] == {
        "FR": {"users": 2, "contacts": 0},
        "CH": {"users": 0, "contacts": 1},
        "US-TX": {"users": 0, "contacts": 1},
        "": {"users": 0, "contacts": 1},
    }
    assert rows[globex.account.pk] == {
        "GB": {"users": 1, "contacts": 0},
        "": {"users": 0, "contacts": 2},
    }
    assert rows[initech.account.pk] == {
        "US": {"users": 1, "contacts": 0},
        "": {"users": 0, "contacts": 1},
    }
    assert rows[umbrella.account.pk] == {"": {"users": 1, "contacts": 0}}
    assert scope.per_country == {
        "": {"users": 1, "contacts": 4},
        "CH": {"users": 0, "contacts": 1},
        "FR": {"users": 2, "contacts": 0},
        "GB": {"users": 1, "contacts": 0},
        "US": {"users": 1, "contacts": 0},
        "US-TX": {"users": 0, "contacts": 1},
    }
    # The countries add up to the scope's people, counted once each.
    assert sum(n["users"] for n in scope.per_country.values()) == scope.customers_affected
    assert sum(n["contacts"] for n in scope.per_country.values()) == scope.contacts_affected


@pytest.mark.promise("P33")
def test_the_jurisdictions_follow_from_the_countries_of_the_people_tidings_controls(
    breach, privacy_officer, world, settings, console
):
    settings.BREACHES = {"jurisdictions": []}
    scope = services.scope_incident(breach, by=privacy_officer, entries=[CONTACTS, USERS])
    found = {o.key: o for o in obligations.obligations_for(breach, scope)}
    authorities = sorted(k for k in found if k.startswith("authority:"))
    # France's users: the EU's (the operator's own), Globex's: the ICO. The Swiss and
    # the Texan are contacts: their customer, the controller, reports them.
    assert authorities == ["authority:EU", "authority:GB"]
    assert found["authority:GB"].due == breach.aware_at + timedelta(hours=72)
    assert obligations.countries_without_rule(scope) == {"US": 1}
    page = console(privacy_officer).get(f"/staff/privacy-office/breaches/{breach.pk}/")
    text = page.content.decode()
    assert "Information Commissioner" in text and "US: 1" in text
    assert 'id="countries"' in text

    # The operator's override adds what the map cannot place.
    settings.BREACHES = {"jurisdictions": ["CH", "GB"]}
    keys = [o.key for o in obligations.obligations_for(breach, scope)]
    assert [k for k in keys if k.startswith("authority:")] == [
        "authority:EU", "authority:GB", "authority:CH",
    ]  # fmt: skip


def test_a_state_threshold_is_weighed_with_the_residents_known_and_unknown(
    breach, privacy_officer, world, settings
):
    settings.BREACHES = {"jurisdictions": ["US-FL"]}
    scope = services.scope_incident(breach, by=privacy_officer, entries=[USERS])
    florida = next(o for o in obligations.obligations_for(breach, scope) if "US-FL" in o.key)
    # No user is known in Florida, one is of no known country: far below 500.
    assert not florida.applies and "500" in florida.condition
    assert "0 known here, 1 of unknown country" in florida.condition


def test_a_country_that_is_no_iso_code_counts_as_unknown():
    assert breach_scope.country_code(" fr ") == "FR"
    assert breach_scope.country_code("us-tx") == "US-TX"
    for value in ("France", "", None, 33, "F", "FR-"):
        assert breach_scope.country_code(value) == ""


@pytest.mark.promise("P33", "P25")
def test_a_filing_to_an_authority_of_the_scope_meets_its_obligation_alone(
    breach, privacy_officer, world, settings, console
):
    settings.BREACHES = {"jurisdictions": []}
    services.scope_incident(breach, by=privacy_officer, entries=[USERS])
    url = f"/staff/privacy-office/breaches/{breach.pk}/"
    officer = console(privacy_officer)
    assert 'value="GB"' in officer.get(url).content.decode()  # offered: Globex's users
    # An authority the breach owes nothing is refused; nothing is filed nor disclosed.
    with pytest.raises(services.BreachError, match="no obligation towards that authority"):
        services.file_report(breach, by=privacy_officer, jurisdiction="CH")
    assert not Filing.objects.exists() and not Disclosure.objects.exists()
    answer = officer.post(
        url, {"action": "file", "file-jurisdiction": "GB", "file-reference": "ICO-77"}
    )
    assert answer.status_code == 302
    filing = Filing.objects.get()
    assert (filing.jurisdiction, filing.reference) == ("GB", "ICO-77")
    assert filing.authority == "the Information Commissioner's Office (ICO)"
    met = {
        o.key: o.met_at for o in obligations.obligations_for(breach, services.current_scope(breach))
    }
    assert met["authority:GB"] == filing.filed_at and met["authority:EU"] is None
    assert Disclosure.objects.get().authority == filing.authority


@pytest.mark.promise("P33")
def test_the_clock_still_shows_an_authority_owed_after_a_filing_to_another(
    breach, privacy_officer, world, settings, console
):
    settings.BREACHES = {"jurisdictions": []}
    services.scope_incident(breach, by=privacy_officer, entries=[USERS])
    url = f"/staff/privacy-office/breaches/{breach.pk}/"
    officer = console(privacy_officer)
    officer.post(url, {"action": "file", "file-jurisdiction": "GB", "file-reference": "ICO-77"})
    clock = officer.get(url).content.decode().split('class="breach-clock"')[1].split("</p>")[0]
    # Filed with the ICO only: the EU's report is still owed, and its time shows.
    assert "Reported to the authority on" in clock
    assert "Still to report to " in clock and "(EU)" in clock and "due in" in clock
    services.file_report(breach, by=privacy_officer, reference="DPA-1")
    clock = officer.get(url).content.decode().split('class="breach-clock"')[1].split("</p>")[0]
    assert "Still to report" not in clock and "OVERDUE" not in clock
