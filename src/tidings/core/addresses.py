"""Email addresses: the one normalisation, built on email-validator.

An address is checked for its syntax only (never a DNS query) and written in one form:
the local part as given (NFC), the domain in its IDNA (ASCII) form. Tidings compares
addresses case-insensitively, so the form it stores (contacts, users) is that one in
lower case; the pipeline sends to the address with its local part as given.

Why an address is refused is said in Tidings's own, translated words: email-validator
explains in English only, and its explanation would sit inside a French sentence on a
French reader's form. Its messages (it has no error codes) are matched to ours by their
wording; one not known is refused without a reason rather than in English.

The keyed digest of an address (`core.digests.email_digest`) keeps its own trimming and
lower-casing: digests already stored must keep matching.
"""

from __future__ import annotations

import re
import unicodedata

from django.utils.functional import Promise
from django.utils.translation import gettext, ngettext_lazy
from django.utils.translation import gettext_lazy as _
from email_validator import EmailNotValidError, validate_email


class InvalidAddress(ValueError):
    """Not an email address; the message says why."""


def mailbox(raw: str) -> str:
    """The address to send to: local part as given, domain in IDNA form. Raises
    InvalidAddress when `raw` (trimmed) is not an address."""
    text = (raw or "").strip()
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as error:
        raise InvalidAddress(_refusal(text, str(error))) from None
    local, _at, _domain = result.normalized.rpartition("@")
    return f"{local}@{result.ascii_domain or result.domain}"


def normalise_email(raw: str) -> str:
    """The form an address is stored and compared in: `mailbox` in lower case.
    Raises InvalidAddress."""
    return mailbox(raw).lower()


def canonical(raw: str) -> str:
    """The stored form of `raw` when it is an address, else `raw` trimmed and in lower
    case: for looking a login up, and for operator commands that accept local names
    (`admin@localhost`), never refusing."""
    try:
        return normalise_email(raw)
    except InvalidAddress:
        return (raw or "").strip().lower()


def _refusal(text: str, explanation: str) -> str:
    """Why `text` is not an address, in the active language."""
    reason = _reason(explanation)
    if reason is None:
        return _("“%(text)s” is not a valid email address.") % {"text": text[:80]}
    return _("“%(text)s” is not a valid email address: %(error)s") % {
        "text": text[:80],
        "error": reason,
    }


def _reason(explanation: str) -> str | None:
    """Our words for email-validator's `explanation`, None for one we do not know."""
    explanation = explanation.removeprefix("After Unicode normalization: ")
    for pattern, reason in _REASONS:
        found = pattern.search(explanation)
        if found:
            listed, count = found.groupdict().get("characters"), found.groupdict().get("count")
            values = {"characters": _characters(listed or ""), "count": int(count or 0)}
            return str(reason % values)
    return None


