"""A session unused for a while ends: two hours for customers, thirty minutes for
staff (TIDINGS_SESSION_IDLE_MINUTES, TIDINGS_STAFF_SESSION_IDLE_MINUTES)."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.utils import timezone

from tests.staff.conftest import log_in_verified


def test_a_customer_session_idle_past_its_limit_is_logged_out(client, customer, settings):
    client.force_login(customer)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        assert client.get("/account/").status_code == 200
        traveller.shift(timedelta(minutes=settings.SESSION_IDLE_MINUTES + 1))
        response = client.get("/account/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_customer_who_keeps_using_the_site_stays_logged_in(client, customer, settings):
    client.force_login(customer)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(5):
            assert client.get("/account/").status_code == 200
            traveller.shift(timedelta(minutes=settings.SESSION_IDLE_MINUTES - 5))
        assert client.get("/account/").status_code == 200


def test_a_staff_session_idles_out_sooner(client, staff, settings):
    assert settings.STAFF_SESSION_IDLE_MINUTES < settings.SESSION_IDLE_MINUTES
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        log_in_verified(client, staff)
        assert client.get("/staff/admin/").status_code == 200
        traveller.shift(timedelta(minutes=settings.STAFF_SESSION_IDLE_MINUTES + 1))
        response = client.get("/staff/admin/")
    assert response.status_code == 302 and "login" in response["Location"]
