"""The dated rule table turns a breach's scope into one obligation per recipient with its
deadline: the authorities of the operator's and the configured jurisdictions, each
customer whose contacts were touched, the users whose own data was (P33)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from tidings.breaches import obligations, services
from tidings.breaches.apps import BreachesConfig
from tidings.breaches.models import Incident


def _at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


def test_the_rule_in_force_at_awareness_applies():
    assert obligations.rule_in_force("CH", _at(2023, 8, 31)) is None  # the old FADP
    swiss = obligations.rule_in_force("CH", _at(2023, 9, 1))
    assert swiss is not None and swiss.hours is None and swiss.wording == "as soon as possible"
    texas_before = obligations.rule_in_force("US-TX", _at(2023, 8, 31))
    texas_after = obligations.rule_in_force("US-TX", _at(2024, 1, 1))
    assert texas_before is not None and texas_before.hours == 60 * 24
    assert texas_after is not None and texas_after.hours == 30 * 24
    eu = obligations.rule_in_force("EU", _at(2026, 1, 1))
    assert eu is not None and eu.hours == 72


@pytest.fixture
def breach(privacy_officer) -> Incident:  # type: ignore[no-untyped-def]
    incident = services.record_incident(
        by=privacy_officer, summary="A leak", detected_at=timezone.now() - timedelta(hours=2)
    )
    return services.qualify_breach(
        incident, by=privacy_officer, confidentiality=True, cause="c", consequences="c",
        measures="m",
    )  # fmt: skip


@pytest.mark.promise("P33")
def test_one_obligation_per_recipient_with_its_deadline(
    breach, privacy_officer, acme, globex, settings, mailbox
):
    settings.OPERATOR = {**settings.OPERATOR, "country": "GB"}
    settings.BREACHES = {"jurisdictions": ["EU", "CH", "US-TX"]}
    scope = services.scope_incident(
        breach, by=privacy_officer, entries=["audience.Contact", "accounts.User"],
        account_ids=[acme.account.pk],
    )  # fmt: skip
    found = {o.recipient: o for o in obligations.obligations_for(breach, scope)}
    operator_authority = f"{settings.OPERATOR['authority_name']} (GB)"
    assert found[operator_authority].due == breach.aware_at + timedelta(hours=72)
    assert found["the lead supervisory authority (EU)"].due == breach.aware_at + timedelta(hours=72)
    swiss = found["the Federal Data Protection and Information Commissioner (FDPIC) (CH)"]
    assert swiss.due is None and swiss.wording == "as soon as possible"
    texas = found["the Texas Attorney General (US-TX)"]
    assert texas.due == breach.aware_at + timedelta(days=30) and "250" in texas.condition
    processor = found[f"account #{acme.account.pk}, controller of its contacts' data"]
    controller = found[f"the users of account #{acme.account.pk}, whose data it is"]
    assert processor.wording == controller.wording == "without undue delay"
    assert len(found) == 6 and all(o.met_at is None for o in found.values())

    # The register's own records meet them: the filing, the notices.
    services.file_report(breach, by=privacy_officer)
    services.send_notices(breach, by=privacy_officer)
    met = {o.recipient: o.met_at for o in obligations.obligations_for(breach, scope)}
    assert met[operator_authority] is not None
    assert met[f"account #{acme.account.pk}, controller of its contacts' data"] is not None
    assert met["the Texas Attorney General (US-TX)"] is None  # told nothing yet


def test_the_incident_page_shows_the_obligations(breach, privacy_officer, console, acme):
    services.scope_incident(breach, by=privacy_officer, entries=["audience.Contact"])
    page = console(privacy_officer).get(f"/staff/privacy-office/breaches/{breach.pk}/")
    text = page.content.decode()
    assert "Who must be told, by when" in text
    assert "within 72 hours of awareness" in text and "GDPR art. 33(2)" in text


def test_an_unknown_jurisdiction_stops_the_start(settings):
    settings.BREACHES = {"jurisdictions": ["US-ZZ"]}
    with pytest.raises(ImproperlyConfigured, match="TIDINGS_BREACH_JURISDICTIONS"):
        BreachesConfig.ready(BreachesConfig.create("tidings.breaches"))


def test_what_the_reference_notes_do_not_source_is_marked_for_counsel(
    breach, privacy_officer, console, acme, settings
):
    # The notes give Florida's 30 days and nothing of Texas or Colorado.
    for code in ("US-TX", "US-CO"):
        rule = obligations.rule_in_force(code, _at(2026, 1, 1))
        assert rule is not None and obligations.CHECK_DEADLINE in rule.to_check
    florida = obligations.rule_in_force("US-FL", _at(2026, 1, 1))
    assert florida is not None and florida.hours == 30 * 24
    assert obligations.CHECK_DEADLINE not in florida.to_check
    assert obligations.CHECK_THRESHOLD in florida.to_check
    assert all(rule.to_check for rule in obligations.RULES if rule.jurisdiction.startswith("US"))
    eu = obligations.rule_in_force("EU", _at(2026, 1, 1))
    assert eu is not None and not eu.to_check
    settings.BREACHES = {"jurisdictions": ["US-TX"]}
    services.scope_incident(breach, by=privacy_officer, entries=["accounts.User"])
    page = console(privacy_officer).get(f"/staff/privacy-office/breaches/{breach.pk}/")
    text = page.content.decode()
    assert "To be checked by counsel:" in text
    assert "the threshold of residents" in text and "below the threshold: not required" in text
