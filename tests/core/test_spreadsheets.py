"""The one rule for every CSV, XLSX and XLS Tidings writes: formulas are neutralised,
full-width forms too, and every CSV field is quoted."""

from __future__ import annotations

import pytest

from tidings.core.spreadsheets import CsvSink, neutralise


@pytest.mark.parametrize(
    "start", ["=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20"]
)
def test_a_value_a_spreadsheet_would_run_is_made_text(start):
    assert neutralise(f"{start}1+1") == f"'{start}1+1"


def test_neutralising_twice_changes_nothing_more():
    assert neutralise(neutralise("\uff1d1+1")) == "'\uff1d1+1"


def test_every_csv_field_is_quoted_so_a_semicolon_locale_cannot_split_a_formula_out(tmp_path):
    path = tmp_path / "out.csv"
    sink = CsvSink(path, ["email", "=note"])
    sink.write([["ada@example.org", "a;=1+1"], ["grace@example.org", 42]])
    sink.close()
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    assert lines == [
        '"email","\'=note"',
        '"ada@example.org","a;=1+1"',
        '"grace@example.org","42"',
    ]
