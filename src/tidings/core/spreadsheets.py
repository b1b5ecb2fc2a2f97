"""Spreadsheet sinks: rows written to CSV, XLSX or XLS with constant memory, for the
contact export, the account archive and a contact's own download.

CSV with the csv module (with a BOM, for Excel), XLSX with XlsxWriter in constant-memory
mode, XLS with xlwt, which starts a new sheet every 65,535 rows (the format's limit) and
flushes each batch of rows into its compact binary form. Each sheet repeats the header.

Formula safety, one rule per format, here and nowhere else:
- XLSX and XLS cells are typed: text is written as a text cell (XlsxWriter with
  `strings_to_formulas` off, xlwt's labels), which no spreadsheet runs as a formula. So
  every value is written exactly as it is: `=1+1` stays the text `=1+1`, a phone number
  `+44 20 7946 0958` stays itself, and no apostrophe shows.
- CSV cells are untyped: a spreadsheet reads a cell that starts a formula as one (CSV
  injection). Every CSV Tidings writes goes through `csv_writer`, which applies OWASP's
  guard (`csv_cell`): a text that starts with "=", "@", a tab or a carriage return, or
  with "+" or "-" when it is not a plain number, or any of their full-width forms
  (U+FF1D, U+FF20, U+FF0B, U+FF0D, which some spreadsheets read as the ASCII ones),
  gets a leading single quote. Nothing else is touched: "-" alone, "-5", "+3.5" and
  "a=b" stay as they are. A phone number written "+44 20 7946 0958" is a formula start
  by OWASP's rule (Excel evaluates it, and shows an error instead of the number), so it
  gets the quote in CSV; in XLSX and XLS it is untouched. `FORMULA_NOTE` says so in the
  READMEs of the files Tidings writes.

Every CSV quotes every field (`csv_writer`): a spreadsheet opened in a locale whose
separator is ";" would otherwise split an unquoted `a;=1+1` into a cell `=1+1`. CSV is
written as UTF-8 with a BOM (Excel reads it as UTF-8), comma-separated.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.utils.functional import Promise

CELL_MAX = 32_767  # the longest text a cell holds in XLSX and XLS
XLSX_SHEET_ROWS = 1_048_575  # data rows per sheet, after the header row
XLS_SHEET_ROWS = 65_535
# OWASP's formula starts, ASCII and full-width. A sign starts a formula unless the text
# is a plain number (or the sign alone).
ALWAYS_FORMULA = frozenset("=@\t\r\uff1d\uff20")
SIGNS = frozenset("+-\uff0b\uff0d")
PLAIN_NUMBER = re.compile(r"[+\-\uff0b\uff0d]?(?:\d+(?:[.,]\d+)?)?")

FORMULA_NOTE = {
    "csv": (
        "CSV: a cell whose text starts a formula (=, @, a tab, a carriage return, or + or - "
        "not followed by a plain number) begins with ' so that no spreadsheet runs it "
        "(OWASP's rule against CSV injection); remove that first ' to get the value as we "
        "hold it. Nothing else is changed."
    ),
    "xlsx": "XLSX: every text is a text cell, exactly as we hold it; none is a formula.",
    "xls": "XLS: every text is a text cell, exactly as we hold it; none is a formula.",
}


def is_formula_start(text: str) -> bool:
    first = text[:1]
    if first in ALWAYS_FORMULA:
        return True
    return first in SIGNS and PLAIN_NUMBER.fullmatch(text) is None


def csv_cell(value: Any) -> Any:
    """The value as a CSV cell: OWASP's guard for a text that starts a formula."""
    if isinstance(value, Promise):  # a translated label: the text in the active language
        value = str(value)
    if isinstance(value, str) and is_formula_start(value):
        return "'" + value
    return value


class _GuardedWriter:
    """csv.writer with every cell through `csv_cell`."""

    def __init__(self, handle: Any) -> None:
        self._writer = csv.writer(handle, quoting=csv.QUOTE_ALL)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        writerow = self._writer.writerow
        for row in rows:
            writerow([csv_cell(v) for v in row])


