"""A customer told of a breach sees it on every page until they acknowledge it, beside
the mail (P33); no one acknowledges another's notice."""

from __future__ import annotations

import pytest

from tests.breaches.test_report import scoped_breach
from tidings.breaches import services
from tidings.breaches.models import Notice


@pytest.mark.promise("P33")
def test_the_banner_shows_until_the_customer_has_read_it(client, mailbox, privacy_officer, acme):
    incident = scoped_breach(privacy_officer)
    services.send_notices(incident, by=privacy_officer)
    user = acme.users[0]
    client.force_login(user)
    page = client.get("/account/").content.decode()
    assert "A personal-data breach concerns your data" in page
    assert "A personal-data breach concerns your contacts" in page
    assert incident.summary in page
    for notice in Notice.objects.filter(user=user):
        response = client.post(f"/account/breach-notices/{notice.pk}/read/", {"next": "/account/"})
        assert response.status_code == 302 and response["Location"] == "/account/"
    page = client.get("/account/").content.decode()
    assert 'class="breach-notices"' not in page
    assert "Acknowledged at" in page  # My Account lists the notices, from the data map
    assert Notice.objects.filter(user=user, acknowledged_at__isnull=False).count() == 2


def test_no_one_acknowledges_anothers_notice(client, mailbox, privacy_officer, acme, globex):
    incident = scoped_breach(privacy_officer)
    services.send_notices(incident, by=privacy_officer)
    theirs = Notice.objects.filter(user=acme.users[0]).first()
    client.force_login(globex.users[0])
    assert client.post(f"/account/breach-notices/{theirs.pk}/read/").status_code == 404
    assert client.get(f"/account/breach-notices/{theirs.pk}/read/").status_code == 405
    assert not Notice.objects.filter(acknowledged_at__isnull=False).exists()
