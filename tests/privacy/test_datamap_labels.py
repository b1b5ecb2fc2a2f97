"""My Account names the data map's tables and columns in the reader's language: each name
must be in privacy/labels.py, which puts it in the translation catalog."""

from django.utils import translation

from tidings.core import datamap
from tidings.privacy.labels import LABELS


def _shown_names() -> set[str]:
    names = {e.verbose_name for e in datamap.entries()}
    names |= {a.verbose_name for a in datamap.application_data()}
    for entry in datamap.entries():
        for column in entry.columns:
            field = entry.model._meta.get_field(column)
            names.add(str(getattr(field, "verbose_name", column)))
    return names


def test_every_table_and_column_name_of_the_data_map_is_in_the_catalog():
    with translation.override("en"):  # the names as the catalog's msgids have them
        missing = _shown_names() - set(LABELS)
    assert not missing, f"add to src/tidings/privacy/labels.py: {sorted(missing)}"


def test_the_names_are_translated():
    with translation.override("fr"):
        assert translation.gettext("Audit events") != "Audit events"
