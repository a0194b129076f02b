"""Tables as CSV and XLSX downloads, safe to open in a spreadsheet.

A table is a list of ``Column`` (machine-readable name, kind of value, width) and rows of Python values.

- CSV: UTF-8 with a BOM (Excel then reads Cyrillic right); comma-separated, or semicolon-separated with
  decimal commas (``?sep=semicolon``: what Excel with Russian regional settings opens in columns on a
  double click). Streamed row by row.
- XLSX (XlsxWriter, ``constant_memory``: each row goes to a temporary file as it is written, so memory
  stays flat however many rows): the header row frozen, column widths, integers as numbers, durations
  as durations (``[h]:mm:ss``), times as dates in ``TIME_ZONE``. Written to a temporary file and
  streamed from it.

Formula injection: a spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (also after
leading spaces, or behind a tab or carriage return) as a formula — a caller id of
``=HYPERLINK("http://x","y")`` would become a link. Every text cell of both formats goes through
``neutralise``: CSV text gets a leading apostrophe; XLSX text is written as a string cell (never a
formula) with Excel's quote prefix, so it also stays text when someone edits it. Plain numbers keep
their sign (``+74951234567``, ``-12``): they are data, not formulas.
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import IO, Any, Literal

import xlsxwriter
from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.utils import timezone

BOM = "\ufeff"
Kind = Literal["text", "int", "number", "seconds", "datetime", "date", "percent"]

_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
_FORMULA_START = ("=", "+", "-", "@")
# Characters a spreadsheet may skip before it looks for a formula sign.
_LEADING = " \t\r\n\x0b\x0c\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u3000"


def is_dangerous(text: str) -> bool:
    """Would a spreadsheet read this text as a formula (or a command)?"""
    if not text or _PLAIN_NUMBER.fullmatch(text):
        return False
    if text[0] in "\t\r\n":
        return True
    return text.lstrip(_LEADING)[:1] in _FORMULA_START


def neutralise(value: Any) -> str:
    """A text cell for CSV: a leading apostrophe on text a spreadsheet would run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if is_dangerous(text) else text


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind = "text"
    width: int = 12  # characters (XLSX)
    digits: int = 1  # decimals of a "number" / "percent" in CSV


@dataclass(frozen=True)
class Dialect:
    delimiter: str = ","
    decimal: str = "."


COMMA = Dialect()
SEMICOLON = Dialect(delimiter=";", decimal=",")


def dialect_of(request: HttpRequest) -> Dialect:
    return SEMICOLON if request.GET.get("sep", "").lower() in ("semicolon", ";") else COMMA


def _local(value: datetime) -> datetime:
    return timezone.localtime(value) if timezone.is_aware(value) else value


def percent_of(share: float, digits: int = 1) -> Decimal:
    """A share as a percentage rounded half up (2/7 -> 28.6, 1/6 -> 16.7, 0.0125 -> 1.3): the one rounding of
    the reports page, its chart and the CSV. From the float's shortest repr, so 0.0125 is 1.25 before rounding
    (not 1.2499999…), and never truncated."""
    return (Decimal(repr(float(share))) * 100).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def csv_cell(column: Column, value: Any, dialect: Dialect) -> str:
    if value is None or value == "":
        return ""
    if column.kind == "text":
        return neutralise(value)
    if column.kind in ("int", "seconds") and isinstance(value, int):
        return str(value)
    if column.kind in ("number", "seconds"):
        return f"{float(value):.{column.digits}f}".replace(".", dialect.decimal)
    if column.kind == "percent":
        return str(percent_of(value, column.digits)).replace(".", dialect.decimal)
    if column.kind == "datetime" and isinstance(value, datetime):
        return _local(value).isoformat()
    if isinstance(value, date | datetime):
        return value.isoformat()
    return neutralise(value)


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(
    columns: Sequence[Column], rows: Iterable[Sequence[Any]], dialect: Dialect = COMMA
) -> Iterator[str]:
    """The CSV text line by line, the BOM first, then the header."""
    writer = csv.writer(_Echo(), delimiter=dialect.delimiter, lineterminator="\r\n")
    yield BOM + writer.writerow([c.name for c in columns])
    for row in rows:
        yield writer.writerow([csv_cell(c, v, dialect) for c, v in zip(columns, row, strict=True)])


def csv_response(
    columns: Sequence[Column], rows: Iterable[Sequence[Any]], *, filename: str, dialect: Dialect = COMMA
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        csv_lines(columns, rows, dialect), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_NUMBER_FORMATS: dict[str, str] = {
    "int": "0",
    "number": "0.0",
    "seconds": "[h]:mm:ss",
    "datetime": "yyyy-mm-dd hh:mm:ss",
    "date": "yyyy-mm-dd",
    "percent": "0.0%",
}


def write_xlsx(
    target: IO[bytes], columns: Sequence[Column], rows: Iterable[Sequence[Any]], *, sheet: str = "data"
) -> int:
    """Write one sheet to ``target`` (a binary file); the number of data rows."""
    workbook = xlsxwriter.Workbook(
        target, {"constant_memory": True, "tmpdir": tempfile.gettempdir(), "strings_to_formulas": False}
    )
    worksheet = workbook.add_worksheet(sheet[:31])
    header = workbook.add_format({"bold": True, "bottom": 1})
    quoted = workbook.add_format({"quote_prefix": True})
    formats = {kind: workbook.add_format({"num_format": fmt}) for kind, fmt in _NUMBER_FORMATS.items()}
    for index, column in enumerate(columns):
        worksheet.set_column(index, index, column.width)
    worksheet.freeze_panes(1, 0)
    for index, column in enumerate(columns):
        worksheet.write_string(0, index, column.name, header)
    count = 0
    for count, row in enumerate(rows, start=1):
        for index, (column, value) in enumerate(zip(columns, row, strict=True)):
            _write_cell(worksheet, count, index, column, value, formats, quoted)
    workbook.close()
    return count


def _write_cell(
    worksheet: Any, row: int, col: int, column: Column, value: Any, formats: dict[str, Any], quoted: Any
) -> None:
    if value is None or value == "":
        return
    kind = column.kind
    if kind in ("int", "number", "percent") and isinstance(value, int | float):
        worksheet.write_number(row, col, value, formats[kind])
    elif kind == "seconds" and isinstance(value, int | float):
        worksheet.write_datetime(row, col, timedelta(seconds=value), formats[kind])
    elif kind == "datetime" and isinstance(value, datetime):
        worksheet.write_datetime(row, col, _local(value).replace(tzinfo=None), formats[kind])
    elif kind == "date" and isinstance(value, date):
        worksheet.write_datetime(row, col, datetime.combine(value, datetime.min.time()), formats[kind])
    else:
        text = str(value)
        worksheet.write_string(row, col, text, quoted if is_dangerous(text) else None)


def xlsx_response(
    columns: Sequence[Column], rows: Iterable[Sequence[Any]], *, filename: str, sheet: str = "data"
) -> FileResponse:
    """The workbook written to a temporary file (deleted when the response is closed), then streamed."""
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
    write_xlsx(handle, columns, rows, sheet=sheet)
    handle.seek(0)
    return FileResponse(handle, as_attachment=True, filename=filename, content_type=XLSX_TYPE)
