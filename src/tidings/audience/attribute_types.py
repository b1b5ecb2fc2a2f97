"""Typed attributes: an account declares an attribute name as text, number, date or yes/no.

The values stay in the contact's JSON `attributes`, in their typed JSON form: a number
as a JSON number, a date as ISO text (2025-01-31, which sorts as it reads), yes/no as a
boolean. So segments compare numbers as numbers and dates as dates on PostgreSQL and
SQLite alike (audience.lookups). An attribute that was never declared is text, as every
attribute was before types existed.

`convert` is the one rule that turns what people write ("42", "3,5", "1 234,50",
"31/01/2025", "oui") into the typed value, or says why it cannot: the import, the
contact page, the API and the segment builder all use it. `guess` proposes a type from
a file's first values.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tidings.accounts.models import Account
from tidings.audience.errors import AudienceError
from tidings.audience.models import ContactAttribute

TEXT, NUMBER, DATE, BOOLEAN = "text", "number", "date", "boolean"
KINDS = ContactAttribute.Kind.values
KIND_CHOICES = ContactAttribute.Kind.choices

# The operators of segment rules that fit each type (audience.segments). An attribute
# never declared keeps every operator it always had.
OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    TEXT: ("eq", "neq", "contains", "in", "exists"),
    NUMBER: ("eq", "neq", "gt", "lt", "in", "exists"),
    DATE: ("eq", "neq", "before", "after", "exists"),
    BOOLEAN: ("eq", "neq", "exists"),
}

# Yes and no as people write them in English, French, German, Spanish, Italian, Dutch.
TRUE_WORDS = frozenset({"true", "yes", "y", "oui", "ja", "si", "sí", "vrai", "wahr", "waar"})
FALSE_WORDS = frozenset({"false", "no", "n", "non", "nein", "nee", "faux", "falsch", "onwaar"})

_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
# Digits in groups of three, with one grouping mark (a space, a no-break space, an
# apostrophe, a dot or a comma), then perhaps decimals after the other mark.
_GROUPED_NUMBER = re.compile(
    r"(?P<sign>[+-]?)(?P<head>\d{1,3})(?P<groups>(?:(?P<sep>[ \u00a0\u202f'.,])\d{3})"
    r"(?:(?P=sep)\d{3})*)(?:(?P<mark>[.,])(?P<decimals>\d+))?"
)
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]00:00(?::00(?:\.0+)?)?)?")
_DAY_FIRST = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
# A number longer than this is an identifier (a phone, an account number), not a quantity.
GUESS_MAX_DIGITS = 15


class AttributeValueError(AudienceError):
    """A value that does not fit its attribute's type; the message says why."""


def parse_number(text: str) -> int | float | None:
    """A number as people write it: 42, -3.5, 3,5 (French, German), 1 234,50,
    1.234.567, 1,234.50. A lone "," or "." before digits is the decimal mark. None when
    the text is no number."""
    t = text.strip()
    if _PLAIN_NUMBER.fullmatch(t):
        whole = "," not in t and "." not in t
        return int(t) if whole else float(t.replace(",", "."))
    match = _GROUPED_NUMBER.fullmatch(t)
    if match is None or match["sep"] == match["mark"]:
        return None
    digits = match["head"] + re.sub(r"\D", "", match["groups"])
    if match["decimals"] is None:
        return int(match["sign"] + digits)
    return float(f"{match['sign']}{digits}.{match['decimals']}")


def parse_date(text: str) -> str | None:
    """A date as ISO text from 2025-01-31, 31/01/2025, 31.01.2025 or 31-01-2025 (day
    first, as in Europe), or None."""
    t = text.strip()
    iso = _ISO_DATE.fullmatch(t)
    if iso is not None:
        year, month, day = (int(g) for g in iso.groups())
    else:
        european = _DAY_FIRST.fullmatch(t)
        if european is None:
            return None
        day, month, year = (int(g) for g in european.groups())
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def parse_boolean(text: str) -> bool | None:
    word = text.strip().lower()
    if word in TRUE_WORDS or word == "1":
        return True
    if word in FALSE_WORDS or word == "0":
        return False
    return None


