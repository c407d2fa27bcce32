"""Usage import: a CSV of usage records (account, day, product, amount) is imported whole
or refused whole, naming every bad line and why."""
import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import IO

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from accounts.models import Product, SubAccount
from billing.models import DailyBill, UsageImport, UsageRecord
from billing.periods import closed_months, days_lock, month_start
from couponplatform.db import IN_CHUNK, bulk_insert, chunks
from couponplatform.exceptions import ApplicationError
from couponplatform.money import AmountFormatError, has_at_most_two_places, parse_amount
from couponplatform.times import moment_text

# Biggest usage amount a record may carry: what Decimal(18, 2) holds.
MAX_USAGE_AMOUNT = Decimal("9999999999999999.99")
USAGE_COLUMNS = ("account_id", "date", "product_code", "amount")


class UsageImportError(ApplicationError):
    """The file was refused whole; `errors` lists (line number, why) for every bad row."""

    SHOWN = 20

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = sorted(errors)
        shown = " ".join(gettext("Line %(line)s: %(why)s") % {"line": line, "why": why}
                         for line, why in self.errors[: self.SHOWN])
        more = len(self.errors) - self.SHOWN
        rows = len({line for line, _ in self.errors})
        message = (
            ngettext("Nothing was imported: %(n)s bad row.", "Nothing was imported: %(n)s bad "
                     "rows.", rows) % {"n": f"{rows:,}"} + f" {shown}"
            + (" " + ngettext("… and %(n)s more.", "… and %(n)s more.", more) % {"n": more}
               if more > 0 else "")
        )
        super().__init__(message, extra={"errors": self.errors})


def usage_date_for(value: str) -> date:
    """The platform-time-zone day of a usage timestamp or date.

    Accepts 2025-03-31, or an ISO time such as 2025-03-31T23:59:59+08:00 or …Z; a time
    without an offset is read in the platform's time zone.
    """
    text = value.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if timezone.is_naive(moment):
        return moment.date()
    return timezone.localtime(moment).date()


def _amount_parse(text: str) -> Decimal:
    # Commas between groups of three are thousands separators here, as billing exports
    # write them (couponplatform.money.parse_amount); "1_000", "١٢" and "1e3" are refused.
    try:
        amount = parse_amount(text, thousands=True)
    except AmountFormatError:
        raise ValueError(_amount_refusal(text)) from None
    if amount < 0:
        raise ValueError(gettext("amount %(text)s is negative") % {"text": text})
    if not has_at_most_two_places(amount):
        raise ValueError(gettext("amount %(text)s has more than 2 decimal places")
                         % {"text": text})
    if amount > MAX_USAGE_AMOUNT:
        raise ValueError(gettext("amount %(text)s is too large") % {"text": text})
    return amount


