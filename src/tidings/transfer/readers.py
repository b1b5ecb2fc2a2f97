"""Reading uploaded contact files: which format, which encoding and delimiter, which
columns, and then the records one by one with a position a re-run can restart from.

CSV is read with the standard library (any delimiter, found by `csv.Sniffer`), XLSX and
XLS by `workbooks` (streamed, within limits on what a workbook may unpack to and hold).
A workbook whose later sheets repeat the first sheet's header is read as one table (that
is how Tidings's own XLS exports split past 65,535 rows).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import charset_normalizer
from django.utils.translation import gettext_lazy as _

from tidings.transfer.errors import FileRejected
from tidings.transfer.workbooks import SheetLimits, xls_sheets, xlsx_sheets

SAMPLE_BYTES = 64 * 1024
PREVIEW_ROWS = 10  # also the rows from which each column's type is guessed
DELIMITERS = ",;\t|"
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
# One field may be large (a JSON attributes column), never a whole file swallowed by
# an unclosed quote: past this the file is reported as broken.
FIELD_LIMIT = 1024 * 1024
csv.field_size_limit(FIELD_LIMIT)


@dataclass
class FileInfo:
    """What the analysis of an upload found."""

    format: str
    encoding: str = ""
    delimiter: str = ""
    has_header: bool = True
    columns: list[str] = field(default_factory=list)
    preview: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class Record:
    """One data row: `seq` counts records from 0 (the checkpoint unit), `line` tells the
    customer where to find it, `cells` are the values as read."""

    seq: int
    line: str
    cells: list[Any]


def sniff_format(path: Path) -> str:
    """csv, xlsx or xls, from the file's first bytes (never from its name)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(XLS_MAGIC):
        return "xls"
    if head.startswith(ZIP_MAGIC):
        return "xlsx"
    return "csv"


def analyse(path: Path) -> FileInfo:
    """Find format, encoding, delimiter, header and a preview, or raise FileRejected."""
    fmt = sniff_format(path)
    if path.stat().st_size == 0:
        raise FileRejected(_("The file is empty."))
    if fmt == "csv":
        info = _analyse_csv(path)
    else:
        info = FileInfo(format=fmt)
        rows = _sheet_rows(path, fmt, has_header=False)
        first = [_first_rows(rows, PREVIEW_ROWS + 1)]
        info.has_header, info.columns, info.preview = _header_and_preview(first[0])
    if not info.columns:
        raise FileRejected(_("The file has no rows."))
    return info


def read_records(path: Path, info: FileInfo, *, skip: int = 0) -> Iterator[Record]:
    """The data records of the file in order, starting after the first `skip`."""
    if info.format == "csv":
        records = _csv_records(path, info)
    else:
        records = _sheet_rows(path, info.format, has_header=info.has_header)
    for record in records:
        if record.seq >= skip:
            yield record


def count_records(path: Path, info: FileInfo) -> int:
    """Read the whole file once: the number of records, or FileRejected with the line of
    the first undecodable byte or broken quote. Run before anything is written, so a
    broken file changes nothing."""
    n = 0
    for n, _record in enumerate(read_records(path, info), start=1):  # noqa: B007
        pass
    return n