# email-validator's messages (its version 2: syntax.py, validate_email.py), most specific
# first. Not listed, as Tidings never meets them: DNS checks (never made), an
# internationalised local part refused (it is allowed), the strict length of a local part.
_REASONS: tuple[tuple[re.Pattern[str], Promise], ...] = tuple(
    (re.compile(pattern), reason)
    for pattern, reason in [
        (
            r"display name|angle bracket|anything after the email address",
            _("write the address alone, without a name or angle brackets (“<” and “>”)."),
        ),
        (
            r"full-width|small commercial at",
            _("it has a character that looks like the @ sign but is not one."),
        ),
        (r"must have an @-sign", _("it has no @ sign.")),
        (r"something before the @-sign", _("nothing comes before the @ sign.")),
        (r"something after the @-sign", _("nothing comes after the @ sign.")),
        (r"Quoting the part before", _("the part before the @ sign cannot be in quotes.")),
        (r"after close quote", _("the part before the @ sign has characters after its quotes.")),
        (
            r"bracket",
            _("the part after the @ sign must be a domain name, not an address in brackets."),
        ),
        (
            r"too long after the @-sign \((?P<count>\d+) bytes? too many",
            ngettext_lazy(
                "the part after the @ sign is too long once encoded (%(count)d byte too many).",
                "the part after the @ sign is too long once encoded (%(count)d bytes too many).",
                "count",
            ),
        ),
        (
            r"too long after the @-sign \((?P<count>\d+) characters? too many",
            ngettext_lazy(
                "the part after the @ sign is too long (%(count)d character too many).",
                "the part after the @ sign is too long (%(count)d characters too many).",
                "count",
            ),
        ),
        (
            r"periods cannot be separated by so many characters \((?P<count>\d+)",
            ngettext_lazy(
                "after the @ sign, a name between periods is too long "
                "(%(count)d character too many).",
                "after the @ sign, a name between periods is too long "
                "(%(count)d characters too many).",
                "count",
            ),
        ),
        (
            r"is too long \((?P<count>\d+) characters? too many",
            ngettext_lazy(
                "it is too long (%(count)d character too many).",
                "it is too long (%(count)d characters too many).",
                "count",
            ),
        ),
        (
            r"is too long (?!before).*?(?P<count>\d+) (?:bytes?|characters?) too many",
            ngettext_lazy(
                "it is too long once encoded (%(count)d byte too many).",
                "it is too long once encoded (%(count)d bytes too many).",
                "count",
            ),
        ),
        (
            r"invalid characters (?:in quotes )?before the @-sign: (?P<characters>.+)\.$",
            _("the part before the @ sign has characters an address cannot have: %(characters)s."),
        ),
        (
            r"after the @-sign contains invalid characters"
            r"(?: after Unicode normalization)?: (?P<characters>.+)\.$",
            _(
                "the part after the @ sign has characters a domain name cannot have: "
                "%(characters)s."
            ),
        ),
        (
            r"unsafe characters: (?P<characters>.+)\.$",
            _("it has characters that are unsafe in an address: %(characters)s."),
        ),
        (
            r"IDNA|after the @-sign is invalid|became invalid",
            _("the part after the @ sign is not a valid international domain name."),
        ),
        (
            r"after the @-sign contains invalid characters",
            _("the part after the @ sign has characters a domain name cannot have."),
        ),
        (
            r"invalid characters before the @-sign",
            _("the part before the @ sign has characters an address cannot have."),
        ),
        (r"an invalid character", _("it has a character an address cannot have.")),
        (r"cannot start with a period", _("it cannot start with a period.")),
        (
            r"period immediately before the @-sign",
            _("a period cannot come right before the @ sign."),
        ),
        (r"period immediately after the @-sign", _("a period cannot come right after the @ sign.")),
        (r"hyphen immediately after the @-sign", _("a hyphen cannot come right after the @ sign.")),
        (r"two periods in a row", _("it cannot have two periods in a row.")),
        (r"end with a period", _("it cannot end with a period.")),
        (r"end with a hyphen", _("it cannot end with a hyphen.")),
        (
            r"period and a hyphen next to each other",
            _("a period and a hyphen cannot be next to each other."),
        ),
        (
            r"two letters followed by two dashes",
            _(
                "after the @ sign, a name cannot have two hyphens as its third and fourth "
                "characters (only “xn--” can)."
            ),
        ),
        (
            r"should have a period",
            _(
                "the part after the @ sign has no period "
                "(a domain name has one, as in example.com)."
            ),
        ),
        (
            r"top-level domain",
            _("the part after the @ sign does not end in a valid top-level domain (such as .com)."),
        ),
        (
            r"special-use or reserved",
            _(
                "the part after the @ sign is a special-use or reserved name, "
                "which cannot receive email."
            ),
        ),
    ]
)

# How email-validator lists characters: 'x' (or "'" for a quote) when visible, else the
# character's Unicode name, or its code point when it has none.
_LISTED = re.compile(r"""'(.)'|"(.)"|(U\+[0-9A-F]+|[A-Z][A-Z0-9 -]*[A-Z0-9])""")


def _characters(listed: str) -> str:
    """The characters email-validator listed, without its English names: each visible
    one in quotes, a space in words, the others as their code points."""
    shown = []
    for single, double, name in _LISTED.findall(listed):
        character = single or double
        if character:
            shown.append(gettext("“%(character)s”") % {"character": character})
        elif name == "SPACE":
            shown.append(gettext("a space"))
        else:
            shown.append(_code_point(name))
    return ", ".join(shown)


def _code_point(name: str) -> str:
    if name.startswith("U+"):
        return name
    try:
        return f"U+{ord(unicodedata.lookup(name)):04X}"
    except KeyError:
        return name
