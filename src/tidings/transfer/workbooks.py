"""Reading XLSX and XLS workbooks row by row, within limits a hostile file cannot pass.

An XLSX is a zip of XML parts: a 254 KB file can unpack to 100 MB (a zip bomb), and a
whole-workbook reader (openpyxl, even read-only) keeps the table of shared strings in
memory whole. So the workbook is read here, streamed, under `SheetLimits`:

1. The central directory's sizes are added up before anything is inflated: a workbook
   that says it unpacks past `bytes` is refused at once.
2. Each part is inflated by us from its raw bytes, counting the bytes actually inflated
   against the same budget and against the size the directory states for it: a part
   that inflates past its stated size is refused at that byte (headers can lie), and its
   CRC must match.
3. The shared strings are read one by one under `strings` and `string_chars`; the sheets
   are parsed row by row (lxml's iterparse, entities never resolved, elements released
   as they are read), every cell position a row
   spans counted against `cells` (so a lone cell at column XFD counts 16,384).

XLS (xlrd) is not compressed: the file size is checked against `bytes`, and the shared
strings and each sheet's cells against the same limits before its rows are read.

Any limit passed raises FileRejected with a message saying which and what to do.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _
from lxml import etree
from lxml.etree import _Element as Element

from tidings.transfer.errors import FileRejected

INFLATE_CHUNK = 256 * 1024
LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
LOCAL_MAGIC = b"PK\x03\x04"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
FORGED = "The workbook is damaged or forged: one of its parts does not have the size it states."
SAVE_AS_CSV = "Save it as CSV (or split it) and upload it again."


@dataclass(frozen=True)
class SheetLimits:
    """How much a workbook may unpack to and hold (settings TRANSFER_SHEET_MAX_*)."""

    bytes: int
    cells: int
    strings: int
    string_chars: int

    @classmethod
    def from_settings(cls) -> SheetLimits:
        return cls(
            bytes=settings.TRANSFER_SHEET_MAX_BYTES,
            cells=settings.TRANSFER_SHEET_MAX_CELLS,
            strings=settings.TRANSFER_SHEET_MAX_STRINGS,
            string_chars=settings.TRANSFER_SHEET_MAX_STRING_CHARS,
        )


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.0f} MB" if n >= 1024**2 else f"{n:,} bytes"


class _Budget:
    """What the reading of one workbook has used so far, against its limits."""

    def __init__(self, limits: SheetLimits) -> None:
        self.limits = limits
        self.inflated = 0
        self.cells = 0

    def add_bytes(self, n: int) -> None:
        self.inflated += n
        if self.inflated > self.limits.bytes:
            raise FileRejected(
                _(
                    "The workbook unpacks to more than %(mb)s, far more than "
                    "its size on disk. %(SAVE_AS_CSV)s"
                )
                % {"mb": _mb(self.limits.bytes), "SAVE_AS_CSV": SAVE_AS_CSV}
            )

    def add_cells(self, n: int) -> None:
        self.cells += n
        if self.cells > self.limits.cells:
            raise FileRejected(
                _("The workbook has more than %(cells)s cells. %(SAVE_AS_CSV)s")
                % {
                    "cells": number_format(self.limits.cells, force_grouping=True),
                    "SAVE_AS_CSV": SAVE_AS_CSV,
                }
            )


# XLSX --------------------------------------------------------------------------------


def _local(tag: str) -> str:
    """A tag without its namespace (transitional and strict OOXML name them differently)."""
    return tag.rsplit("}", 1)[-1]


class _Archive:
    def __init__(self, handle: IO[bytes], budget: _Budget) -> None:
        self.handle = handle
        self.budget = budget
        self.zip = zipfile.ZipFile(handle)
        self.members = {info.filename: info for info in self.zip.infolist()}
        declared = sum(info.file_size for info in self.members.values())
        if declared > budget.limits.bytes:
            budget.add_bytes(declared)  # refused before anything is inflated

    def has(self, name: str) -> bool:
        return name in self.members

    def chunks(self, name: str) -> Iterator[bytes]:
        """The part inflated from its raw bytes, counted against the budget."""
        info = self.members.get(name)
        if info is None:
            raise FileRejected(
                _("The workbook is damaged: its part %(name)s is missing.") % {"name": name}
            )
        if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, 8):
            raise FileRejected(_("The workbook is encrypted or compressed in an unknown way."))
        self.handle.seek(info.header_offset)
        header = self.handle.read(LOCAL_HEADER.size)
        if len(header) != LOCAL_HEADER.size or header[:4] != LOCAL_MAGIC:
            raise FileRejected(_("The workbook is damaged: a part's header is missing."))
        fields = LOCAL_HEADER.unpack(header)
        self.handle.seek(fields[-2] + fields[-1], 1)  # the part's name and extra field
        left = info.compress_size
        inflater = zlib.decompressobj(-15) if info.compress_type == 8 else None
        size = crc = 0
        pending = b""
        while True:
            if not pending:
                if left <= 0:
                    break
                pending = self.handle.read(min(INFLATE_CHUNK, left))
                if not pending:
                    break
                left -= len(pending)
            if inflater is None:
                data, pending = pending, b""
            else:
                # Bounded output per call: a bomb never inflates more than a chunk at once.
                data = inflater.decompress(pending, INFLATE_CHUNK)
                pending = inflater.unconsumed_tail
                if inflater.eof:
                    pending = b""
            size += len(data)
            self.budget.add_bytes(len(data))
            if size > info.file_size:
                raise FileRejected(FORGED)
            crc = zlib.crc32(data, crc)
            if data:
                yield data
            if inflater is not None and inflater.eof:
                break
        if size != info.file_size or crc != info.CRC:
            raise FileRejected(FORGED)

    def elements(self, name: str, tags: set[str]) -> Iterator[tuple[str, Element]]:
        """(event, element) for each finished element with one of these (local) tags, in
        document order. The caller releases it (`_release`) once read: memory stays flat."""
        return iter(
            etree.iterparse(
                _PartStream(self.chunks(name)),
                events=("end",),
                tag=[f"{{*}}{tag}" for tag in tags],
                resolve_entities=False,
                no_network=True,
                load_dtd=False,
            )
        )


class _PartStream:
    """A part's inflated chunks as the file object lxml reads from."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pending = b""
        self.first = True

    def read(self, size: int = -1) -> bytes:
        while not self.pending:
            data = next(self.chunks, b"")
            if not data:
                return b""
            if self.first and (b"<!DOCTYPE" in data or b"<!ENTITY" in data):
                # Office never writes a DTD; one is only there to expand entities.
                raise FileRejected(_("The workbook is damaged: it declares XML entities."))
            self.first = False
            self.pending = data
        size = len(self.pending) if size is None or size < 0 else size
        data, self.pending = self.pending[:size], self.pending[size:]
        return data


