"""The links in breach mails come from the URL configuration (reverse) on the base
URL, never from paths written into the templates."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.test import override_settings

from tests.breaches.test_report import scoped_breach
from tidings.breaches import services
from tidings.breaches.models import Notice


@override_settings(ROOT_URLCONF="tests.breaches.prefixed_urls", BASE_URL="https://mail.example")
def test_notice_and_clock_mails_link_where_the_pages_are_served(mailbox, privacy_officer, acme):
    incident = scoped_breach(privacy_officer, aware_hours_ago=0)
    with time_machine.travel(incident.aware_at + timedelta(hours=25), tick=False):
        assert services.escalate_clocks() == 1
    (clock,) = mailbox
    assert f"https://mail.example/app/staff/privacy-office/breaches/{incident.pk}/" in clock.body
    services.send_notices(incident, by=privacy_officer)
    english = acme.users[0]
    own = next(m for m in mailbox if m.to == [english.email] and "your data" in m.subject)
    assert "https://mail.example/app/account/\n" in own.body.replace("\r\n", "\n")
    facts = next(m for m in mailbox if m.to == [english.email] and "contacts'" in m.subject)
    notice = Notice.objects.get(user=english, role=Notice.Role.PROCESSOR)
    assert f"https://mail.example/app/account/breach-notices/{notice.pk}/" in facts.body
