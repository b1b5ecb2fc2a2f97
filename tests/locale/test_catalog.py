"""The French catalog is complete and its compiled .mo is the .po, as committed.

The runtime reads only django.mo; a .po edited without compiling again (or a .mo
compiled from another .po) would show stale French. polib (test-only dependency)
compiles the .po here and the two catalogs are compared entry by entry.
"""

from __future__ import annotations

import re
from pathlib import Path

import polib
from django.conf import settings
from django.utils import translation

CATALOG = Path(settings.LOCALE_PATHS[0]) / "fr" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w*)\}")


def _entries(catalog: polib._BaseFile) -> dict[tuple[str, str], object]:
    found: dict[tuple[str, str], object] = {}
    for e in catalog:
        if e.obsolete or "fuzzy" in e.flags:
            continue
        value = tuple(sorted(e.msgstr_plural.items())) if e.msgid_plural else e.msgstr
        found[(e.msgctxt or "", e.msgid)] = value
    return found


def test_the_compiled_catalog_is_the_po_file(tmp_path):
    compiled = tmp_path / "django.mo"
    polib.pofile(str(CATALOG / "django.po")).save_as_mofile(str(compiled))
    mo = polib.mofile(str(CATALOG / "django.mo"))
    expected = {k: v for k, v in _entries(polib.mofile(str(compiled))).items() if k != ("", "")}
    actual = {k: v for k, v in _entries(mo).items() if k != ("", "")}
    missing = sorted(k for k in expected if k not in actual)
    stale = sorted(k for k in expected if k in actual and actual[k] != expected[k])
    extra = sorted(k for k in actual if k not in expected)
    assert not missing, f"django.mo lacks {len(missing)} entries: compile again ({missing[:3]})"
    assert not stale, f"django.mo differs from django.po: compile again ({stale[:3]})"
    assert not extra, f"django.mo has entries the .po no longer has ({extra[:3]})"


def test_every_message_has_a_french_translation_with_the_same_placeholders():
    po = polib.pofile(str(CATALOG / "django.po"))
    untranslated = [e.msgid for e in po if not e.obsolete and not e.translated()]
    fuzzy = [e.msgid for e in po if "fuzzy" in e.flags]
    assert not untranslated, f"{len(untranslated)} without French: {untranslated[:5]}"
    assert not fuzzy, f"{len(fuzzy)} marked fuzzy: {fuzzy[:5]}"
    for e in po:
        if e.obsolete:
            continue
        wanted = set(PLACEHOLDER.findall(e.msgid)) | set(PLACEHOLDER.findall(e.msgid_plural))
        strings = e.msgstr_plural.values() if e.msgid_plural else [e.msgstr]
        for s in strings:
            # The same values, none lost and none made up (msgfmt refuses either).
            assert set(PLACEHOLDER.findall(s)) == wanted, f"{e.msgid!r}: placeholders differ"


def test_the_runtime_reads_the_committed_catalog():
    with translation.override("fr"):
        assert translation.gettext("Log in") == "Se connecter"
