"""Streaming CSV and XLSX exports whose cells can not run as spreadsheet formulas.

Rows come as typed values: Decimal amounts, dates, aware datetimes, whole numbers, text.
The CSV writes them as text (amounts with two decimals, dates as YYYY-MM-DD, times in the
platform's time zone as YYYY-MM-DD HH:MM) and neutralises text that starts like a formula;
the XLSX stores amounts as numeric cells shown with two decimals and dates and times as
date cells, so a spreadsheet sums and sorts them, and text as text (never a formula).
"""
import csv
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal

from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header
AMOUNT_FORMAT = "0.00"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"


def neutralise(value) -> str:
    """A text cell that starts like a formula gets a leading apostrophe (OWASP's advice),
    so `=HYPERLINK(...)` in a name is shown, not run. Amounts are written by `csv_text`,
    and ours are never negative."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def local_minute(value: datetime) -> datetime:
    """An aware time as the platform's wall clock, to the minute, without a zone (a
    spreadsheet's date cells have none)."""
    return timezone.localtime(value).replace(tzinfo=None, second=0, microsecond=0)


def csv_text(value) -> str:
    """One CSV cell: see the module's docstring."""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return f"{local_minute(value):%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return f"{value:%Y-%m-%d}"
    return neutralise(value)


class _Echo:
    def write(self, value):
        return value


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence]):
    writer = csv.writer(_Echo())
    # Read now, in the request's language: the rows stream after the view has returned.
    header = [str(name) for name in header]

    def stream():
        yield "\ufeff"  # BOM: Excel then reads the file as UTF-8
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([csv_text(v) for v in row])

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _xlsx_cells(sheet):
    """A function turning one value into the XLSX cell for it (see the module)."""
    from openpyxl.cell import WriteOnlyCell

    def typed(value, number_format: str):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = number_format
        return cell

    def cell(value):
        if value is None:
            return None
        if isinstance(value, Decimal):
            return typed(value, AMOUNT_FORMAT)
        if isinstance(value, datetime):
            return typed(local_minute(value), DATETIME_FORMAT)
        if isinstance(value, date):
            return typed(value, DATE_FORMAT)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        # Text stays text: openpyxl would store "=…" as a formula.
        return WriteOnlyCell(sheet, value=neutralise(value))

    return cell


def xlsx_response(filename: str, header: Sequence[str], rows: Iterable[Sequence]):
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Coupon Usage"))
    sheet.append([str(name) for name in header])
    cell = _xlsx_cells(sheet)
    for count, row in enumerate(rows, start=1):
        if count > XLSX_MAX_ROWS:
            break
        sheet.append([cell(v) for v in row])
    handle = tempfile.TemporaryFile()
    workbook.save(handle)
    handle.seek(0)
    return FileResponse(
        handle, as_attachment=True, filename=filename,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
