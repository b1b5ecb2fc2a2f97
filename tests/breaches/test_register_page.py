"""The breach register in the privacy office, as a privacy officer uses it: from the
discovery to the last notice, every step audited, bad input refused with a message
(P33, P7)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tidings.breaches.models import Filing, Incident, Notice, Scope
from tidings.privacy.models import Disclosure
from tidings.staff.models import AuditEvent

REGISTER = "/staff/privacy-office/breaches/"


def _when(hours_ago: float) -> str:
    return (timezone.localtime() - timedelta(hours=hours_ago)).strftime("%Y-%m-%d %H:%M")


def test_only_privacy_officers_and_admins_with_the_second_factor_enter(
    client, console, privacy_officer, staff, operator_admin
):
    client.force_login(privacy_officer)  # password only
    response = client.get(REGISTER)
    assert response.status_code == 302 and "/staff/admin/login/" in response["Location"]
    assert console(staff).get(REGISTER).status_code == 403
    assert console(operator_admin).get(REGISTER).status_code == 200


@pytest.mark.promise("P33")
def test_an_officer_runs_an_incident_from_discovery_to_the_last_notice(
    console, privacy_officer, acme, globex, mailbox
):
    client = console(privacy_officer)
    assert (
        "/staff/privacy-office/breaches/" in client.get("/staff/privacy-office/").content.decode()
    )
    response = client.post(
        REGISTER,
        {
            "summary": "Acme's contact list exposed by a broken access check",
            "detected_at": _when(5),
            "aware_at": _when(3),
            "gap_reason": "the alert was triaged as a false positive first",
        },
    )
    assert response.status_code == 302, response.content
    incident = Incident.objects.get()
    page = client.get(response["Location"]).content.decode()
    assert "Authority report due in" in page  # the clock, from awareness

    page_url = f"{REGISTER}{incident.pk}/"
    response = client.post(
        page_url,
        {
            "action": "breach",
            "breach-confidentiality": "on",
            "breach-cause": "a missing account check on the contacts' export route",
            "breach-consequences": "contacts may receive phishing",
            "breach-measures": "route fixed; logs show one download",
        },
    )
    assert response.status_code == 302, response.content
    response = client.post(
        page_url,
        {
            "action": "scope",
            "scope-entries": ["audience.Contact"],
            "scope-accounts": str(acme.account.pk),
        },
    )
    assert response.status_code == 302, response.content
    page = client.get(page_url).content.decode()
    assert "3 contacts (processor)" in page
    assert not mailbox  # scoping is the dry run: nobody told

    response = client.post(page_url, {"action": "file", "file-reference": "DPA-1"})
    assert response.status_code == 302, response.content
    assert Filing.objects.get().phase == 1 and Disclosure.objects.count() == 1
    pdf = client.get(f"{page_url}report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    assert client.post(page_url, {"action": "notify"}).status_code == 302
    assert client.post(page_url, {"action": "notify"}).status_code == 302  # a second click
    told = sorted(m.to[0] for m in mailbox)
    assert told == sorted(u.email for u in acme.users)  # processor notices; Globex untouched
    assert Notice.objects.filter(role=Notice.Role.PROCESSOR).count() == 2
    assert "2 users told of their contacts" in client.get(page_url).content.decode()
    assert "Acme&#x27;s contact list exposed" in client.get(REGISTER).content.decode()
    reads = AuditEvent.objects.filter(target_type="breaches.Incident", actor_id=privacy_officer.pk)
    assert {"create", "update", "read", "list", "export"} <= set(
        reads.values_list("action", flat=True)
    )


def test_awareness_before_detection_is_refused_on_the_page(console, privacy_officer):
    response = console(privacy_officer).post(
        REGISTER, {"summary": "x", "detected_at": _when(1), "aware_at": _when(2)}
    )
    assert response.status_code == 400
    assert "Awareness cannot come before detection" in response.content.decode()
    assert not Incident.objects.exists()


def test_another_tenants_or_an_unknown_account_number_is_refused(console, privacy_officer, acme):
    client = console(privacy_officer)
    client.post(REGISTER, {"summary": "leak", "detected_at": _when(1)})
    incident = Incident.objects.get()
    client.post(
        f"{REGISTER}{incident.pk}/",
        {"action": "breach", "breach-integrity": "on", "breach-cause": "c",
         "breach-consequences": "x", "breach-measures": "m"},
    )  # fmt: skip
    for accounts in ("999999", "abc"):
        response = client.post(
            f"{REGISTER}{incident.pk}/",
            {"action": "scope", "scope-entries": ["audience.Contact"], "scope-accounts": accounts},
        )
        assert response.status_code == 400
    assert not Scope.objects.exists()
    assert client.get(f"{REGISTER}999999/").status_code == 404
    assert client.post(f"{REGISTER}{incident.pk}/", {"action": "notify"}).status_code == 400