def convert(kind: str, value: Any) -> Any:
    """The stored form of `value` for an attribute of type `kind`; AttributeValueError
    saying why when it does not fit. Values already typed (a workbook's number or date
    cell, a JSON number from the API) are taken as they are when they fit."""
    if kind == TEXT:
        if isinstance(value, bool):
            return _("yes") if value else _("no")
        return value if isinstance(value, str) else str(value)
    if kind == NUMBER:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise AttributeValueError(_("it is not a finite number"))
            return value
        number = parse_number(value) if isinstance(value, str) else None
        if number is None or (isinstance(number, float) and not math.isfinite(number)):
            raise AttributeValueError(_("“%(value)s” is not a number") % {"value": _shown(value)})
        return number
    if kind == DATE:
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, dt.date):
            return value.isoformat()
        day = parse_date(value) if isinstance(value, str) else None
        if day is None:
            raise AttributeValueError(
                _("“%(value)s” is not a date (31/01/2025 or 2025-01-31)") % {"value": _shown(value)}
            )
        return day
    if kind == BOOLEAN:
        if isinstance(value, bool):
            return value
        answer = parse_boolean(str(value)) if isinstance(value, str | int) else None
        if answer is None:
            raise AttributeValueError(
                _("“%(value)s” is not yes or no (yes/no, oui/non, ja/nein, true/false)")
                % {"value": _shown(value)}
            )
        return answer
    raise AttributeValueError(_("“%(kind)s” is not an attribute type") % {"kind": _shown(kind)})


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def guess(values: Iterable[Any]) -> str:
    """The type a column's first values suggest: yes/no, date or number when every
    non-empty value is one, else text. A number with a leading zero (a phone, a postal
    code) or too many digits stays text: its zero or its digits must not be lost."""
    seen = [v for v in values if not (isinstance(v, str) and not v.strip())]
    if not seen:
        return TEXT
    texts = [v.strip() if isinstance(v, str) else v for v in seen]
    if all(isinstance(v, bool) or (isinstance(v, str) and v.lower() in TRUE_WORDS | FALSE_WORDS)
           for v in texts):  # fmt: skip
        return BOOLEAN
    if all(isinstance(v, str) and parse_date(v) is not None for v in texts):
        return DATE
    if all(_looks_like_quantity(v) for v in texts):
        return NUMBER
    return TEXT


def _looks_like_quantity(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if not isinstance(value, str) or parse_number(value) is None:
        return False
    digits = re.sub(r"\D", "", value)
    unsigned = value.lstrip("+-")
    leading_zero = len(unsigned) > 1 and unsigned[0] == "0" and unsigned[1].isdigit()
    return not leading_zero and len(digits) <= GUESS_MAX_DIGITS


# --- the account's declarations -----------------------------------------------------


def types_of(account: Account | int) -> dict[str, str]:
    """Attribute name -> type, for the attributes the account declared."""
    account_id = account if isinstance(account, int) else account.pk
    return dict(ContactAttribute.objects.filter(account_id=account_id).values_list("key", "kind"))


def kind_of(account: Account | int, key: str) -> str | None:
    """The declared type of one attribute, or None (never declared: text)."""
    account_id = account if isinstance(account, int) else account.pk
    return (
        ContactAttribute.objects.filter(account_id=account_id, key=key)
        .values_list("kind", flat=True)
        .first()
    )


def typed_attributes(account: Account | int, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """`attributes` with the values of declared attributes in their typed form;
    AttributeValueError naming the attribute when one does not fit."""
    declared = types_of(account) if attributes else {}
    result = dict(attributes)
    for key, value in attributes.items():
        kind = declared.get(key)
        if kind is None or (kind == TEXT and isinstance(value, str)):
            continue
        try:
            result[key] = convert(kind, value)
        except AttributeValueError as error:
            raise AttributeValueError(
                _("The attribute “%(key)s” is a %(kind)s: %(reason)s.")
                % {"key": key, "kind": KIND_LABELS[kind], "reason": error}
            ) from None
    return result


KIND_LABELS = {
    TEXT: gettext_lazy("text"),
    NUMBER: gettext_lazy("number"),
    DATE: gettext_lazy("date"),
    BOOLEAN: gettext_lazy("yes/no"),
}


# Attribute names from what people type or write in a header ------------------------------

_LIGATURES = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l",
     "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "TH", "\u0131": "i"}
)  # fmt: skip


def plain_letters(text: str) -> str:
    """`text` with its accents taken off (é → e, Ä → A, ß → ss); other scripts stay."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def attribute_key(header: str) -> str:
    """A readable attribute name for a header: "Âge" → "age", "Date d'inscription" →
    "date_d_inscription" (letters of other scripts are kept as they are)."""
    plain = plain_letters(header).strip().lower()
    key = re.sub(r"[^\w.-]+", "_", plain).strip("_.-")
    key = re.sub(r"_{2,}", "_", key)
    return (key or "column")[:63]


def declared_key(account: Account | int, key: str) -> str:
    """The declared attribute a typed name means: itself when declared, else the declared
    one it is written for ("Âge" for "age", as the import names the column "Âge"), else
    itself."""
    if kind_of(account, key) is not None:
        return key
    plain = attribute_key(key)
    return plain if plain != key and kind_of(account, plain) is not None else key
