"""Card numbers never touch Tidings (P10). Payment happens on the gateway's hosted page,
so no card number should ever arrive; if one does anyway (a gateway's payload, a
customer typing theirs into the billing address), it is masked before anything is
stored, or the input is refused.

A card number here: 13 to 19 digits, possibly grouped by single spaces or dashes, that
pass the Luhn check and begin with a card network's prefix (Visa 4; Mastercard 51-55,
2221-2720; American Express 34, 37; Discover 6011, 644-649, 65; JCB 35; Diners 30, 36,
38; UnionPay 62). The same rule drives the scan in the tests.
"""

from __future__ import annotations

import re

# A run of digits, single spaces or dashes between them, not inside a longer number, the
# decimals of one (a duration logged as "0.22412489499947696s" is no card) nor a word: a
# gateway's random identifier such as "cs_test_2eb01c3455803393019accb2" holds digit runs
# that pass the check by chance (seen once in a full run).
_CANDIDATE = re.compile(r"(?<![\w-])(?<!\d\.)\d(?:[ -]?\d){12,18}(?!\w)")
MASK = "[card number removed]"


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def network_prefix(digits: str) -> bool:
    two, four = int(digits[:2]), int(digits[:4])
    return (
        digits[0] == "4"
        or 51 <= two <= 55
        or 2221 <= four <= 2720
        or two in (34, 37, 35, 30, 36, 38, 62, 65)
        or four == 6011
        or 644 <= int(digits[:3]) <= 649
    )


def is_card_number(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and network_prefix(digits) and luhn_valid(digits)


def find_card_numbers(text: str) -> list[str]:
    """The card numbers in `text`, as digits."""
    found = []
    for match in _CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if is_card_number(digits):
            found.append(digits)
    return found


def redact(text: str) -> str:
    """`text` with every card number replaced by MASK."""

    def mask(match: re.Match[str]) -> str:
        digits = re.sub(r"[ -]", "", match.group())
        return MASK if is_card_number(digits) else match.group()

    return _CANDIDATE.sub(mask, text)
