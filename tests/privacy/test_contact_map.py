"""The data map reaches the contact: every entry says how one contact's rows are found
and erased (or why it holds none), every model that points at a contact is in it, and
the contact's view, download and erasure are generated from it, whatever the table."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection, models

from tidings.accounts import services as accounts
from tidings.audience import bulk, rights, services
from tidings.audience.models import Contact, MailingList
from tidings.core import datamap
from tidings.core.datamap import ContactErasure, ContactPart
from tidings.outbox.models import OutboxMessage
from tidings.outbox.services import store
from tidings.privacy.services import erase_account
from tidings.sending.models import BounceRecord, OutboundMail


@pytest.fixture
def account(customer):  # type: ignore[no-untyped-def]
    return customer.account


@pytest.fixture
def newsletter(account):  # type: ignore[no-untyped-def]
    return MailingList.objects.create(account=account, name="Newsletter")


def _points_at(model: type[models.Model], targets: set[type[models.Model]]) -> bool:
    return any(
        isinstance(f, models.ForeignKey) and f.related_model in targets
        for f in model._meta.concrete_fields
    )


def test_every_entry_says_whether_it_holds_contacts_data():
    silent = [e.label for e in datamap.entries() if not e.contact]
    assert not silent, "say how a contact's rows are reached, or why there are none: " + ", ".join(
        silent
    )


def test_every_model_that_points_at_a_contact_has_a_contact_part():
    """A model with a foreign key to the contact, or to a row that has one (a click of
    a delivery), holds contact data: it must say how it is shown and erased."""
    tied = {datamap.contact_root().model}
    grew = True
    while grew:
        more = {m for m in apps.get_models() if m not in tied and _points_at(m, tied)}
        tied |= more
        grew = bool(more)
    missing = []
    for model in tied:
        entry = datamap.entry_for(model)
        if entry is None or entry.contact_part is None:
            missing.append(model._meta.label)
    assert not missing, "give these a contact part in the data map: " + ", ".join(sorted(missing))


def test_a_contact_part_must_say_how_its_rows_are_reached():
    with pytest.raises(ValueError, match="by path or rows"):
        datamap.register(
            BounceRecord,
            owner=datamap.Owner.CUSTOMER,
            category="c",
            purpose="p",
            legal_basis=datamap.LegalBasis.CONTRACT,
            retention="r",
            personal_fields=["detail"],
            erase=datamap.Erasure.DELETE,
            account_path="account",
            contact=ContactPart(title="t", erase=ContactErasure.DELETE),
        )


@pytest.fixture
def notes_table(db):  # type: ignore[no-untyped-def]
    """A table added to the map later, by an app of its own: a note about a contact."""

    class CanaryNote(models.Model):
        contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
        text = models.CharField(max_length=200, verbose_name="what the note says")

        class Meta:
            app_label = "privacy"

        def __str__(self) -> str:
            return self.text

    before = datamap._registry.copy()
    try:
        # Made in the test's transaction: its rollback drops the table. SQLite's schema
        # editor will not open inside a transaction: there, the statement alone.
        if connection.vendor == "sqlite":
            sql, params = connection.schema_editor().table_sql(CanaryNote)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
        else:
            with connection.schema_editor() as editor:
                editor.create_model(CanaryNote)
        datamap.register(
            CanaryNote,
            owner=datamap.Owner.CUSTOMER,
            category="notes about contacts",
            purpose="remembering things",
            legal_basis=datamap.LegalBasis.CONTRACT,
            retention="as long as the contact",
            personal_fields=["text"],
            erase=datamap.Erasure.DELETE,
            account_path="contact__account",
            contact=ContactPart(
                title="Notes about you", path="contact", erase=ContactErasure.DELETE
            ),
        )
        yield CanaryNote
    finally:
        # However the set-up ended: no other test may meet the model or its entry.
        datamap._registry.clear()
        datamap._registry.update(before)
        apps.all_models["privacy"].pop("canarynote", None)
        apps.clear_cache()


@pytest.mark.promise("P17", "P20")
@pytest.mark.parametrize("how", ["one", "bulk"])
def test_a_table_added_to_the_map_is_shown_downloaded_and_erased_with_no_code(
    account, newsletter, notes_table, how
):
    contact = services.add_contact(account, "noted@example.org", lists=[newsletter])
    other = services.add_contact(account, "other@example.org", lists=[newsletter])
    notes_table.objects.create(contact=contact, text="likes tulips")
    notes_table.objects.create(contact=other, text="likes roses")

    (section,) = [s for s in rights.contact_data(contact) if s.title == "Notes about you"]
    assert section.columns == ["what the note says"] and section.rows == [["likes tulips"]]
    download = rights.export_contact_data(contact, "csv").decode("utf-8-sig")
    assert '"Notes about you","1","what the note says","likes tulips"' in download
    assert "roses" not in download

    if how == "bulk":
        bulk.erase(account, Contact.objects.filter(pk=contact.pk))
    else:
        services.erase_contact(contact)
    assert list(notes_table.objects.values_list("text", flat=True)) == ["likes roses"]


def test_mail_to_the_address_in_another_case_leaves_with_the_contact(account, newsletter):
    contact = services.add_contact(account, "shopper@example.org", lists=[newsletter])
    for to, contact_id in (("Shopper@Example.org", None), ("SHOPPER@example.org", contact.pk)):
        OutboundMail.objects.create(
            kind="transactional",
            purpose="service",
            account=account,
            contact_id=contact_id,
            to_email=to,
            from_email="shop@example.org",
            subject="Your order",
            text="t",
            status="sent",
        )
    shown = {s.title: s for s in rights.contact_data(contact)}["Other mail sent to you"]
    assert len(shown.rows) == 2
    BounceRecord.objects.create(account=account, contact=contact, kind="soft", source="dsn")
    services.erase_contact(contact)
    assert not OutboundMail.objects.filter(account=account).exists()
    assert not BounceRecord.objects.exists()


def test_erasing_the_account_erases_the_local_copies_of_mail_to_its_contacts(
    account, newsletter, customer, settings, transactional_db
):
    """A campaign's messages in the local outbox name the account's contacts: they go
    with the account, not 30 days later (another account's mail stays)."""
    services.add_contact(account, "Reader@Example.org", lists=[newsletter])
    raw = b"Subject: Rye week\r\nFrom: news@bakery.example\r\n\r\nOur rye is back.\r\n"
    store(sender="news@bakery.example", recipient="reader@example.org", data=raw)
    store(sender="news@other.example", recipient="someone@else.example", data=raw)
    accounts.close_account(account, by=customer)
    erase_account(account.pk)
    assert list(OutboxMessage.objects.values_list("recipients", flat=True)) == [
        "someone@else.example"
    ]


@pytest.mark.promise("P17")
def test_the_notice_to_an_erased_person_leaves_no_copy_in_the_local_outbox(
    account, newsletter, settings, transactional_db
):

    settings.EMAIL_DELIVERY = "outbox"
    contact = services.add_contact(account, "leaving@example.org", lists=[newsletter])
    rights.answer_request(
        account, rights.request_from_contact(contact, kind="access")[0], answer="Here."
    )
    # The receipt of the request, and the answer.
    assert OutboxMessage.objects.filter(recipients="leaving@example.org").count() == 2
    request, _ = rights.request_from_contact(contact, kind="erasure")
    rights.fulfil_erasure(account, request)
    assert not OutboxMessage.objects.filter(recipients__icontains="leaving@").exists()
    assert not OutboundMail.objects.filter(to_email__icontains="leaving@").exists()
