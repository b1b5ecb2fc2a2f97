"""A pseudo-locale built at run time from the French catalog's msgids, and a check that
a rendered page or mail shows no text that did not go through it.

Every msgid of src/tidings/locale/fr/LC_MESSAGES/django.po (and every message of
Django's own French catalog: dates, form errors, the admin) becomes "⟦…⟧" around the
English with its vowels accented, placeholders and markup untouched. Rendered in that
language, text that was never marked for translation is the only plain English left.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import lxml.html
import polib
from django.conf import settings
from django.utils import translation
from django.utils.translation import trans_real

OPEN, CLOSE = "⟦", "⟧"
ACCENTS = str.maketrans("aeiouyAEIOUY", "àéîõüÿÀÉÎÕÜŸ")
KEEP = re.compile(r"(%\(\w+\)[sd]|%[sd%]|\{\w*\}|<[^>]*>|&\w+;|https?://\S+)")
MARKED = re.compile(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}")
WORD = re.compile(r"[^\W\d_]{2,}")
PO = Path(settings.LOCALE_PATHS[0]) / "fr" / "LC_MESSAGES" / "django.po"
# Strings wrapped for translation but not in the French catalog yet (new in a branch;
# the catalog is made after the merge): marked all the same, so a string that was never
# wrapped still shows. One file per branch (`pending-NAME.po`, as helpers are asked to
# write them) or the merged `pending.po`.
PENDING = sorted(Path(__file__).parent.glob("pending*.po"))
VISIBLE_ATTRIBUTES = ("placeholder", "title", "alt", "aria-label")
# Not prose: code, identifiers (cookie names, API syntax) and form contents.
HIDDEN_ELEMENTS = {"script", "style", "textarea", "template", "noscript", "code", "kbd", "samp"}


def pseudo(text: str) -> str:
    if not text.strip():
        return text
    if re.fullmatch(r"[\w -]+(,[\w -]+){1,2}", text) and len(text) < 40:
        # A yesno filter's "yes,no,maybe": each word is shown alone.
        return ",".join(pseudo(part) for part in text.split(","))
    parts = KEEP.split(text)
    out = "".join(p if KEEP.fullmatch(p) else p.translate(ACCENTS) for p in parts)
    return f"{OPEN}{out}{CLOSE}"


class _PseudoCatalog(dict[Any, str]):
    def plural(self, msgid: str, num: int) -> str:
        return self[(msgid, 0 if num == 1 else 1)]


def _catalog(french: Any) -> _PseudoCatalog:
    catalog = _PseudoCatalog()
    for key in list(french._catalog.keys()):
        if isinstance(key, tuple):
            catalog[key] = pseudo(key[0].split("\x04")[-1])
        elif key:
            catalog[key] = pseudo(key.split("\x04")[-1])
    pending = [entry for path in PENDING for entry in polib.pofile(str(path))]
    for entry in [*polib.pofile(str(PO)), *pending]:
        key = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if entry.msgid_plural:
            catalog[(key, 0)] = pseudo(entry.msgid)
            catalog[(key, 1)] = pseudo(entry.msgid_plural)
        else:
            catalog[key] = pseudo(entry.msgid)
    return catalog


@contextmanager
def pseudo_locale() -> Iterator[None]:
    """French, with every catalog entry replaced by its pseudo-translation."""
    french = trans_real.translation("fr")
    saved = french._catalog
    french._catalog = _catalog(french)
    try:
        with translation.override("fr"):
            yield
    finally:
        french._catalog = saved


def unmarked(text: str, allowed: Iterable[str], *, keep_lines: bool = False) -> str:
    """What is left of `text` once the marked parts and the allowed data are taken out:
    words (two letters or more) that no translation went through (one line for each
    stretch between marked parts when `keep_lines`)."""
    while True:
        stripped = MARKED.sub("\n" if keep_lines else " ", text)
        if stripped == text:
            break
        text = stripped
    # Whole URLs first: an allowed value inside one (a host, a token) taken out first
    # would leave a bare "http" behind (seen once in a full run). Paths after, since an
    # allowed value may hold a slash (a time zone: "Africa/Addis_Ababa").
    text = re.sub(r"https?://\S+", " ", text)
    pattern = _allowed_pattern(frozenset(allowed))
    if pattern is not None:
        text = pattern.sub(" ", text)
    text = re.sub(r"\S+@\S+|/[\w./?=&%-]*", " ", text)
    if keep_lines:
        return "\n".join(" ".join(WORD.findall(line)) for line in text.split("\n"))
    return " ".join(WORD.findall(text))


@lru_cache(maxsize=4)
def _allowed_pattern(allowed: frozenset[str]) -> re.Pattern[str] | None:
    # Two-letter values only as codes (a billing country "BE"): "on" or "to" as data
    # would hide untranslated words.
    values = sorted(
        (v for v in allowed if len(v) > 2 or (len(v) == 2 and v.isupper())), key=len, reverse=True
    )
    if not values:
        return None
    return re.compile("(?<!\\w)(?:" + "|".join(re.escape(v) for v in values) + ")(?!\\w)")


def visible_texts(html: str) -> list[str]:
    """A page's visible text in document order (one string: a message may span inline
    elements), then each human-read attribute."""
    if not html.strip():
        return []
    root = lxml.html.fromstring(html)
    nodes: list[str] = []
    attributes: list[str] = []
    for el in root.iter():
        if isinstance(el.tag, str) and _untranslated_content(el):
            # translate="no": content already in its language (the policy's own text)
            # or code; its text is not checked, what follows it is.
            parent = el.getparent()
            if el.tail and (parent is None or not _untranslated_content(parent)):
                nodes.append(el.tail)
            continue
        if isinstance(el.tag, str):
            if el.tag not in HIDDEN_ELEMENTS and el.text:
                nodes.append(el.text)
            attributes += [el.get(a) for a in VISIBLE_ATTRIBUTES if el.get(a)]
            if el.tag == "input" and el.get("type") in ("submit", "button") and el.get("value"):
                attributes.append(el.get("value"))
        if el.tail:
            nodes.append(el.tail)
    return [" ".join(nodes), *attributes]


# Parts of a page left out of the check, by id (none: the staff console's side menu is
# translated too).
UNCHECKED_IDS: set[str] = set()


def _untranslated_content(el: Any) -> bool:
    return any(
        a.get("translate") == "no" or a.get("id") in UNCHECKED_IDS
        for a in [el, *el.iterancestors()]
    )


def unmarked_in_context(text: str, allowed: Iterable[str]) -> list[str]:
    """Each untranslated stretch of `text`, as words."""
    left = unmarked(text, allowed, keep_lines=True)
    return [line for line in (ln.strip() for ln in left.split("\n")) if line]