def _release(elem: Element) -> None:
    """Drop an element read, and the siblings before it, from the tree being built."""
    elem.clear(keep_tail=True)
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def _text(elem: Element) -> str:
    """The text of a shared or inline string: its runs, without phonetic guides."""
    parts: list[str] = []
    for child in elem:
        tag = _local(child.tag)
        if tag == "t":
            parts.append(child.text or "")
        elif tag == "r":
            parts.extend(t.text or "" for t in child if _local(t.tag) == "t")
    return "".join(parts)


def _shared_strings(archive: _Archive, name: str | None, limits: SheetLimits) -> list[str]:
    strings: list[str] = []
    if name is None or not archive.has(name):
        return strings
    chars = 0
    for _event, elem in archive.elements(name, {"si"}):
        text = _text(elem)
        strings.append(text)
        chars += len(text)
        if len(strings) > limits.strings or chars > limits.string_chars:
            raise FileRejected(
                _(
                    "The workbook holds more than %(strings)s different texts or more "
                    "than %(string_chars)s characters of text. %(SAVE_AS_CSV)s"
                )
                % {
                    "strings": number_format(limits.strings, force_grouping=True),
                    "string_chars": number_format(limits.string_chars, force_grouping=True),
                    "SAVE_AS_CSV": SAVE_AS_CSV,
                }
            )
        _release(elem)
    return strings


def _date_styles(archive: _Archive, name: str | None) -> tuple[set[int], set[int]]:
    """The indexes of the cell styles that show a date, and those that show a duration."""
    from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format

    if name is None or not archive.has(name):
        return set(), set()
    formats: dict[int, str] = dict(BUILTIN_FORMATS)
    dates: set[int] = set()
    durations: set[int] = set()
    index = 0
    for _event, elem in archive.elements(name, {"numFmt", "xf"}):
        tag = _local(elem.tag)
        parent = elem.getparent()
        if tag == "numFmt":
            formats[int(elem.get("numFmtId", "0"))] = elem.get("formatCode", "")
        elif tag == "xf" and parent is not None and _local(parent.tag) == "cellXfs":
            code = formats.get(int(elem.get("numFmtId", "0")))
            if is_timedelta_format(code):
                durations.add(index)
            elif is_date_format(code):
                dates.add(index)
            index += 1
    return dates, durations