# CSV ---------------------------------------------------------------------------------


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 (BOM, or its NUL pattern), or the legacy code
    page charset-normalizer finds, preferring Windows-1252 where it fits as well."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(sample) >= 4 and sample.count(b"\x00") >= len(sample) // 4:
        # UTF-16 without a BOM: ASCII characters leave a NUL on one side of each pair.
        odd_nuls = sample[1::2].count(b"\x00")
        return "utf-16-le" if odd_nuls > sample[0::2].count(b"\x00") else "utf-16-be"
    if b"\x00" in sample:
        raise FileRejected(_("This is not a text file: upload CSV, XLSX or XLS."))
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    # Windows-1252 first: it is what spreadsheets on Western systems save, and on a short
    # sample charset-normalizer often ranks a cousin (cp1250, cp775) equally well, which
    # would turn "Núñez" into "Núńez". Only when it does not fit, the best other guess.
    western = charset_normalizer.from_bytes(sample, cp_isolation=["cp1252"]).best()
    if western is not None and western.chaos < 0.1:
        return "cp1252"
    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        raise FileRejected(
            _("The text encoding of the file could not be recognised: save it as UTF-8 CSV.")
        )
    return str(best.encoding)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _analyse_csv(path: Path) -> FileInfo:
    with open(path, "rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    encoding = detect_encoding(sample)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=False)
    # Sniff on whole lines only: the sample's last line is usually cut.
    lines = text.splitlines()[:50] if len(sample) < SAMPLE_BYTES else text.splitlines()[:-1][:50]
    delimiter = _sniff_delimiter("\n".join(lines))
    info = FileInfo(format="csv", encoding=encoding, delimiter=delimiter)
    reader = csv.reader(io.StringIO("\n".join(lines) + "\n"), delimiter=delimiter)
    try:
        rows = [
            row for _event, row in zip(range(PREVIEW_ROWS + 1), _non_empty(reader), strict=False)
        ]
    except csv.Error as error:
        raise FileRejected(
            _("The file is not a readable CSV file: %(error)s.") % {"error": error}
        ) from None
    info.has_header, info.columns, info.preview = _header_and_preview(rows)
    return info


def _sniff_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # One column (a plain list of addresses), or too few lines to be sure: the
        # candidate found most often on the first line, comma when none is.
        first = text.split("\n", 1)[0]
        counts = {d: first.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _undecodable_line(path: Path, encoding: str) -> int | None:
    """The first line that does not decode (text is decoded in blocks, so the error
    itself does not say). Only for encodings where a line ends with the byte 0x0A."""
    if encoding.startswith("utf-16"):
        return None
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return number
    return None


def _non_empty(rows: Any) -> Iterator[list[str]]:
    for row in rows:
        if any(cell.strip() for cell in row):
            yield row


def _csv_records(path: Path, info: FileInfo) -> Iterator[Record]:
    with open(path, encoding=info.encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=info.delimiter, strict=False)
        seq = 0
        header_seen = not info.has_header
        last_line = 0
        try:
            for row in reader:
                first_line, last_line = last_line + 1, reader.line_num
                if not header_seen:
                    if any(cell.strip() for cell in row):
                        header_seen = True
                    continue
                yield Record(seq, str(first_line), row)
                seq += 1
        except UnicodeDecodeError as error:
            line = _undecodable_line(path, info.encoding) or last_line + 1
            raise FileRejected(
                _(
                    "Line %(line)s of the file is not valid %(encoding)s text "
                    "(%(reason)s): save the file as UTF-8 CSV and upload it again."
                )
                % {"line": line, "encoding": info.encoding, "reason": error.reason}
            ) from None
        except csv.Error as error:
            raise FileRejected(
                _("Line %(last_line___1)s cannot be read as CSV (%(error)s): is a quote left open?")
                % {"last_line___1": last_line + 1, "error": error}
            ) from None


# XLSX and XLS ------------------------------------------------------------------------


def _sheet_rows(path: Path, fmt: str, *, has_header: bool) -> Iterator[Record]:
    """Rows of the first sheet, and of every later sheet that repeats its header in its
    first row, as records. With has_header False: every row of the first sheet."""
    try:
        yield from _sheet_records(path, fmt, has_header=has_header)
    except FileRejected:
        raise
    except Exception as error:
        # openpyxl, xlrd and zipfile raise many kinds of error on a damaged or forged
        # workbook; for the customer they all mean the same thing.
        kind = "XLSX" if fmt == "xlsx" else "XLS"
        raise FileRejected(
            _("The file is not a readable %(kind)s workbook (%(error)s).")
            % {"kind": kind, "error": error}
        ) from None


def _sheet_records(path: Path, fmt: str, *, has_header: bool) -> Iterator[Record]:
    seq = 0
    header: list[Any] | None = None
    limits = SheetLimits.from_settings()
    sheets = xlsx_sheets(path, limits) if fmt == "xlsx" else xls_sheets(path, limits)
    for index, (title, rows) in enumerate(sheets):
        first = True
        for number, row in rows:
            cells = _trim(row)
            if has_header and index > 0 and first:
                if cells != header:
                    return  # another table, not a continuation of the first sheet
                first = False
                continue
            first = False
            if has_header and header is None:
                if any(c != "" for c in cells):
                    header = cells
                continue
            yield Record(seq, f"{title} row {number}" if index else str(number), cells)
            seq += 1
        if not has_header:
            return


def _trim(row: Any) -> list[Any]:
    cells = [_cell(value) for value in row]
    while cells and cells[-1] == "":
        cells.pop()
    return cells


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return value


def _first_rows(records: Iterator[Record], n: int) -> list[list[str]]:
    rows = []
    for record in records:
        if any(str(c).strip() for c in record.cells):
            rows.append([str(c) for c in record.cells])
        if len(rows) >= n:
            break
    return rows


def _header_and_preview(rows: list[list[str]]) -> tuple[bool, list[str], list[list[str]]]:
    """A first row holding an address is data (a bare list of addresses), not a header."""
    if not rows:
        return True, [], []
    first = rows[0]
    has_header = not any("@" in cell and " " not in cell.strip() for cell in first)
    width = max(len(r) for r in rows)
    if has_header:
        # The header defines the table: a longer row is refused when it is imported.
        columns = [c.strip() or f"Column {i + 1}" for i, c in enumerate(first)]
        preview = rows[1 : PREVIEW_ROWS + 1]
    else:
        columns = [f"Column {i + 1}" for i in range(width)]
        preview = rows[:PREVIEW_ROWS]
    return has_header, columns, preview
