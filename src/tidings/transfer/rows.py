"""From a record of an uploaded file to a contact to write, or the reason it is refused.

This runs once per row of a million-row import, so it is written for speed: the mapping
is compiled once into column indexes, and plain ASCII addresses are checked by a strict
regular expression instead of email-validator (see `import_email`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from django.conf import settings
from django.utils.translation import gettext as _
from email_validator import SPECIAL_USE_DOMAIN_NAMES

from tidings.audience import attribute_types
from tidings.audience.services import (
    MAX_TEXT,
    AudienceError,
    InvalidEmail,
    check_attribute_value,
    clean_attributes,
    normalise_email,
)
from tidings.transfer import mapping as m

_quote = json.encoder.encode_basestring

NAME_MAX = 200
UUIDS_PER_READ = 4096  # new contacts' ids per read of random bytes from the OS

# The fast path accepts only what email-validator accepts and normalises the same way
# (a test proves it with generated addresses): dot-atom local part, LDH domain labels,
# a TLD that starts and ends with a letter. email-validator costs ~25 µs per address, which alone
# would take 25 s of a million-row import; this costs ~1 µs. Anything else (quotes,
# Unicode, "xn--" labels, special-use domains, overlong parts) goes to email-validator.
_FAST_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z])?",
    re.IGNORECASE,
)
_SPECIAL_TLDS = frozenset(SPECIAL_USE_DOMAIN_NAMES)
assert all("." not in name for name in _SPECIAL_TLDS)  # a TLD check is enough


def import_email(raw: str) -> str:
    """The address as `normalise_email` stores it; InvalidEmail when it is not one."""
    text = raw.strip()
    if len(text) <= 254 and _FAST_EMAIL.fullmatch(text):
        local, _at, domain = text.rpartition("@")
        if (
            len(local) <= 64
            and "--" not in domain
            and domain.rpartition(".")[2].lower() not in _SPECIAL_TLDS
        ):
            return text.lower()
    return normalise_email(text)


class Contact(NamedTuple):
    """A row that passed every check the file alone allows (as staged for the database)."""

    seq: int
    email: str
    name: str | None  # None: the file says nothing about the name
    attributes: str | None  # a JSON object, or None
    tags: str | None  # a JSON list, or None
    digest: str  # keyed hash of the address, compared with the suppression list
    uuid: str  # the new contact's public id (random), should it be created


class Refusal(NamedTuple):
    reason: str
    kind: str  # "rejected" (the row is wrong) or "skipped" (the person must not be added)


# Values of a status column that mean the person is not, or no longer, subscribed.
_ACTIVE_WORDS = {"", "active", "enabled", "subscribed", "confirmed", "opted in", "yes"}
_LEFT_WORDS = {
    "unsubscribed", "blocklisted", "blacklisted", "blocked", "bounced", "cleaned",
    "complained", "spam", "disabled", "opted out", "optout", "inactive", "no",
}  # fmt: skip


class RowReader:
    """Compiled once per import from the mapping; called once per record."""

    def __init__(
        self,
        columns: Sequence[str],
        targets: Sequence[str],
        types: Sequence[str] = (),
        declared: Mapping[str, str] | None = None,
    ) -> None:
        """`types`: the type of each column imported as an attribute (text when not
        given); `declared`: the account's declared types, which the keys of a JSON
        attributes column must fit too."""
        self.width = len(columns)
        self.columns = list(columns)
        self.email = targets.index(m.EMAIL)
        self.name = targets.index(m.NAME) if m.NAME in targets else None
        self.first = targets.index(m.FIRST) if m.FIRST in targets else None
        self.last = targets.index(m.LAST) if m.LAST in targets else None
        self.json_attributes = targets.index(m.ATTRIBUTES) if m.ATTRIBUTES in targets else None
        self.tags = targets.index(m.TAGS) if m.TAGS in targets else None
        self.status = targets.index(m.STATUS) if m.STATUS in targets else None
        self.optouts = [i for i, t in enumerate(targets) if t == m.OPTOUT]
        self.attributes = [
            (i, t[len(m.ATTRIBUTE_PREFIX) :])
            for i, t in enumerate(targets)
            if t.startswith(m.ATTRIBUTE_PREFIX)
        ]
        # Column index -> type, for the attribute columns whose values are converted
        # (a text column's values are converted only when a workbook cell is no text).
        self.kinds = {i: types[i] for i, _key in self.attributes if i < len(types) and types[i]}
        self.declared = {k: v for k, v in (declared or {}).items() if v != attribute_types.TEXT}
        self.has_name = any(x is not None for x in (self.name, self.first, self.last))
        # The keyed hash of privacy.services.email_digest, its key set up once.
        self.hmac = hmac.new(settings.SUPPRESSION_KEY.encode(), digestmod=hashlib.sha256)
        # Random hex digits for the new contacts' ids, read from the OS in blocks: each
        # os.urandom lets go of the GIL, and with a call per row the threads writing
        # to the database kept it from this one for a switch interval each time
        # (measured: a third of the reader's time).
        self.entropy = ""
        self.entropy_at = 0

    def __call__(self, seq: int, cells: list[Any]) -> Contact | Refusal | None:
        """The contact of this row, why it is refused, or None for an empty row."""
        n = len(cells)
        if n > self.width and any(str(c).strip() for c in cells[self.width :]):
            if not any(str(c).strip() for c in cells[: self.width]):
                return None
            return Refusal(
                f"the row has {n} cells but the header has {self.width}: "
                "is a delimiter inside a value that is not quoted?",
                "rejected",
            )
        raw = cells[self.email] if self.email < n else ""
        if not isinstance(raw, str):
            raw = str(raw)
        if not raw or raw.isspace():
            if not any(str(c).strip() for c in cells):
                return None
            return Refusal("no email address", "rejected")
        try:
            email = import_email(raw)
        except InvalidEmail as error:
            return Refusal(str(error), "rejected")
        refusal = self._left(cells, n)
        if refusal is not None:
            return refusal
        name = self._name(cells, n)
        if name is not None and len(name) > NAME_MAX:
            return Refusal(f"the name is longer than {NAME_MAX} characters", "rejected")
        attributes: str | None = None
        if self.attributes or self.json_attributes is not None:
            values = self._attributes(cells, n)
            if isinstance(values, Refusal):
                return values
            attributes = self._json(values) if values else None
        tags = None
        if self.tags is not None and self.tags < n:
            found = _split_tags(str(cells[self.tags]))
            tags = json.dumps(found, ensure_ascii=False) if found else None
        digest = self.hmac.copy()
        digest.update(email.encode())
        if self.entropy_at == len(self.entropy):
            self.entropy = os.urandom(10 * UUIDS_PER_READ).hex()
            self.entropy_at = 0
        random = self.entropy[self.entropy_at : self.entropy_at + 20]
        self.entropy_at += 20
        return Contact(seq, email, name, attributes, tags, digest.hexdigest(), _uuid7(random))

    def _left(self, cells: list[Any], n: int) -> Refusal | None:
        if self.status is not None and self.status < n:
            word = str(cells[self.status]).strip().lower()
            if word not in _ACTIVE_WORDS:
                if word in _LEFT_WORDS:
                    return Refusal(
                        f"marked “{word}” in the file: an import never makes them active",
                        "skipped",
                    )
                return Refusal(f"unknown status “{word[:40]}”", "rejected")
        for i in self.optouts:
            if i < n and str(cells[i]).strip():
                return Refusal(
                    f"opted out according to the column “{self.columns[i]}”: "
                    "an import never makes them active",
                    "skipped",
                )
        return None

    def _json(self, values: dict[str, Any]) -> str:
        """json.dumps, four times faster for the usual case of text values whose keys
        (checked by the audience's attribute name rule: no quote, no backslash) need no
        escaping."""
        if self.json_attributes is None and all(type(v) is str for v in values.values()):
            return "{" + ",".join(f'"{k}":{_quote(v)}' for k, v in values.items()) + "}"
        return json.dumps(values, ensure_ascii=False)

    def _name(self, cells: list[Any], n: int) -> str | None:
        if not self.has_name:
            return None
        if self.name is not None and self.name < n and str(cells[self.name]).strip():
            return " ".join(str(cells[self.name]).split())
        parts = [str(cells[i]).strip() for i in (self.first, self.last) if i is not None and i < n]
        return " ".join(p for p in parts if p) or None

    def _attributes(self, cells: list[Any], n: int) -> dict[str, Any] | Refusal:
        """The row's attributes, checked by the audience's one rule (names, count, scalar
        values, their size); the names of attribute columns were checked with the mapping."""
        values: dict[str, Any] = {}
        try:
            if self.json_attributes is not None and self.json_attributes < n:
                text = str(cells[self.json_attributes]).strip()
                if text:
                    try:
                        loaded = json.loads(text)
                    except ValueError:
                        loaded = None
                    if not isinstance(loaded, dict):
                        return Refusal(
                            "the attributes column does not hold a JSON object", "rejected"
                        )
                    # A null says the file has no value: there is nothing to store.
                    values.update((k, v) for k, v in loaded.items() if v is not None)
                    for key, value in list(values.items()):
                        kind = self.declared.get(key)
                        if kind is not None:
                            values[key] = self._typed(kind, value, key)
            for i, key in self.attributes:
                if i < n:
                    value = cells[i]
                    if type(value) is str:
                        value = value.strip()
                        if len(value) > MAX_TEXT:
                            check_attribute_value(key, value)
                    elif value is not None:
                        check_attribute_value(key, value)
                    if value != "" and value is not None:
                        kind = self.kinds.get(i)
                        if kind is None or (kind == attribute_types.TEXT and type(value) is str):
                            values[key] = value
                        else:
                            values[key] = self._typed(kind, value, i)
            if self.json_attributes is not None and values:
                values = clean_attributes(values)
        except AudienceError as error:
            return Refusal(str(error), "rejected")
        return values

    def _typed(self, kind: str, value: Any, where: int | str) -> Any:
        """The value in its type's stored form; AttributeValueError naming the column
        (or the key of the JSON column) and why, which refuses the row."""
        try:
            return attribute_types.convert(kind, value)
        except attribute_types.AttributeValueError as error:
            label = (
                _("column “%(column)s”") % {"column": self.columns[where][:70]}
                if isinstance(where, int)
                else _("attribute “%(key)s”") % {"key": where}
            )
            raise attribute_types.AttributeValueError(
                _("%(where)s is a %(kind)s: %(reason)s")
                % {"where": label, "kind": attribute_types.KIND_LABELS[kind], "reason": error}
            ) from None


def _uuid7(r: str) -> str:
    """A time-ordered random UUID (version 7: milliseconds, then 74 random bits taken
    from the 20 random hex digits `r`) as 32 hex digits. Time order keeps the unique
    index on uuid appending at its end instead of touching a random page per contact;
    the random bits keep it unguessable."""
    ms = time.time_ns() // 1_000_000
    return f"{ms:012x}7{r[:3]}{'89ab'[int(r[3], 16) & 3]}{r[4:19]}"


def _split_tags(text: str) -> list[str]:
    """'a, b' or Mailchimp's '"a","b"': distinct tags, sorted."""
    tags = {t.strip().strip('"').strip() for t in text.split(",")}
    return sorted(t[:100] for t in tags if t)
