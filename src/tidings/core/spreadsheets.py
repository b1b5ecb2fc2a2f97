"""Spreadsheet sinks: rows written to CSV, XLSX or XLS with constant memory, for the
contact export, the account archive and a contact's own download.

CSV with the csv module (with a BOM, for Excel), XLSX with XlsxWriter in constant-memory
mode, XLS with xlwt, which starts a new sheet every 65,535 rows (the format's limit) and
flushes each batch of rows into its compact binary form. Each sheet repeats the header.

Cells that a spreadsheet would run as a formula are written as plain text (`neutralise`,
the one rule for every CSV, XLSX and XLS Tidings writes): a value that starts with "=",
"+", "-", "@", a tab or a carriage return, or their full-width forms (U+FF1D, U+FF0B, U+FF0D,
U+FF20, which some spreadsheets read as the ASCII ones) may be taken as a formula by
Excel or LibreOffice (CSV injection): it gets a leading single quote, which makes it
text in every format. Numbers are written as numbers and need nothing. The sinks
neutralise the header row themselves (its names may come from customers' data); the
callers neutralise their values, which the hot paths do only where text can be.

Every CSV quotes every field (`csv_writer`): a spreadsheet opened in a locale whose
separator is ";" would otherwise split an unquoted `a;=1+1` into a cell `=1+1`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.utils.functional import Promise

CELL_MAX = 32_767  # the longest text a cell holds in XLSX and XLS
XLSX_SHEET_ROWS = 1_048_575  # data rows per sheet, after the header row
XLS_SHEET_ROWS = 65_535
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_writer(handle: Any) -> Any:
    """The csv writer every CSV of Tidings is written with: every field quoted."""
    return csv.writer(handle, quoting=csv.QUOTE_ALL)


def neutralise(value: Any) -> Any:
    if isinstance(value, Promise):  # a translated label: the text in the active language
        value = str(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_row(values: Iterable[Any]) -> list[Any]:
    return [neutralise(v) for v in values]


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
        self.writer.writerow(neutralise_row(header))

    def write(self, rows: list[list[Any]]) -> None:
        self.writer.writerows(rows)

    def close(self) -> None:
        self.handle.close()


class _SheetSink:
    """Rows across as many sheets as the format's row limit needs, header on each."""

    sheet_rows = XLSX_SHEET_ROWS

    def __init__(self, header: list[str], title: str, sheet_rows: int | None) -> None:
        self.header = neutralise_row(header)
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
