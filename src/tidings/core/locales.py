"""Languages and time zones people can choose, and rendering in someone's language.

The time-zone list is the tz database's zone.tab (one name per place people live) plus
UTC: the backward-compatible aliases ("US/Eastern", "GB", "Asia/Calcutta") and the
POSIX-style names ("EST5EDT") that zoneinfo still accepts are not offered.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from django.conf import settings
from django.utils import translation

LEGACY_PREFIXES = ("US/", "Canada/", "Brazil/", "Chile/", "Mexico/", "Etc/", "SystemV/")


def language_codes() -> list[str]:
    return [code for code, _ in settings.LANGUAGES]


def supported_language(code: str | None) -> str:
    """`code` if Tidings speaks it, else the default language."""
    return code if code in language_codes() else settings.LANGUAGE_CODE


@contextmanager
def language(code: str | None) -> Iterator[None]:
    """Render (a mail, a page) in `code`, or in the default language if it is unknown."""
    with translation.override(supported_language(code)):
        yield


def _zone_tab() -> set[str] | None:
    for root in zoneinfo.TZPATH:
        tab = Path(root) / "zone.tab"
        if tab.is_file():
            lines = tab.read_text(encoding="utf-8").splitlines()
            return {ln.split("\t")[2] for ln in lines if ln and not ln.startswith("#")}
    return None


@cache
def time_zones() -> list[str]:
    """The zones people may choose, sorted, UTC first."""
    available = zoneinfo.available_timezones()
    canonical = _zone_tab()
    if canonical is not None:
        names = available & canonical
    else:  # no zone.tab on this system: drop the names that are aliases by their form
        names = {n for n in available if "/" in n and not n.startswith(LEGACY_PREFIXES)}
    return ["UTC", *sorted(names - {"UTC"})]


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in time_zones()]


def is_time_zone(name: str) -> bool:
    return name in time_zones()