def _amount_refusal(text: str) -> str:
    """Why a usage amount that is not plain digits is refused: Python's reading of it only
    picks the words (too large in any notation, or a number in the wrong notation)."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        value = None
    if value is None or not value.is_finite():
        return gettext("amount '%(text)s' is not a number") % {"text": text}
    if abs(value) > MAX_USAGE_AMOUNT:
        return gettext("amount %(text)s is too large") % {"text": text}
    return gettext("amount '%(text)s' is not a plain number: write the digits 0–9 with at "
                   "most one decimal point (and commas only between thousands)") % {"text": text}


@dataclass
class _UsageRow:
    line: int
    account_id: str
    usage_date: date
    product_code: str
    amount: Decimal
    currency: str


def _usage_parse(text: str) -> tuple[list[_UsageRow], list[tuple[int, str]]]:
    # newline="": the csv module's own line handling, so a bare "\r" ends a line instead
    # of raising "new-line character seen in unquoted field" (a 500 on the upload page).
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return [], [(1, gettext("the file is not CSV: %(error)s") % {"error": exc})]
    if not header:
        return [], [(1, gettext("the file is empty; the first line must name the columns"))]
    columns = [name.strip().lower() for name in header]
    missing = [name for name in USAGE_COLUMNS if name not in columns]
    if missing:
        return [], [(1, ngettext("missing column: %(names)s (expected %(all)s[, currency])",
                                 "missing columns: %(names)s (expected %(all)s[, currency])",
                                 len(missing))
                        % {"names": ", ".join(missing), "all": ", ".join(USAGE_COLUMNS)})]
    index = {name: columns.index(name) for name in (*USAGE_COLUMNS, "currency")
             if name in columns}
    rows: list[_UsageRow] = []
    errors: list[tuple[int, str]] = []
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field past the csv module's size limit
            errors.append((reader.line_num, gettext("not CSV: %(error)s") % {"error": exc}))
            break
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(columns):
            errors.append((line, ngettext("expected %(n)s column, found %(found)s",
                                          "expected %(n)s columns, found %(found)s",
                                          len(columns))
                           % {"n": len(columns), "found": len(record)}))
            continue

        def cell(name: str, record=record) -> str:
            return record[index[name]].strip() if name in index else ""

        problems = []
        account_id, product_code = cell("account_id"), cell("product_code")
        if not account_id:
            problems.append(gettext("account_id is empty"))
        if not product_code:
            problems.append(gettext("product_code is empty"))
        usage_date = amount = None
        try:
            usage_date = usage_date_for(cell("date"))
        except ValueError:
            problems.append(gettext("date '%(value)s' is not YYYY-MM-DD or an ISO time")
                            % {"value": cell("date")})
        try:
            amount = _amount_parse(cell("amount"))
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            errors.extend((line, why) for why in problems)
            continue
        rows.append(_UsageRow(
            line=line, account_id=account_id, usage_date=usage_date,
            product_code=product_code, amount=amount, currency=cell("currency").upper(),
        ))
    if not rows and not errors:
        errors.append((1, "the file has no usage rows"))
    return rows, errors


def _lookup(model, field: str, values: set[str], columns: tuple[str, ...]) -> dict:
    found: dict = {}
    values_list = sorted(values)
    for chunk in chunks(values_list, IN_CHUNK):
        for row in model.objects.filter(**{f"{field}__in": chunk}).values_list(*columns):
            found[row[0]] = row[1:]
    return found


def usage_import(
    *,
    file: IO,
    file_name: str = "",
    acting_user=None,
    source: str = UsageImport.Source.CSV,
) -> UsageImport:
    """Import a usage CSV whole, or refuse it whole naming every bad line and why.

    Columns: account_id, date, product_code, amount, and optionally currency (which must be
    the account's). A row may not land on a day whose daily bill is made or whose month is
    closed: bills are final once made.
    """
    raw = file.read()
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageImportError([(1, "the file is not UTF-8 text")]) from None
    rows, errors = _usage_parse(text)
    if not rows:
        raise UsageImportError(errors)
    accounts = _lookup(
        SubAccount, "account_id", {r.account_id for r in rows}, ("account_id", "pk", "currency"),
    )
    products = _lookup(Product, "code", {r.product_code for r in rows}, ("code", "pk"))
    good: list[tuple[_UsageRow, int, int, str]] = []
    for row in rows:
        problems = []
        account = accounts.get(row.account_id)
        if account is None:
            problems.append(gettext("unknown account ID '%(id)s'") % {"id": row.account_id})
        if row.product_code not in products:
            problems.append(gettext("unknown product code '%(code)s'")
                            % {"code": row.product_code})
        if account is not None and row.currency and row.currency != account[1]:
            problems.append(
                gettext("currency %(currency)s is not the account's currency %(expected)s")
                % {"currency": row.currency, "expected": account[1]},
            )
        if problems:
            errors.extend((row.line, why) for why in problems)
        else:
            good.append((row, account[0], products[row.product_code][0], account[1]))
    digest = hashlib.sha256(data).hexdigest()
    days = {row.usage_date for row in rows}
    with transaction.atomic():
        # Checked under the day locks: a bill run or a month close can not slip in between.
        days_lock(days)
        closed = closed_months(month_start(day) for day in days)
        billed = _billed_pairs({account_pk for _, account_pk, _, _ in good}, days)
        for row, account_pk, _, _ in good:
            if month_start(row.usage_date) in closed:
                errors.append(
                    (row.line, gettext("%(month)s is closed; its bills are final")
                     % {"month": f"{row.usage_date:%Y-%m}"}),
                )
            elif (account_pk, row.usage_date) in billed:
                errors.append((
                    row.line,
                    gettext("the daily bill of %(id)s for %(day)s is already made; its usage "
                            "can no longer change")
                    % {"id": row.account_id, "day": f"{row.usage_date:%Y-%m-%d}"},
                ))
        previous = UsageImport.objects.filter(digest=digest).first()
        if previous is not None:
            errors.append((
                1, gettext("this file was imported already (import #%(id)s on %(when)s)")
                % {"id": previous.pk, "when": moment_text(previous.created_at)},
            ))
        if errors:
            raise UsageImportError(errors)
        batch = UsageImport(
            source=source, file_name=file_name[:255], digest=digest, record_count=len(good),
            imported_by=acting_user if getattr(acting_user, "pk", None) else None,
        )
        try:
            with transaction.atomic():
                batch.save()
        except IntegrityError:
            raise UsageImportError([(1, "this file was imported already")]) from None
        bulk_insert(
            UsageRecord,
            ["batch", "sub_account", "usage_date", "product", "amount", "currency"],
            [
                (batch.pk, account_pk, row.usage_date, product_pk, row.amount, currency)
                for row, account_pk, product_pk, currency in good
            ],
        )
    return batch


def _billed_pairs(account_pks: set[int], days: set[date]) -> set[tuple[int, date]]:
    pairs: set[tuple[int, date]] = set()
    for chunk in chunks(sorted(account_pks), IN_CHUNK):
        pairs.update(
            DailyBill.objects.filter(sub_account_id__in=chunk, date__in=days)
            .values_list("sub_account_id", "date")
        )
    return pairs
