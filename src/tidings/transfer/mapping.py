"""Which column of an uploaded file goes where: suggestions and validation.

A mapping is a list with one target per column: a contact field ("email", "name",
"first_name", "last_name"), "attribute:<key>" for a custom attribute, "attributes" for a
column of JSON objects (listmonk's exports), "tags", "status" or "optout" for columns that
say a person left (their rows are skipped, never imported as active), or "ignore".
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tidings.audience import attribute_types
from tidings.audience.attribute_types import attribute_key, plain_letters
from tidings.audience.services import (
    MAX_ATTRIBUTES,
    AudienceError,
    check_attribute_name,
    check_declarations,
)
from tidings.transfer.errors import TransferError

EMAIL, NAME, FIRST, LAST = "email", "name", "first_name", "last_name"
ATTRIBUTES, TAGS, STATUS, OPTOUT, IGNORE = "attributes", "tags", "status", "optout", "ignore"
ATTRIBUTE_PREFIX = "attribute:"

CHOICES = [
    (EMAIL, gettext_lazy("Email address")),
    (NAME, gettext_lazy("Name")),
    (FIRST, gettext_lazy("First name")),
    (LAST, gettext_lazy("Last name")),
    ("attribute", gettext_lazy("Attribute (named below)")),
    (ATTRIBUTES, gettext_lazy("Attributes as JSON (listmonk)")),
    (TAGS, gettext_lazy("Tags (comma-separated)")),
    (STATUS, gettext_lazy("Status (rows not active are skipped)")),
    (OPTOUT, gettext_lazy("Opt-out date (rows with a value are skipped)")),
    (IGNORE, gettext_lazy("Ignore this column")),
]
SIMPLE_TARGETS = {EMAIL, NAME, FIRST, LAST, ATTRIBUTES, TAGS, STATUS, OPTOUT, IGNORE}
UNIQUE_TARGETS = {EMAIL, NAME, FIRST, LAST, ATTRIBUTES, TAGS, STATUS}

# Mailchimp's audience export ("subscribed", "unsubscribed" and "cleaned" members).
MAILCHIMP = {
    "email address": EMAIL,
    "first name": FIRST,
    "last name": LAST,
    "tags": TAGS,
    # Someone in an "unsubscribed" or "cleaned" export left or bounced: never active.
    "unsub_time": OPTOUT,
    "clean_time": OPTOUT,
}
MAILCHIMP_SYSTEM = {
    "member_rating", "optin_time", "optin_ip", "confirm_time", "confirm_ip", "latitude",
    "longitude", "gmtoff", "dstoff", "timezone", "cc", "region", "last_changed", "leid",
    "euid", "notes", "unsub_campaign_title", "unsub_campaign_id", "unsub_reason",
    "unsub_reason_other", "clean_campaign_title", "clean_campaign_id",
}  # fmt: skip
# listmonk's subscriber export and import format.
LISTMONK = {"email": EMAIL, "name": NAME, "attributes": ATTRIBUTES, "status": STATUS}
LISTMONK_SYSTEM = {"uuid", "id", "created_at", "updated_at", "lists"}
COMMON = {
    "email": EMAIL, "e-mail": EMAIL, "email address": EMAIL, "e-mail address": EMAIL,
    "mail": EMAIL, "emailaddress": EMAIL,
    "name": NAME, "full name": NAME, "fullname": NAME,
    "first name": FIRST, "firstname": FIRST, "given name": FIRST, "forename": FIRST,
    "last name": LAST, "lastname": LAST, "surname": LAST, "family name": LAST,
    "tags": TAGS, "status": STATUS,
    # French
    "courriel": EMAIL, "adresse e-mail": EMAIL, "adresse email": EMAIL, "adresse mail": EMAIL,
    "adresse courriel": EMAIL, "adresse electronique": EMAIL, "mel": EMAIL,
    "prenom": FIRST, "nom de famille": LAST, "nom complet": NAME,
    "etiquettes": TAGS, "statut": STATUS,
    # German
    "e-mail-adresse": EMAIL, "e-mail adresse": EMAIL, "emailadresse": EMAIL,
    "mailadresse": EMAIL, "vorname": FIRST, "nachname": LAST, "familienname": LAST,
    "vollstandiger name": NAME,
    # Spanish
    "correo": EMAIL, "correo electronico": EMAIL, "correo-e": EMAIL,
    "direccion de correo": EMAIL, "direccion de correo electronico": EMAIL,
    "nombre": FIRST, "apellido": LAST, "apellidos": LAST, "nombre completo": NAME,
    "etiquetas": TAGS, "estado": STATUS,
    # Italian
    "posta elettronica": EMAIL, "indirizzo email": EMAIL, "indirizzo e-mail": EMAIL,
    "nome": FIRST, "cognome": LAST, "nome completo": NAME, "etichette": TAGS, "stato": STATUS,
    # Dutch
    "e-mailadres": EMAIL, "emailadres": EMAIL, "mailadres": EMAIL,
    "voornaam": FIRST, "achternaam": LAST, "familienaam": LAST, "volledige naam": NAME,
    "naam": NAME,
}  # fmt: skip
# "Nom" (French), "Name" (German) and "Naam" (Dutch) beside a first name in that
# language are the family name; alone, they are the whole name.
SURNAME_BESIDE = {"nom": {"prenom"}, "name": {"vorname"}, "naam": {"voornaam"}}


def header_key(header: str) -> str:
    """A column header as compared between files: lower case without accents, "_" as a
    space, single spaces ("Prénom" and "prenom" are the same header)."""
    if not header:
        return ""
    return " ".join(plain_letters(header).replace("_", " ").split()).lower()


# Letters that decomposition leaves as they are, written as people type them plainly.


MAILCHIMP = {header_key(k): v for k, v in MAILCHIMP.items()}
MAILCHIMP_SYSTEM = {header_key(k) for k in MAILCHIMP_SYSTEM}
LISTMONK_SYSTEM = {header_key(k) for k in LISTMONK_SYSTEM}


def recognise(columns: Sequence[str]) -> str:
    """'mailchimp', 'listmonk' or '' from the header row."""
    keys = {header_key(c) for c in columns}
    if "email address" in keys and ({"first name", "last name"} & keys or "leid" in keys):
        return "mailchimp"
    if "email" in keys and "attributes" in keys:
        return "listmonk"
    return ""


def suggest(columns: Sequence[str], remembered: dict[str, str] | None = None) -> list[str]:
    """A target for every column: the account's last choice for a header it has seen,
    else what a Mailchimp or listmonk export means, else a guess from the header."""
    remembered = remembered or {}
    source = recognise(columns)
    keys = {header_key(c) for c in columns}
    targets: list[str] = []
    for column in columns:
        key = header_key(column)
        if key in remembered:
            target = remembered[key]
        elif source == "mailchimp" and key in MAILCHIMP:
            target = MAILCHIMP[key]
        elif source == "mailchimp" and key in MAILCHIMP_SYSTEM:
            target = IGNORE
        elif source == "listmonk" and key in LISTMONK:
            target = LISTMONK[key]
        elif source == "listmonk" and key in LISTMONK_SYSTEM:
            target = IGNORE
        elif key in SURNAME_BESIDE:
            target = LAST if SURNAME_BESIDE[key] & keys else NAME
        elif key in COMMON:
            target = COMMON[key]
        else:
            target = ATTRIBUTE_PREFIX + attribute_key(column)
        targets.append(target)
    # A target that holds one column can be suggested once only: later ones are ignored.
    seen: set[str] = set()
    for i, target in enumerate(targets):
        if target in UNIQUE_TARGETS:
            if target in seen:
                targets[i] = IGNORE
            seen.add(target)
    return targets


def validate(columns: Sequence[str], targets: Sequence[str]) -> list[str]:
    """The mapping as stored, or TransferError saying what is wrong with it."""
    if len(targets) != len(columns):
        raise TransferError(_("Choose what to do with every column."))
    keys: set[str] = set()
    used: set[str] = set()
    for column, target in zip(columns, targets, strict=True):
        if target.startswith(ATTRIBUTE_PREFIX):
            key = target[len(ATTRIBUTE_PREFIX) :]
            try:
                check_attribute_name(key)
            except AudienceError as error:
                raise TransferError(
                    _("Column “%(column)s”: %(error)s") % {"column": column[:70], "error": error}
                ) from None
            if key != key.strip():
                raise TransferError(
                    _("Column “%(column)s”: “%(key)s” has spaces around it.")
                    % {"column": column[:70], "key": key}
                )
            if key in keys:
                raise TransferError(
                    _("Two columns are mapped to the attribute “%(key)s”.") % {"key": key}
                )
            keys.add(key)
        elif target not in SIMPLE_TARGETS:
            raise TransferError(
                _("Column “%(column)s”: unknown choice %(target)s.")
                % {"column": column, "target": repr(target)}
            )
        elif target in UNIQUE_TARGETS:
            if target in used:
                raise TransferError(
                    _("Only one column can be mapped to %(replace)s.")
                    % {"replace": target.replace("_", " ")}
                )
            used.add(target)
    if EMAIL not in used:
        raise TransferError(_("Choose the column that holds the email address."))
    if len(keys) > MAX_ATTRIBUTES:
        raise TransferError(
            _("A contact can have at most %(MAX_ATTRIBUTES)s attributes.")
            % {"MAX_ATTRIBUTES": MAX_ATTRIBUTES}
        )
    return list(targets)


def to_remember(columns: Sequence[str], targets: Sequence[str]) -> dict[str, str]:
    return {header_key(c): t for c, t in zip(columns, targets, strict=True) if header_key(c)}


def guess_types(columns: Sequence[str], preview: Sequence[Sequence[object]]) -> list[str]:
    """A type for every column, guessed from the file's first rows (used when the column
    is imported as an attribute)."""
    return [
        attribute_types.guess(row[i] for row in preview if i < len(row))
        for i in range(len(columns))
    ]


def attribute_kinds(
    account_id: int,
    columns: Sequence[str],
    targets: Sequence[str],
    types: Sequence[str],
    *,
    existing: bool = False,
) -> dict[str, str]:
    """Attribute name -> type of the columns imported as attributes, checked against the
    account's declarations (an attribute declared already keeps its type) and, with
    `existing`, the values contacts already hold; or TransferError naming the column."""
    kinds: dict[str, str] = {}
    for i, (column, target) in enumerate(zip(columns, targets, strict=True)):
        if not target.startswith(ATTRIBUTE_PREFIX):
            continue
        key = target[len(ATTRIBUTE_PREFIX) :]
        kind = types[i] if i < len(types) and types[i] else attribute_types.TEXT
        try:
            kinds.update(check_declarations(account_id, {key: kind}, existing=existing))
        except AudienceError as error:
            raise TransferError(
                _("Column “%(column)s”: %(error)s") % {"column": column[:70], "error": error}
            ) from None
    return kinds
