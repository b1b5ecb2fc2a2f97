"""Searching the desk through its keyed index (desk/search.py): subjects and bodies are
encrypted at rest (P8), so their words are stored as HMAC digests under a key derived
from the field keys; staff find conversations by a word of any message (notes too),
customers only among their own and only in what they see; the index holds no text,
goes with erasure and retention, and follows key rotation."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from tidings.accounts import services as accounts
from tidings.core import retention
from tidings.core.fields import _fernet
from tidings.desk import search, services
from tidings.desk.models import Conversation, SearchToken
from tidings.privacy.services import erase_account
from tidings.staff.models import AuditEvent

SECRET_BODY = "My invoice for Décembre shows the Zeppelin plan twice"


def write(user, body: str = SECRET_BODY, subject: str = "Billing") -> Conversation:  # type: ignore[no-untyped-def]
    return services.open_conversation(user=user, subject=subject, body=body)


def listed(page: str) -> set[int]:
    return {int(n) for n in re.findall(r'href="/staff/desk/(\d+)/"', page)}


def test_words_are_normalised_and_prefixes_indexed():
    assert search.normalise("ÉLISE's Straße, ﬁne a") == ["elise", "strasse", "fine"]
    assert {"inv", "invo", "invoice", "invoices"} <= search.terms("Invoices")
    assert "in" not in search.terms("Invoices")
    assert search.normalise("x" * 40) == ["x" * search.MAX_WORD]


@pytest.mark.promise("P8")
def test_a_word_of_a_body_finds_its_conversation(console, staff, customer, other_customer, db):
    theirs = write(customer)
    other = write(other_customer, body="Please close my account", subject="Closing")
    services.reply(other, by=staff, body="Done, the zeppelins are gone.")
    services.add_note(theirs, by=staff, body="Refund approved by finance")
    client = console(staff)
    # Accents and case do not matter; a prefix of three letters or more is enough.
    for query in ("decembre", "DÉCEMBRE", "invo", "zeppelin plan", "refund"):
        found = listed(client.get("/staff/desk/", {"q": query}).text)
        assert theirs.pk in found, query
        assert other.pk not in found, query
    # Every word must be there; a word of another message of the same conversation counts.
    assert listed(client.get("/staff/desk/", {"q": "zeppelin refund"}).text) == {theirs.pk}
    assert listed(client.get("/staff/desk/", {"q": "décembre close"}).text) == set()
    assert listed(client.get("/staff/desk/", {"q": "zeppelins gone"}).text) == {other.pk}
    # Subjects too.
    assert listed(client.get("/staff/desk/", {"q": "closing"}).text) == {other.pk}
    # The list was audited as disclosing what it searched in.
    event = AuditEvent.objects.filter(target_id=str(theirs.pk)).order_by("-pk").first()
    assert event is not None and "messages" in event.fields


def test_staff_without_the_desks_permission_find_nothing(console, billing_staff, customer, db):
    write(customer)
    response = console(billing_staff).get("/staff/desk/", {"q": "zeppelin"})
    assert response.status_code == 403
    assert "Zeppelin" not in response.text


def test_customers_search_their_own_conversations_and_not_staffs_notes(
    client, staff, customer, other_customer, db
):
    mine = write(customer, body="The zeppelin export fails")
    theirs = write(other_customer, body="Zeppelin import question", subject="Grace's")
    services.add_note(mine, by=staff, body="Customer is on the legacy hangar plan")
    client.force_login(customer)
    page = client.get("/support/", {"q": "zeppelin"}).text
    assert f"/support/{mine.pk}/" in page and f"/support/{theirs.pk}/" not in page
    # Staff's internal note is not theirs to search.
    page = client.get("/support/", {"q": "hangar"}).text
    assert f"/support/{mine.pk}/" not in page and "No conversation holds these words." in page
    client.force_login(other_customer)
    page = client.get("/support/", {"q": "export"}).text
    assert f"/support/{mine.pk}/" not in page


def test_a_query_without_words_finds_nothing_and_changes_nothing(
    console, client, staff, customer, db
):
    conversation = write(customer)
    rows = SearchToken.objects.count()
    assert search.matching("!! ? a", with_notes=True) is None
    client.force_login(customer)
    for query in ("!!", "a", "\x00!"):
        page = client.get("/support/", {"q": query})
        assert page.status_code == 200
        assert f"/support/{conversation.pk}/" not in page.text
    staff_page = console(staff).get("/staff/desk/", {"q": "\x00!!"})
    assert staff_page.status_code == 200
    assert SearchToken.objects.count() == rows


@pytest.mark.promise("P8")
def test_the_index_holds_no_plain_text(customer, staff, db):
    conversation = write(customer)
    services.reply(conversation, by=staff, body="We refunded the duplicate Zeppelin charge")
    with connection.cursor() as cursor:
        cursor.execute("SELECT digest FROM desk_searchtoken")
        stored = [row[0] for row in cursor.fetchall()]
    words = search.terms(SECRET_BODY + " Billing refunded duplicate charge")
    assert len(stored) >= len(words)
    assert all(re.fullmatch(r"[0-9a-f]{32}", d) for d in stored)
    assert not set(stored) & words
    # A term made of hex digits only ("dece", of "Décembre") turns up inside a random
    # 32-digit digest by chance (about 2 % of runs for one term among 50 digests).
    readable = [w for w in words if len(w) >= 4 and not re.fullmatch(r"[0-9a-f]+", w)]
    assert readable and not any(w in d for d in stored for w in readable)
    # The digests depend on the key: without it, "zeppelin" cannot be tried against them.
    unkeyed = {search.digest(b"\0" * 32, t) for t in words}
    assert not set(stored) & unkeyed
    assert search.digest(search.keys()[0], "zeppelin") in stored


@pytest.mark.promise("P13")
def test_erasing_the_account_erases_its_index(customer, other_customer, staff, db):
    gone = write(customer)
    services.reply(gone, by=staff, body="Answered")
    kept = write(other_customer)
    account_id = customer.account_id
    accounts.close_account(customer.account, by=customer, erase_now=True)
    erase_account(account_id)
    assert not Conversation.objects.filter(pk=gone.pk).exists()
    assert not SearchToken.objects.filter(conversation_id=gone.pk).exists()
    assert SearchToken.objects.filter(conversation_id=kept.pk).exists()
    assert SearchToken.objects.count() == SearchToken.objects.filter(conversation=kept).count()


@pytest.mark.promise("P12")
def test_retention_takes_the_index_with_the_conversation(customer, staff, db):
    old = write(customer)
    services.set_status(old, status=Conversation.Status.SOLVED, by=staff)
    Conversation.objects.filter(pk=old.pk).update(solved_at=timezone.now() - timedelta(days=740))
    assert retention.run("solved support conversations") == 1
    assert not SearchToken.objects.exists()


@pytest.mark.promise("P8")
def test_key_rotation_rebuilds_the_index(console, staff, customer, settings, db):
    conversation = write(customer)
    before = set(SearchToken.objects.values_list("digest", flat=True))
    old = settings.FIELD_ENCRYPTION_KEYS
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *old]
    _fernet.cache_clear()
    try:
        client = console(staff)
        # A new key first: found all the same, as searches ask under every key.
        assert conversation.pk in listed(client.get("/staff/desk/", {"q": "zeppelin"}).text)
        out = io.StringIO()
        call_command("rotatekeys", stdout=out)
        assert "desk.SearchToken: 1 conversations indexed again" in out.getvalue()
        after = set(SearchToken.objects.values_list("digest", flat=True))
        assert len(after) == len(before) and not after & before
        settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # old key dropped
        _fernet.cache_clear()
        assert conversation.pk in listed(client.get("/staff/desk/", {"q": "zeppelin"}).text)
    finally:
        settings.FIELD_ENCRYPTION_KEYS = old
        _fernet.cache_clear()


def test_a_later_message_of_the_customer_is_indexed_too(customer, db):
    conversation = write(customer, body="First words")
    services.add_customer_message(conversation, body="Later: quokka", channel="form")
    words = search.matching("quokka", with_notes=False)
    assert words is not None
    assert list(Conversation.objects.filter(words)) == [conversation]


@pytest.mark.postgres
def test_postgresql_answers_a_search_from_the_index(customer, db):
    write(customer)
    words = search.matching("zeppelin", with_notes=True)
    assert words is not None
    sql, params = Conversation.objects.filter(words).query.sql_with_params()
    with connection.cursor() as cursor:
        # The tables are tiny here: forbid the sequential scan a planner would rather do.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "desk_search_digest" in plan