def _part(base: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    parts: list[str] = base.split("/")[:-1]
    for piece in target.split("/"):
        if piece == "..":
            if parts:
                parts.pop()
        elif piece not in ("", "."):
            parts.append(piece)
    return "/".join(parts)


def _column(ref: str) -> int:
    """0 for "A1", 27 for "AB7"; -1 when the reference has no letters."""
    n = 0
    for ch in ref:
        if "A" <= ch <= "Z":
            n = n * 26 + ord(ch) - 64
        elif "a" <= ch <= "z":
            n = n * 26 + ord(ch) - 96
        else:
            break
    return n - 1


def _number(raw: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        return float(raw)


class _Xlsx:
    def __init__(self, archive: _Archive, limits: SheetLimits) -> None:
        from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900

        self.archive = archive
        workbook = "xl/workbook.xml"
        targets: dict[str, tuple[str, str]] = {}
        rels = "xl/_rels/workbook.xml.rels"
        if archive.has(rels):
            for _event, elem in archive.elements(rels, {"Relationship"}):
                kind = elem.get("Type", "").rsplit("/", 1)[-1]
                targets[elem.get("Id", "")] = (kind, _part(workbook, elem.get("Target", "")))
        self.sheets: list[tuple[str, str]] = []
        self.epoch = CALENDAR_WINDOWS_1900
        for _event, elem in archive.elements(workbook, {"sheet", "workbookPr"}):
            if _local(elem.tag) == "workbookPr":
                if elem.get("date1904", "").lower() in ("1", "true"):
                    self.epoch = CALENDAR_MAC_1904
                continue
            kind, target = targets.get(elem.get(f"{{{REL_NS}}}id", ""), ("", ""))
            if kind == "worksheet" and target:
                self.sheets.append((elem.get("name", ""), target))
        by_kind = {kind: target for kind, target in targets.values()}
        strings = by_kind.get("sharedStrings", "xl/sharedStrings.xml")
        self.strings = _shared_strings(archive, strings, limits)
        self.dates, self.durations = _date_styles(archive, by_kind.get("styles"))

    def rows(self, part: str) -> Iterator[tuple[int, list[Any]]]:
        number = 0
        for _event, row in self.archive.elements(part, {"row"}):
            number = int(row.get("r") or number + 1)
            values: list[Any] = []
            for cell in row:
                if _local(cell.tag) != "c":
                    continue
                col = _column(cell.get("r", ""))
                col = len(values) if col < 0 else col
                if col >= len(values):
                    self.archive.budget.add_cells(col + 1 - len(values))
                    values.extend([None] * (col + 1 - len(values)))
                values[col] = self._value(cell)
            _release(row)
            yield number, values

    def _value(self, cell: Element) -> Any:
        from openpyxl.utils.datetime import from_excel

        kind = cell.get("t", "n")
        if kind == "inlineStr":
            inline = next((c for c in cell if _local(c.tag) == "is"), None)
            return _text(inline) if inline is not None else None
        raw = next((c.text for c in cell if _local(c.tag) == "v"), None)
        if raw is None:
            return None
        if kind == "s":
            try:
                return self.strings[int(raw)]
            except (ValueError, IndexError):
                raise FileRejected(
                    _("The workbook is damaged: a cell names a text it does not hold.")
                ) from None
        if kind == "b":
            return raw.strip() in ("1", "true")
        if kind in ("str", "e", "d"):
            return raw
        value = _number(raw)
        style = int(cell.get("s", "0"))
        if style in self.dates or style in self.durations:
            try:
                return from_excel(value, self.epoch, timedelta=style in self.durations)
            except (ValueError, OverflowError):
                return value
        return value


def xlsx_sheets(
    path: Path, limits: SheetLimits
) -> Iterator[tuple[str, Iterator[tuple[int, list[Any]]]]]:
    """(title, rows) of each sheet in order, each row (its number, its values)."""
    with open(path, "rb") as handle:
        archive = _Archive(handle, _Budget(limits))
        book = _Xlsx(archive, limits)
        if not book.sheets:
            raise FileRejected(_("The workbook has no sheet."))
        for title, part in book.sheets:
            yield title, book.rows(part)


# XLS ---------------------------------------------------------------------------------


def xls_sheets(
    path: Path, limits: SheetLimits
) -> Iterator[tuple[str, Iterator[tuple[int, list[Any]]]]]:
    import xlrd

    budget = _Budget(limits)
    budget.add_bytes(path.stat().st_size)  # not compressed: the file is what it holds
    book = xlrd.open_workbook(str(path), on_demand=True)
    try:
        strings = book._sharedstrings
        if len(strings) > limits.strings or sum(map(len, strings)) > limits.string_chars:
            raise FileRejected(
                _(
                    "The workbook holds more than %(strings)s different texts or more "
                    "than %(string_chars)s characters of text. %(SAVE_AS_CSV)s"
                )
                % {
                    "strings": number_format(limits.strings, force_grouping=True),
                    "string_chars": number_format(limits.string_chars, force_grouping=True),
                    "SAVE_AS_CSV": SAVE_AS_CSV,
                }
            )
        for index in range(book.nsheets):
            sheet = book.sheet_by_index(index)
            budget.add_cells(sheet.nrows * sheet.ncols)
            yield sheet.name, _xls_rows(book, sheet)
            book.unload_sheet(index)
    finally:
        book.release_resources()


def _xls_rows(book: Any, sheet: Any) -> Iterator[tuple[int, list[Any]]]:
    import xlrd

    for r in range(sheet.nrows):
        row = []
        for cell in sheet.row(r):
            if cell.ctype == xlrd.XL_CELL_DATE:
                try:
                    row.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
                except (ValueError, OverflowError, xlrd.xldate.XLDateError):
                    row.append(cell.value)
            elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                row.append(bool(cell.value))
            elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
                row.append(None)
            else:
                row.append(cell.value)
        yield r + 1, row
