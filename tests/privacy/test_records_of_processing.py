"""The records of processing (art. 30(1)(c)) name the right data subjects: contacts for
the contacts' data the operator processes for its customers, not the customers."""

from __future__ import annotations

from tidings.audience.models import Contact, ContactRequest, Subscription
from tidings.core import datamap
from tidings.core.datamap import Owner, plain
from tidings.privacy import office
from tidings.sending.models import OutboundMail

CONTACTS = str(office.OWNER_AS_SUBJECTS[Owner.CONTACT])
CUSTOMERS = str(office.OWNER_AS_SUBJECTS[Owner.CUSTOMER])


def _subjects(model: type) -> str:
    entry = datamap.entry_for(model)
    assert entry is not None
    (activity,) = [a for a in office.records_of_processing() if a.purpose == plain(entry.purpose)]
    return activity.data_subjects


def test_contacts_data_names_contacts_and_customers_data_names_customers(db):
    from_contacts = [e for e in datamap.entries() if e.contact_part is not None]
    assert from_contacts
    for entry in datamap.entries():
        subjects = _subjects(entry.model)
        if entry.contact_part is not None:
            assert CONTACTS in subjects, entry.label
        else:
            assert CONTACTS not in subjects or Owner.CONTACT in entry.data_subjects, entry.label


def test_the_contacts_own_tables_name_no_customer(db):
    for model in (Contact, Subscription, ContactRequest):
        assert _subjects(model) == CONTACTS


def test_mail_to_both_names_both(db):
    assert _subjects(OutboundMail) == f"{CONTACTS}; {CUSTOMERS}"
