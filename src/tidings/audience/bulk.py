"""Bulk actions on a selection of contacts or on a whole search result.

Each action is one set-based statement (UPDATE, INSERT ... SELECT, DELETE) over the
query, whatever its size, except erasure, which goes through the rows in batches by id:
each batch is erased from every table of the data map (privacy.contacts.erase), the
keyed hash of each address computed for the suppression list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tidings.accounts.models import Account
from tidings.audience.lookups import AppendElement, RemoveElement
from tidings.audience.mailability import OPTED_OUT
from tidings.audience.models import (
    ConsentProof,
    Contact,
    MailingList,
    Subscription,
)
from tidings.audience.services import AudienceError, clean_tags, contacts_ref
from tidings.core import jobs
from tidings.privacy import contacts as privacy_contacts

# Contacts erased per transaction: short locks, and a killed job resumes where it was.
ERASE_BATCH = 2000

ACTIONS = {
    "tag": _("Add a tag"),
    "add_to_list": _("Add to a list"),
    "remove_from_list": _("Remove from a list"),
    "blocklist": _("Blocklist"),
    "delete": _("Delete (erase)"),
}


@dataclass
class BulkResult:
    action: str
    changed: int


# The job that applies an action to every contact of a search (audience.tasks).
BULK = "tidings.audience.tasks.bulk_contacts"


def apply_later(account: Account, search: dict[str, Any], action: str, argument: str) -> None:
    """Apply `action` to every contact of a search (`ContactSearch.as_dict()`), however
    many, in a job queued after the commit; a wrong action, tag or list is refused now."""
    check(account, action, argument)
    jobs.enqueue(BULK, account_id=account.pk, search=search, action=action, argument=argument)


def check(account: Account, action: str, argument: str = "") -> str | MailingList | None:
    """The action's argument, checked (a tag, the account's list); AudienceError names
    what is wrong. Run before queueing a job, so the customer is told at once."""
    if action == "tag":
        tags = clean_tags([argument])
        if not tags:
            raise AudienceError(_("Type the tag to add."))
        return tags[0]
    if action in ("add_to_list", "remove_from_list"):
        return _list_of(account, argument)
    if action in ("blocklist", "delete"):
        return None
    raise AudienceError(_("Unknown action: choose one of %(join)s.") % {"join": ", ".join(ACTIONS)})


def apply(
    account: Account, contacts: QuerySet[Contact], action: str, argument: str = ""
) -> BulkResult:
    """Run `action` on `contacts` (which must be the account's). Raises AudienceError on
    an unknown action or a bad argument, before anything changes."""
    checked = check(account, action, argument)
    contacts = contacts.filter(account=account)
    if action == "tag":
        assert isinstance(checked, str)
        return BulkResult(action, add_tag(contacts, checked))
    if action == "add_to_list":
        assert isinstance(checked, MailingList)
        return BulkResult(action, add_to_list(contacts, checked))
    if action == "remove_from_list":
        assert isinstance(checked, MailingList)
        return BulkResult(action, remove_from_list(contacts, checked))
    if action == "blocklist":
        return BulkResult(action, blocklist(contacts))
    return BulkResult(action, erase(account, contacts))


def _list_of(account: Account, argument: str) -> MailingList:
    try:
        key = uuid.UUID(str(argument))
    except ValueError:
        raise AudienceError(_("Choose a list.")) from None
    mailing_list = MailingList.objects.filter(account=account, uuid=key).first()
    if mailing_list is None:
        raise AudienceError(_("That list does not exist."))
    return mailing_list


def add_tag(contacts: QuerySet[Contact], tag: str) -> int:
    return contacts.exclude(tags__has_element=tag).update(
        tags=AppendElement("tags", tag), updated_at=timezone.now()
    )


def remove_tag(contacts: QuerySet[Contact], tag: str) -> int:
    return contacts.filter(tags__has_element=tag).update(
        tags=RemoveElement("tags", tag), updated_at=timezone.now()
    )


def add_to_list(
    contacts: QuerySet[Contact],
    mailing_list: MailingList,
    *,
    note: str = "added to the list by the customer (bulk action)",
) -> int:
    """Subscribe the contacts, on their own legal basis, with a proof row each (`note`
    says why). Those who left (the list or everything) and pending signups are left as
    they are (P21)."""
    eligible = contacts.exclude(status__in=[*OPTED_OUT, Contact.Status.UNCONFIRMED])
    try:
        ids_sql, ids_params = eligible.values("pk").query.sql_with_params()
    except EmptyResultSet:
        return 0
    now = timezone.now()
    sub = Subscription._meta.db_table
    proof = ConsentProof._meta.db_table
    contact = Contact._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {sub} (contact_id, mailing_list_id, status, created_at, confirmed_at) "  # noqa: S608
            f"SELECT c.id, %s, %s, %s, %s FROM {contact} c WHERE c.id IN ({ids_sql}) "
            "ON CONFLICT (contact_id, mailing_list_id) DO NOTHING",
            [mailing_list.pk, Subscription.Status.CONFIRMED, now, now, *ids_params],
        )
        added = cursor.rowcount
        cursor.execute(
            f"INSERT INTO {proof} (account_id, contact_id, mailing_list_id, method, "  # noqa: S608
            "legal_basis, consent_text, consent_version, user_agent, given_at, double_optin, "
            "note, source, file_digest) "
            f"SELECT c.account_id, c.id, %s, %s, c.legal_basis, '', '', '', %s, %s, %s, '', '' "
            f"FROM {contact} c "
            f"JOIN {sub} s ON s.contact_id = c.id AND s.mailing_list_id = %s "
            "AND s.created_at = %s",
            [
                mailing_list.pk,
                ConsentProof.Method.MANUAL,
                now,
                False,
                note[:500],
                mailing_list.pk,
                now,
            ],
        )
    return added


def remove_from_list(contacts: QuerySet[Contact], mailing_list: MailingList) -> int:
    """Take the contacts off the list; a contact's own unsubscription stays recorded."""
    deleted, _by_model = (
        Subscription.objects.filter(mailing_list=mailing_list, contact__in=contacts.values("pk"))
        .exclude(status=Subscription.Status.UNSUBSCRIBED)
        .delete()
    )
    return deleted


def blocklist(contacts: QuerySet[Contact]) -> int:
    return contacts.exclude(status__in=[*OPTED_OUT, Contact.Status.BLOCKLISTED]).update(
        status=Contact.Status.BLOCKLISTED, updated_at=timezone.now()
    )


def erase(account: Account, contacts: QuerySet[Contact]) -> int:
    """Erase the contacts (services.erase_contact for many), a batch per transaction:
    every table of the data map, each address kept only as a keyed hash on the
    suppression list, their part in campaign reports as counts."""
    erased = 0
    mine = contacts.filter(account=account).order_by("pk")
    while True:
        batch = list(mine.only("pk", "email", "digest", "created_at")[:ERASE_BATCH])
        if not batch:
            return erased
        with transaction.atomic():
            privacy_contacts.erase(contacts_ref(account.pk, batch))
        erased += len(batch)
