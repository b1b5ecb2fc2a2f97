"""The privacy policy page and its versions (P11, P31, P34)."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.text import capfirst

from tests.public.pages import read
from tidings.core.datamap import customer_entries
from tidings.privacy.models import PolicyVersion
from tidings.privacy.policy import current_policy, publish_policy

POLICY_URL = "/privacy/"


def move_data_to(settings, location: str) -> None:
    settings.OPERATOR = {**settings.OPERATOR, "data_location": location}


def effective(version: PolicyVersion) -> str:
    return dateformat.format(timezone.localtime(version.published_at), "j F Y")


def test_policy_url_is_stable():
    # Links to the policy in mail and printed material must keep working.
    assert reverse("public:privacy") == POLICY_URL
    assert reverse("public:policy_version", kwargs={"number": 3}) == "/privacy/v/3/"


@pytest.mark.promise("P11", "P34")
def test_policy_names_operator_location_privacy_contact_address_and_authority(client, db, operator):
    page = read(client.get(POLICY_URL))

    assert operator["name"] in page.text
    assert f"stored in {operator['data_location']}" in page.text
    assert operator["privacy_contact_name"] in page.text
    assert operator["postal_address"] in page.text
    assert operator["authority_name"] in page.text
    hrefs = {link.href for link in page.links}
    assert f"mailto:{operator['privacy_email']}" in hrefs
    assert operator["authority_url"] in hrefs


@pytest.mark.promise("P31")
def test_first_visit_publishes_version_1_and_shows_its_number_and_date(client, db):
    assert not PolicyVersion.objects.exists()

    page = read(client.get(POLICY_URL))

    version = PolicyVersion.objects.get()
    assert version.number == 1
    assert version.changes == "First version."
    assert f"Version 1, in effect from {effective(version)}" in page.text


def test_policy_lists_every_kind_of_customer_data_in_the_data_map(db):
    text = current_policy().text

    for entry in customer_entries():
        assert capfirst(str(entry.category)) in text, entry.label
        assert f"Legal basis: {entry.legal_basis}" in text, entry.label
    # Engineers' references stay out of the customers' text.
    assert "TIDINGS_" not in text
    assert "(P" not in text


def test_policy_states_the_configured_retention_periods(db, settings):
    settings.RETENTION = {
        **settings.RETENTION,
        "grace_days": 21,
        "erasure_deadline_days": 35,
        "invoice_years": 7,
    }

    text = current_policy().text

    assert "For 21 days you can change your mind" in text
    assert "at the latest 35 days after closing" in text
    assert "kept for 7 years after erasure" in text


@pytest.mark.parametrize(
    ("enabled", "said"), [(True, "currently switched on"), (False, "has switched this list off")]
)
def test_policy_says_whether_the_suppression_list_is_switched_on(db, settings, enabled, said):
    settings.SUPPRESSION_ENABLED = enabled

    assert said in current_policy().text


def test_policy_names_its_only_cookies_and_honours_dnt_and_gpc(db, settings):
    text = current_policy().text

    assert f"`{settings.SESSION_COOKIE_NAME}` keeps you logged in" in text
    assert f"`{settings.CSRF_COOKIE_NAME}` protects the forms" in text
    assert "Do Not Track and Global Privacy Control" in text


@pytest.mark.promise("P31")
def test_publishing_without_a_change_creates_no_new_version(db):
    first = publish_policy()
    again = publish_policy()

    assert again.pk == first.pk
    assert PolicyVersion.objects.count() == 1


@pytest.mark.promise("P11", "P31")
def test_moving_the_data_publishes_version_2_and_keeps_version_1_unchanged(db, settings):
    move_data_to(settings, "the European Union")
    first = publish_policy()
    text, digest = first.text, first.fingerprint

    move_data_to(settings, "Zurich, Switzerland")
    second = publish_policy()

    first.refresh_from_db()
    assert second.number == 2
    assert "stored in Zurich, Switzerland" in second.text
    assert second.changes == "Changed: Where your data is stored."
    assert (first.text, first.fingerprint) == (text, digest)
    assert "stored in the European Union" in first.text


@pytest.mark.promise("P31")
def test_policy_page_shows_what_changed_and_every_dated_version(client, db, settings):
    move_data_to(settings, "the European Union")
    with time_machine.travel(dt.datetime(2025, 1, 10, 9, tzinfo=dt.UTC)):
        first = publish_policy()
    move_data_to(settings, "Zurich, Switzerland")
    with time_machine.travel(dt.datetime(2025, 3, 5, 9, tzinfo=dt.UTC)):
        publish_policy()

    page = read(client.get(POLICY_URL))

    assert "Version 2, in effect from 5 March 2025" in page.text
    assert "stored in Zurich, Switzerland" in page.text
    assert "What changed in version 2" in page.text
    assert any("stored in the European Union" in line for line in page.deleted)
    assert any("stored in Zurich, Switzerland" in line for line in page.inserted)
    assert "Version 2, 5 March 2025 (current): Changed: Where your data is stored." in page.text
    assert "Version 1, 10 January 2025: First version." in page.text
    assert {"href": f"/privacy/v/{first.number}/", "text": "Version 1"} in [
        vars(link) for link in page.links
    ]


@pytest.mark.promise("P31")
def test_an_old_version_is_shown_as_it_was_worded(client, db, settings):
    move_data_to(settings, "the European Union")
    publish_policy()
    move_data_to(settings, "Zurich, Switzerland")
    publish_policy()

    page = read(client.get("/privacy/v/1/"))

    assert "Version 1, in effect from" in page.text
    assert "This version has been replaced" in page.text
    assert "stored in the European Union" in page.text
    assert "stored in Zurich, Switzerland" not in page.text
    assert not page.inserted and not page.deleted  # version 1 has no predecessor


def test_a_missing_version_is_not_found(client, db):
    publish_policy()

    assert client.get("/privacy/v/2/").status_code == 404
    assert client.get("/privacy/v/0/").status_code == 404


def test_operator_values_are_escaped_on_the_policy_page(client, db, settings):
    settings.OPERATOR = {**settings.OPERATOR, "name": 'Evil <script>alert("x")</script> Ltd'}

    body = client.get(POLICY_URL).content.decode()

    assert "<script>" not in body
    assert "Evil &lt;script&gt;" in body