def csv_writer(handle: Any) -> _GuardedWriter:
    """The csv writer every CSV of Tidings is written with: every field quoted, every
    cell through the formula guard."""
    return _GuardedWriter(handle)


def _clip(value: Any) -> Any:
    if isinstance(value, Promise):
        value = str(value)
    if isinstance(value, str) and len(value) > CELL_MAX:
        return value[: CELL_MAX - 1] + "…"
    return value


class CsvSink:
    def __init__(
        self, path: Path, header: list[str], title: str = "", sheet_rows: int | None = None
    ) -> None:
        # With a BOM, so that Excel reads the file as UTF-8; LibreOffice does either way.
        self.handle = open(path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
        self.writer = csv_writer(self.handle)
        self.writer.writerow(header)

    def write(self, rows: list[list[Any]]) -> None:
        self.writer.writerows(rows)

    def close(self) -> None:
        self.handle.close()


class _SheetSink:
    """Rows across as many sheets as the format's row limit needs, header on each."""

    sheet_rows = XLSX_SHEET_ROWS

    def __init__(self, header: list[str], title: str, sheet_rows: int | None) -> None:
        self.header = list(header)
        # Sheet names hold at most 31 characters; room is left for " 123".
        self.title = title[:26]
        if sheet_rows is not None:
            self.sheet_rows = min(sheet_rows, self.sheet_rows)
        self.row = self.sheet_rows + 1  # start a sheet on the first row
        self.sheets = 0

    def write(self, rows: list[list[Any]]) -> None:
        write_row = self._write_row
        for values in rows:
            if self.row > self.sheet_rows:
                self.sheets += 1
                self._new_sheet(self.title if self.sheets == 1 else f"{self.title} {self.sheets}")
                self._write_row(0, self.header)
                self.row = 1
            write_row(self.row, [_clip(v) for v in values])
            self.row += 1
        self._flush()

    def _new_sheet(self, title: str) -> None:
        raise NotImplementedError

    _write_row: Callable[[int, list[Any]], None]

    def _flush(self) -> None:
        pass


class XlsxSink(_SheetSink):
    def __init__(
        self, path: Path, header: list[str], title: str = "Contacts", sheet_rows: int | None = None
    ) -> None:
        import xlsxwriter

        super().__init__(header, title, sheet_rows)
        # Constant memory: each row goes to disk once the next begins. Strings are never
        # read as formulas, numbers or links: a cell holds exactly the contact's value.
        self.book = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                "tmpdir": str(path.parent),
            },
        )
        self.sheet: Any = None

    def _new_sheet(self, title: str) -> None:
        self.sheet = self.book.add_worksheet(title)

    def _write_row(self, row: int, values: list[Any]) -> None:
        self.sheet.write_row(row, 0, values)

    def close(self) -> None:
        if self.sheet is None:
            self._new_sheet(self.title)
            self._write_row(0, self.header)
        self.book.close()


class XlsSink(_SheetSink):
    sheet_rows = XLS_SHEET_ROWS

    def __init__(
        self, path: Path, header: list[str], title: str = "Contacts", sheet_rows: int | None = None
    ) -> None:
        import xlwt

        super().__init__(header, title, sheet_rows)
        self.path = path
        self.book = xlwt.Workbook(encoding="utf-8")
        self.sheet: Any = None

    def _new_sheet(self, title: str) -> None:
        self.sheet = self.book.add_sheet(title)

    def _write_row(self, row: int, values: list[Any]) -> None:
        write = self.sheet.write
        for col, value in enumerate(values):
            if value != "":
                write(row, col, value)

    def _flush(self) -> None:
        # xlwt keeps the whole workbook until it saves; flushing turns the rows written
        # so far into their compact binary records instead of Python objects per cell.
        self.sheet.flush_row_data()

    def close(self) -> None:
        if self.sheet is None:
            self._new_sheet(self.title)
            self._write_row(0, self.header)
        self.book.save(str(self.path))


SINKS: dict[str, type[CsvSink | XlsxSink | XlsSink]] = {
    "csv": CsvSink,
    "xlsx": XlsxSink,
    "xls": XlsSink,
}
