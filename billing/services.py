"""Writes of billing: usage import, daily bills, posting deductions, expiry, voiding and the
monthly close (PRODUCT §6–§7). The ledger check lives in billing/ledger.py.

Locking, in the one order every writer here follows so two of them never deadlock:
coupons (pk order) → daily bills (pk order) → their lines; a posting's coupon lock (all the
account's available coupons) is the per-account lock.
Imports, daily bill runs and the month close also take a per-day advisory lock, so usage
can not land on a day whose bill is being made or whose month is being closed.
"""
import csv
import hashlib
import io
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import IO

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, DecimalField, Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Round
from django.utils import timezone

from billing.allocation import DISCOUNT, Allocation, CouponIn, LineIn, allocate, coupon_applies
from billing.ledger import Discrepancy, ledger_check  # noqa: F401  (re-exported)
from billing.models import (
    ClosedMonth,
    DailyBill,
    DailyBillLine,
    Deduction,
    MonthlyBill,
    MonthlyBillLine,
    MonthlyCouponDeduction,
    UsageImport,
    UsageRecord,
)
from couponplatform.accounts.models import Partner, PartnerMembership, Product, SubAccount
from couponplatform.accounts.selectors import membership_for
from couponplatform.audit.models import AuditLog
from couponplatform.audit.services import audit_record
from couponplatform.db import bulk_insert, is_postgres, update_from_values
from couponplatform.exceptions import (
    ApplicationError,
    InvalidTransitionError,
    PermissionDeniedError,
)
from couponplatform.money import (
    ZERO,
    AmountFormatError,
    fmt,
    has_at_most_two_places,
    parse_amount,
    quantize,
)
from coupons.models import Coupon

logger = logging.getLogger(__name__)

# The coupon status changes billing makes. Other statuses are final.
COUPON_TRANSITIONS: dict[str, set[str]] = {
    Coupon.Status.AVAILABLE: {Coupon.Status.USED_UP, Coupon.Status.EXPIRED, Coupon.Status.VOIDED},
    Coupon.Status.USED_UP: set(),
    Coupon.Status.EXPIRED: set(),
    Coupon.Status.VOIDED: set(),
}

MONEY = DecimalField(max_digits=18, decimal_places=2)
# Namespace of the per-day advisory locks (pg_advisory_xact_lock(namespace, day)).
DAY_LOCK_NAMESPACE = 740_001
# Biggest usage amount a record may carry: what Decimal(18, 2) holds.
MAX_USAGE_AMOUNT = Decimal("9999999999999999.99")
# Accounts handled per transaction by the daily bill run and the month close, so memory
# stays flat however many accounts bill that day.
ACCOUNT_BATCH = 1000
# SQLite refuses more than ~32k parameters in one statement.
IN_CHUNK = 10_000
# Bills (or accounts) per posting task, and so per posting transaction.
POST_BATCH = 500
DEDUCTION_FIELDS = ["coupon", "line", "sub_account", "partner", "bill_date", "amount",
                    "created_at"]


def _fault(point: str) -> None:
    """Crash-point hook: the tests replace it to fail at a named point; does nothing here.

    Points, in order: "locked", "deductions_inserted", "balances_updated", "lines_updated",
    "before_commit".
    """


def _cents(expression) -> Round:
    """SQL money arithmetic that stores whole cents.

    SQLite computes decimals as binary floats, so 1.00 − 0.43 − 0.57 can come out as
    −1e-16 and fail a CHECK; rounding to two places in the same statement keeps every
    stored amount a whole cent. On PostgreSQL's exact NUMERIC it changes nothing.
    """
    return Round(expression, 2, output_field=MONEY)


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _lock_days(days: Iterable[date]) -> None:
    """Take the per-day advisory locks (sorted, so two lockers never deadlock).

    SQLite serialises writers on its own, so there is nothing to take there.
    """
    if not is_postgres():
        return
    with connection.cursor() as cursor:
        for day in sorted(set(days)):
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [DAY_LOCK_NAMESPACE, day.toordinal()],
            )


# ---------------------------------------------------------------------------------------
# Months


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(first: date) -> date:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def month_parse(text: str) -> date:
    """'2025-02' → date(2025, 2, 1), or ApplicationError saying what is expected."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m").date()
    except (AttributeError, ValueError):
        raise ApplicationError(f"'{text}' is not a month; write it as YYYY-MM.") from None


def _closed_months(months: Iterable[date]) -> set[date]:
    months = set(months)
    if not months:
        return set()
    return set(ClosedMonth.objects.filter(month__in=months).values_list("month", flat=True))


# ---------------------------------------------------------------------------------------
# Usage import

USAGE_COLUMNS = ("account_id", "date", "product_code", "amount")


class UsageImportError(ApplicationError):
    """The file was refused whole; `errors` lists (line number, why) for every bad row."""

    SHOWN = 20

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = sorted(errors)
        shown = " ".join(f"Line {line}: {why}" for line, why in self.errors[: self.SHOWN])
        more = len(self.errors) - self.SHOWN
        rows = len({line for line, _ in self.errors})
        message = (
            f"Nothing was imported: {rows} bad row{'s' if rows != 1 else ''}. {shown}"
            + (f" … and {more} more." if more > 0 else "")
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
        raise ValueError(f"amount {text} is negative")
    if not has_at_most_two_places(amount):
        raise ValueError(f"amount {text} has more than 2 decimal places")
    if amount > MAX_USAGE_AMOUNT:
        raise ValueError(f"amount {text} is too large")
    return amount


def _amount_refusal(text: str) -> str:
    """Why a usage amount that is not plain digits is refused: Python's reading of it only
    picks the words (too large in any notation, or a number in the wrong notation)."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        value = None
    if value is None or not value.is_finite():
        return f"amount '{text}' is not a number"
    if abs(value) > MAX_USAGE_AMOUNT:
        return f"amount {text} is too large"
    return (f"amount '{text}' is not a plain number: write the digits 0–9 with at most one "
            "decimal point (and commas only between thousands)")


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
        return [], [(1, f"the file is not CSV: {exc}")]
    if not header:
        return [], [(1, "the file is empty; the first line must name the columns")]
    columns = [name.strip().lower() for name in header]
    missing = [name for name in USAGE_COLUMNS if name not in columns]
    if missing:
        return [], [(1, f"missing column{'s' if len(missing) > 1 else ''}: "
                        f"{', '.join(missing)} (expected {', '.join(USAGE_COLUMNS)}"
                        f"[, currency])")]
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
            errors.append((reader.line_num, f"not CSV: {exc}"))
            break
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(columns):
            errors.append((line, f"expected {len(columns)} columns, found {len(record)}"))
            continue

        def cell(name: str, record=record) -> str:
            return record[index[name]].strip() if name in index else ""

        problems = []
        account_id, product_code = cell("account_id"), cell("product_code")
        if not account_id:
            problems.append("account_id is empty")
        if not product_code:
            problems.append("product_code is empty")
        usage_date = amount = None
        try:
            usage_date = usage_date_for(cell("date"))
        except ValueError:
            problems.append(f"date '{cell('date')}' is not YYYY-MM-DD or an ISO time")
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
    for chunk in _chunks(values_list, IN_CHUNK):
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
            problems.append(f"unknown account ID '{row.account_id}'")
        if row.product_code not in products:
            problems.append(f"unknown product code '{row.product_code}'")
        if account is not None and row.currency and row.currency != account[1]:
            problems.append(
                f"currency {row.currency} is not the account's currency {account[1]}",
            )
        if problems:
            errors.extend((row.line, why) for why in problems)
        else:
            good.append((row, account[0], products[row.product_code][0], account[1]))
    digest = hashlib.sha256(data).hexdigest()
    days = {row.usage_date for row in rows}
    with transaction.atomic():
        # Checked under the day locks: a bill run or a month close can not slip in between.
        _lock_days(days)
        closed = _closed_months(month_start(day) for day in days)
        billed = _billed_pairs({account_pk for _, account_pk, _, _ in good}, days)
        for row, account_pk, _, _ in good:
            if month_start(row.usage_date) in closed:
                errors.append(
                    (row.line, f"{row.usage_date:%Y-%m} is closed; its bills are final"),
                )
            elif (account_pk, row.usage_date) in billed:
                errors.append((
                    row.line,
                    f"the daily bill of {row.account_id} for {row.usage_date:%Y-%m-%d} is "
                    "already made; its usage can no longer change",
                ))
        previous = UsageImport.objects.filter(digest=digest).first()
        if previous is not None:
            errors.append((
                1, f"this file was imported already (import #{previous.pk} on "
                   f"{timezone.localtime(previous.created_at):%Y-%m-%d %H:%M})",
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
    for chunk in _chunks(sorted(account_pks), IN_CHUNK):
        pairs.update(
            DailyBill.objects.filter(sub_account_id__in=chunk, date__in=days)
            .values_list("sub_account_id", "date")
        )
    return pairs


# ---------------------------------------------------------------------------------------
# Daily bills


@dataclass
class DailyBillsResult:
    bill_date: date
    bill_ids: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.bill_ids)


def daily_bills_make(
    *, bill_date: date, enqueue_posting: bool = True, batch_size: int = ACCOUNT_BATCH,
) -> DailyBillsResult:
    """Make the day's bill of every account with unbilled usage that day, a line per product.

    Safe to run again: usage already on a bill is not billed twice, and a second run makes
    only the bills of usage that arrived since. Each bill's posting is enqueued on commit.
    """
    if month_start(bill_date) in _closed_months([month_start(bill_date)]):
        raise ApplicationError(f"{bill_date:%Y-%m} is closed; its daily bills are final.")
    result = DailyBillsResult(bill_date=bill_date)
    account_ids = list(
        UsageRecord.objects.filter(usage_date=bill_date, line__isnull=True)
        .order_by("sub_account_id").values_list("sub_account_id", flat=True).distinct()
    )
    for chunk in _chunks(account_ids, batch_size):
        with transaction.atomic():
            _lock_days([bill_date])
            if _closed_months([month_start(bill_date)]):
                raise ApplicationError(f"{bill_date:%Y-%m} is closed; its daily bills are final.")
            bill_ids = _daily_bills_make_batch(bill_date=bill_date, account_ids=list(chunk))
            if enqueue_posting and bill_ids:
                # A lambda, not functools.partial: Django logs a robust callback's failure
                # by its __qualname__, which a partial lacks (the AttributeError would escape).
                transaction.on_commit(lambda ids=bill_ids: bills_enqueue_posting(bill_ids=ids),
                                      robust=True)
        result.bill_ids.extend(bill_ids)
    return result


def _daily_bills_make_batch(*, bill_date: date, account_ids: list[int]) -> list[int]:
    sums = list(
        UsageRecord.objects.filter(
            usage_date=bill_date, line__isnull=True, sub_account_id__in=account_ids,
        )
        .values("sub_account_id", "currency", "product_id")
        .annotate(total=Sum("amount"))
        .order_by("sub_account_id", "product_id")
    )
    per_account: dict[int, list[dict]] = defaultdict(list)
    for row in sums:
        row["total"] = quantize(row["total"])
        per_account[row["sub_account_id"]].append(row)
    for account_id, rows in per_account.items():
        if len({row["currency"] for row in rows}) > 1:
            raise ApplicationError(
                f"Account #{account_id} has usage in two currencies on {bill_date}; fix the "
                "usage before billing the day.",
            )
    existing = {
        bill.sub_account_id: bill
        for bill in DailyBill.objects.select_for_update().filter(
            date=bill_date, sub_account_id__in=account_ids,
        ).order_by("pk")
    }
    new_bills = [
        DailyBill(
            sub_account_id=account_id, date=bill_date, currency=rows[0]["currency"],
            original_amount=sum((r["total"] for r in rows), ZERO), deduction_amount=ZERO,
            payable_amount=sum((r["total"] for r in rows), ZERO),
        )
        for account_id, rows in per_account.items()
        if account_id not in existing
    ]
    DailyBill.objects.bulk_create(new_bills, batch_size=500)
    new_lines = [
        DailyBillLine(
            bill_id=bill.pk, product_id=row["product_id"], original_amount=row["total"],
            deduction_amount=ZERO, payable_amount=row["total"],
        )
        for bill in new_bills
        for row in per_account[bill.sub_account_id]
    ]
    # Usage that reached an existing bill can only come from outside the import service;
    # it is added to that bill rather than lost, and posting then covers the increase.
    for account_id, bill in existing.items():
        lines = {line.product_id: line for line in bill.lines.all()}
        added = ZERO
        for row in per_account[account_id]:
            line = lines.get(row["product_id"])
            if line is None:
                new_lines.append(DailyBillLine(
                    bill_id=bill.pk, product_id=row["product_id"], original_amount=row["total"],
                    deduction_amount=ZERO, payable_amount=row["total"],
                ))
            else:
                DailyBillLine.objects.filter(pk=line.pk).update(
                    original_amount=_cents(F("original_amount") + row["total"]),
                    payable_amount=_cents(F("payable_amount") + row["total"]),
                )
            added += row["total"]
        DailyBill.objects.filter(pk=bill.pk).update(
            original_amount=_cents(F("original_amount") + added),
            payable_amount=_cents(F("payable_amount") + added),
        )
    DailyBillLine.objects.bulk_create(new_lines, batch_size=1000)
    line_of_usage = DailyBillLine.objects.filter(
        bill__sub_account_id=OuterRef("sub_account_id"), bill__date=bill_date,
        product_id=OuterRef("product_id"),
    ).values("pk")[:1]
    UsageRecord.objects.filter(
        usage_date=bill_date, line__isnull=True, sub_account_id__in=account_ids,
    ).update(line=Subquery(line_of_usage))
    return [bill.pk for bill in new_bills] + [bill.pk for bill in existing.values()]


def bills_enqueue_posting(*, bill_ids: Iterable[int]) -> None:
    """Publish the posting of these bills, POST_BATCH bills a task."""
    from billing.tasks import bills_post_task

    for chunk in _chunks(sorted(set(bill_ids)), POST_BATCH):
        bills_post_task.delay(list(chunk))


def accounts_enqueue_posting(*, sub_account_ids: Iterable[int]) -> None:
    """Publish the posting of these accounts' outstanding bills, POST_BATCH accounts a task."""
    from billing.tasks import accounts_post_outstanding_batch_task

    for chunk in _chunks(sorted(set(sub_account_ids)), POST_BATCH):
        accounts_post_outstanding_batch_task.delay(list(chunk))


def daily_bills_post_pending(*, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Re-enqueue the posting of bills whose task was lost (broker down, worker killed).

    Posting is idempotent, so a bill whose task was only slow is posted once all the same.
    """
    cutoff = timezone.now() - older_than
    bill_ids = list(
        DailyBill.objects.filter(posted_at__isnull=True, created_at__lt=cutoff)
        .order_by("pk").values_list("pk", flat=True)
    )
    bills_enqueue_posting(bill_ids=bill_ids)
    return len(bill_ids)


def released_postings_sweep(*, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Post, here and now, the outstanding bills of the accounts of released requests whose
    postings were never confirmed (the task published after the release was lost: broker
    down, worker killed). Posting is idempotent, so a request whose tasks did run is only
    checked again. Returns how many requests were swept."""
    from coupons.models import IssuanceRecipient, IssuanceRequest
    from coupons.services import issuance_request_postings_confirm

    cutoff = timezone.now() - older_than
    request_ids = list(
        IssuanceRequest.objects.filter(postings_pending=True, issued_at__lt=cutoff)
        .order_by("pk").values_list("pk", flat=True)
    )
    for request_id in request_ids:
        account_ids = sorted(set(
            IssuanceRecipient.objects.filter(request_id=request_id)
            .values_list("sub_account_id", flat=True)
        ))
        for chunk in _chunks(account_ids, POST_BATCH):
            accounts_post_outstanding(sub_account_ids=chunk)
        issuance_request_postings_confirm(request_id=request_id)
    return len(request_ids)


# ---------------------------------------------------------------------------------------
# Posting deductions


@dataclass
class PostingResult:
    bills: int = 0
    deductions: int = 0
    amount: Decimal = ZERO


def coupon_in(coupon: Coupon) -> CouponIn:
    """The allocation's view of a coupon; a discount's cap per use is its amount per use."""
    cap = None
    if coupon.kind == DISCOUNT and coupon.uses_total:
        cap = quantize(coupon.amount / coupon.uses_total)
    return CouponIn(
        id=coupon.pk, kind=coupon.kind, currency=coupon.currency, balance=coupon.balance,
        valid_from=coupon.valid_from, valid_until=coupon.valid_until,
        released_at=coupon.released_at, all_products=coupon.all_products,
        products=frozenset(coupon.product_codes or ()), min_amount=coupon.min_bill_amount,
        rate=coupon.discount_rate, cap=cap, uses_left=coupon.uses_left,
    )


def _line_in(line: DailyBillLine, bill: DailyBill, paid_by: Iterable[int]) -> LineIn:
    return LineIn(
        key=line.pk, product=line.product.code, original=line.original_amount,
        deducted=line.deduction_amount, bill_date=bill.date, currency=bill.currency,
        paid_by=frozenset(paid_by),
    )


def _lock_account_coupons(sub_account_id: int) -> list[Coupon]:
    """The per-account lock: every available coupon of the account, in pk order."""
    return list(
        Coupon.objects.select_for_update()
        .filter(sub_account_id=sub_account_id, status=Coupon.Status.AVAILABLE)
        .order_by("pk")
    )


def bill_post_deductions(*, bill_id: int) -> PostingResult:
    """Let the account's coupons pay what the bill still owes. Safe to run any number of
    times: a rerun finds nothing new to pay, and (coupon, line) is unique in the database."""
    if not DailyBill.objects.filter(pk=bill_id).exists():
        raise ApplicationError(f"Daily bill #{bill_id} does not exist.")
    return bills_post(bill_ids=[bill_id])


def bills_post(*, bill_ids: Iterable[int]) -> PostingResult:
    """Post many daily bills (of any accounts) in one transaction, as `bill_post_deductions`
    posts one: the same locks in the same order and the same allocation per account, with
    set-based writes. Bills that no longer exist are skipped."""
    selection: dict[int, set[int] | None] = defaultdict(set)
    for chunk in _chunks(sorted(set(bill_ids)), IN_CHUNK):
        for bill_id, sub_account_id in DailyBill.objects.filter(pk__in=chunk).values_list(
            "pk", "sub_account_id",
        ):
            selection[sub_account_id].add(bill_id)
    return _post(selection=dict(selection))


def account_post_outstanding(*, sub_account_id: int) -> PostingResult:
    """Post every outstanding daily bill of the account (payable left, or never posted), in
    date order: run when coupons are released and by the sweeper."""
    return accounts_post_outstanding(sub_account_ids=[sub_account_id])


def accounts_post_outstanding(*, sub_account_ids: Iterable[int]) -> PostingResult:
    """`account_post_outstanding` for many accounts in one transaction."""
    return _post(selection=dict.fromkeys(set(sub_account_ids)))


def _post(*, selection: dict[int, set[int] | None]) -> PostingResult:
    """Post, in one transaction, for each account of `selection` the given bills, or (None)
    all its outstanding ones.

    Locks, in the module's order: every available coupon of the accounts (pk order, the
    per-account lock), then their bills (pk order). The allocation runs per account, each
    account's bills in date order; the writes are one statement per table.
    """
    result = PostingResult()
    if not selection:
        return result
    account_ids = sorted(selection)
    with transaction.atomic():
        coupons = []
        for chunk in _chunks(account_ids, IN_CHUNK):
            coupons += Coupon.objects.select_for_update().filter(
                sub_account_id__in=chunk, status=Coupon.Status.AVAILABLE,
            ).order_by("pk")
        coupons.sort(key=lambda c: c.pk)
        _fault("locked")
        coupons_of: dict[int, list[Coupon]] = defaultdict(list)
        for coupon in coupons:
            coupons_of[coupon.sub_account_id].append(coupon)

        # Which bills to lock: the given ones; and of the accounts posted whole, those never
        # posted, or owing inside some coupon's validity (the exact window per account is
        # applied below, so the SQL may lock a few bills more, never fewer).
        given = [bill_id for ids in selection.values() if ids for bill_id in ids]
        whole = [account_id for account_id in account_ids if selection[account_id] is None]
        wanted = Q(pk__in=given) if given else Q(pk__in=[])
        if whole:
            with_coupons = [a for a in whole if coupons_of[a]]
            without = [a for a in whole if not coupons_of[a]]
            if with_coupons:
                first = min(c.valid_from for a in with_coupons for c in coupons_of[a])
                last = max(c.valid_until for a in with_coupons for c in coupons_of[a])
                wanted |= Q(sub_account_id__in=with_coupons) & (
                    Q(posted_at__isnull=True)
                    | Q(payable_amount__gt=0, date__gte=first, date__lte=last)
                )
            if without:
                wanted |= Q(sub_account_id__in=without, posted_at__isnull=True)
        locked = list(DailyBill.objects.select_for_update().filter(wanted).order_by("pk"))

        def chosen(bill: DailyBill) -> bool:
            if selection[bill.sub_account_id] is not None:
                return True
            if bill.posted_at is None:
                return True
            own = coupons_of[bill.sub_account_id]
            return bill.payable_amount > 0 and any(
                c.valid_from <= bill.date <= c.valid_until for c in own
            )

        # A closed month is final: its bills are no longer offered to coupons.
        bills = [b for b in locked if chosen(b)]
        closed = _closed_months(month_start(b.date) for b in bills)
        bills = sorted(
            (b for b in bills if month_start(b.date) not in closed), key=lambda b: (b.date, b.pk),
        )
        if not bills:
            return result
        owing = {b.pk: b for b in bills if b.payable_amount > 0 and coupons_of[b.sub_account_id]}
        if owing:
            lines = []
            for chunk in _chunks(sorted(owing), IN_CHUNK):
                lines += DailyBillLine.objects.filter(
                    bill_id__in=chunk, payable_amount__gt=0,
                ).select_related("product")
            lines.sort(key=lambda line: (owing[line.bill_id].date, line.product.code, line.pk))
            paid_by: dict[int, set[int]] = defaultdict(set)
            for chunk in _chunks([line.pk for line in lines], IN_CHUNK):
                for line_id, coupon_id in Deduction.objects.filter(
                    line_id__in=chunk,
                ).values_list("line_id", "coupon_id"):
                    paid_by[line_id].add(coupon_id)
            lines_of: dict[int, list[DailyBillLine]] = defaultdict(list)
            for line in lines:
                lines_of[owing[line.bill_id].sub_account_id].append(line)
            allocations: list[Allocation] = []
            for account_id in sorted(lines_of):
                allocations += allocate(
                    [_line_in(line, owing[line.bill_id], paid_by[line.pk])
                     for line in lines_of[account_id]],
                    [coupon_in(c) for c in coupons_of[account_id]],
                )
            if allocations:
                _write_allocations(
                    allocations=allocations,
                    coupons={c.pk: c for c in coupons},
                    lines={line.pk: line for line in lines},
                    bills=owing,
                )
                result.deductions = len(allocations)
                result.amount = sum((a.amount for a in allocations), ZERO)
        unposted = [b.pk for b in bills if b.posted_at is None]
        for chunk in _chunks(unposted, IN_CHUNK):
            DailyBill.objects.filter(pk__in=chunk).update(posted_at=timezone.now())
        result.bills = len(bills)
        _fault("before_commit")
    return result


def _write_allocations(
    *,
    allocations: list[Allocation],
    coupons: dict[int, Coupon],
    lines: dict[int, DailyBillLine],
    bills: dict[int, DailyBill],
) -> None:
    """Write deductions, then coupons, lines and bills, in the caller's transaction and
    under its locks: one statement per table, whatever the number of allocations. The
    in-memory rows are the locked ones, so their values are current; the updates still
    subtract in SQL, so they can only ever take what was there."""
    now = timezone.now()
    rows = []
    for allocation in allocations:
        line = lines[allocation.line_key]
        bill = bills[line.bill_id]
        coupon = coupons[allocation.coupon_id]
        rows.append((coupon.pk, line.pk, bill.sub_account_id, coupon.partner_id, bill.date,
                     allocation.amount, now))
    # A duplicate (coupon, line) fails the unique constraint and rolls everything back.
    bulk_insert(Deduction, DEDUCTION_FIELDS, rows)
    _fault("deductions_inserted")

    per_coupon: dict[int, list] = defaultdict(lambda: [ZERO, 0])
    per_line: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for allocation in allocations:
        per_coupon[allocation.coupon_id][0] += allocation.amount
        per_coupon[allocation.coupon_id][1] += allocation.uses
        per_line[allocation.line_key] += allocation.amount
    coupon_rows, audits = [], []
    for coupon_id in sorted(per_coupon):
        taken, uses = per_coupon[coupon_id]
        coupon = coupons[coupon_id]
        balance_after = coupon.balance - taken
        uses_after = None if coupon.uses_left is None else coupon.uses_left - uses
        used_up = balance_after <= ZERO or (coupon.kind == DISCOUNT and uses_after == 0)
        status = Coupon.Status.USED_UP if used_up else coupon.status
        coupon_rows.append((coupon_id, taken, uses, str(status)))
        if used_up:
            audits.append(AuditLog(
                actor=None, partner_id=coupon.partner_id, action="coupon.used_up",
                object_type=Coupon._meta.label, object_id=str(coupon.pk),
                before={"status": coupon.status, "balance": coupon.balance,
                        "uses_left": coupon.uses_left},
                after={"status": Coupon.Status.USED_UP, "balance": balance_after,
                       "uses_left": uses_after},
            ))
        coupon.balance, coupon.uses_left, coupon.status = balance_after, uses_after, status
    update_from_values(
        Coupon, ["id", "taken", "uses", "status"],
        "balance = ROUND(t.balance - CAST(v.taken AS NUMERIC), 2), "
        "uses_left = t.uses_left - v.uses, status = v.status",
        coupon_rows,
    )
    AuditLog.objects.bulk_create(audits, batch_size=1000)
    _fault("balances_updated")

    per_bill: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for line_id, taken in per_line.items():
        per_bill[lines[line_id].bill_id] += taken
    minus = (
        "deduction_amount = ROUND(t.deduction_amount + CAST(v.taken AS NUMERIC), 2), "
        "payable_amount = ROUND(t.payable_amount - CAST(v.taken AS NUMERIC), 2)"
    )
    update_from_values(DailyBillLine, ["id", "taken"], minus, list(per_line.items()))
    update_from_values(DailyBill, ["id", "taken"], minus, list(per_bill.items()))
    _fault("lines_updated")


def coupon_deduct(*, coupon_id: int, line_id: int, amount: Decimal) -> Deduction:
    """Deduct a given amount from one coupon onto one bill line, or refuse cleanly.

    The balance is re-checked inside the coupon's row lock, so concurrent deductions can
    never together take more than the balance.
    """
    amount = Decimal(amount)
    if not amount.is_finite() or amount <= 0 or not has_at_most_two_places(amount):
        raise ApplicationError("The amount must be more than 0 with at most 2 decimal places.")
    with transaction.atomic():
        coupon = Coupon.objects.select_for_update().filter(pk=coupon_id).first()
        if coupon is None:
            raise ApplicationError(f"Coupon #{coupon_id} does not exist.")
        _fault("locked")
        bill_id = DailyBillLine.objects.filter(pk=line_id).values_list("bill_id", flat=True).first()
        if bill_id is None:
            raise ApplicationError(f"Bill line #{line_id} does not exist.")
        bill = DailyBill.objects.select_for_update().get(pk=bill_id)
        line = DailyBillLine.objects.select_related("product").get(pk=line_id)
        if coupon.status != Coupon.Status.AVAILABLE:
            raise ApplicationError(f"Coupon {coupon.code} is {coupon.get_status_display()}.")
        if coupon.sub_account_id != bill.sub_account_id:
            raise ApplicationError(f"Coupon {coupon.code} belongs to another account.")
        if _closed_months([month_start(bill.date)]):
            raise ApplicationError(f"{bill.date:%Y-%m} is closed; its bills are final.")
        if amount > coupon.balance:
            raise ApplicationError(
                f"Coupon {coupon.code} has {fmt(coupon.balance, coupon.currency)} left, "
                f"less than {fmt(amount, coupon.currency)}.",
            )
        if amount > line.payable_amount:
            raise ApplicationError(
                f"The line owes {fmt(line.payable_amount, bill.currency)}, less than "
                f"{fmt(amount, bill.currency)}.",
            )
        view = coupon_in(coupon)
        paid_by = Deduction.objects.filter(line_id=line.pk).values_list("coupon_id", flat=True)
        if not coupon_applies(_line_in(line, bill, paid_by), view):
            raise ApplicationError(
                f"Coupon {coupon.code} can not pay this line (currency, validity, products, "
                "minimum amount, or it paid this line already).",
            )
        if view.cap is not None and amount > view.cap:
            raise ApplicationError(
                f"Coupon {coupon.code} takes at most {fmt(view.cap, coupon.currency)} per use.",
            )
        uses = 1 if coupon.kind == DISCOUNT else 0
        _write_allocations(
            allocations=[Allocation(coupon.pk, line.pk, amount, uses)],
            coupons={coupon.pk: coupon}, lines={line.pk: line}, bills={bill.pk: bill},
        )
        deduction = Deduction.objects.get(coupon_id=coupon.pk, line_id=line.pk)
        _fault("before_commit")
    return deduction


# ---------------------------------------------------------------------------------------
# Coupon statuses: expiry and voiding


def coupons_expire(*, today: date | None = None, batch_size: int = 1000) -> int:
    """Mark available coupons past their valid until expired; their balance stays (breakage).

    A coupon whose account still has an unposted bill inside its validity waits, so a slow
    posting task does not lose the money the coupon was due to pay.
    """
    today = today or timezone.localdate()
    unposted = DailyBill.objects.filter(
        sub_account_id=OuterRef("sub_account_id"), posted_at__isnull=True,
        date__gte=OuterRef("valid_from"), date__lte=OuterRef("valid_until"),
    )
    due = Coupon.objects.filter(
        status=Coupon.Status.AVAILABLE, valid_until__lt=today,
    ).exclude(Exists(unposted))
    expired = 0
    last_pk = 0
    while True:
        with transaction.atomic():
            # pk order, like every other coupon locker, so expiry never deadlocks a posting.
            batch = list(
                Coupon.objects.select_for_update()
                .filter(pk__in=Subquery(
                    due.filter(pk__gt=last_pk).order_by("pk").values("pk")[:batch_size],
                ))
                .order_by("pk")
            )
            if not batch:
                break
            last_pk = batch[-1].pk
            # The rows are re-read under the lock: one voided or used up meanwhile stays so.
            batch = [c for c in batch if c.status == Coupon.Status.AVAILABLE]
            Coupon.objects.filter(pk__in=[c.pk for c in batch]).update(
                status=Coupon.Status.EXPIRED,
            )
            partners = Partner.objects.in_bulk({c.partner_id for c in batch})
            for coupon in batch:
                audit_record(
                    actor=None, partner=partners[coupon.partner_id], action="coupon.expire",
                    obj=coupon, before={"status": Coupon.Status.AVAILABLE},
                    after={"status": Coupon.Status.EXPIRED, "breakage": coupon.balance},
                )
            expired += len(batch)
    return expired


def coupon_void(*, coupon: Coupon, acting_user, reason: str) -> Coupon:
    """A partner admin withdraws a coupon's unused balance; deductions already made stay."""
    reason = (reason or "").strip()
    membership = membership_for(acting_user)
    if membership is None or membership.partner_id != coupon.partner_id:
        raise PermissionDeniedError("You do not act for the partner that issued this coupon.")
    if membership.role != PartnerMembership.Role.ADMIN:
        raise PermissionDeniedError("Only a partner admin can void a coupon.")
    if not membership.partner.coupon_enabled:
        raise PermissionDeniedError("Contact your BD to enable the Coupon Function")
    if not reason:
        raise ApplicationError("Give a reason for voiding the coupon.")
    with transaction.atomic():
        locked = Coupon.objects.select_for_update().get(pk=coupon.pk)
        if Coupon.Status.VOIDED not in COUPON_TRANSITIONS[locked.status]:
            raise InvalidTransitionError(
                f"Coupon {locked.code} is {locked.get_status_display().lower()}; only an "
                "available coupon can be voided.",
            )
        before = {"status": locked.status, "balance": locked.balance,
                  "voided_amount": locked.voided_amount}
        # Both sides of the SET read the row as it was, so the balance moves over whole.
        Coupon.objects.filter(pk=locked.pk).update(
            voided_amount=_cents(F("voided_amount") + F("balance")), balance=ZERO,
            status=Coupon.Status.VOIDED, void_reason=reason,
        )
        locked.refresh_from_db()
        audit_record(
            actor=acting_user, partner=locked.partner, action="coupon.void", obj=locked,
            before=before,
            after={"status": locked.status, "balance": locked.balance,
                   "voided_amount": locked.voided_amount},
            reason=reason,
        )
    return locked


# ---------------------------------------------------------------------------------------
# Monthly close


@dataclass
class MonthCloseResult:
    month: date
    bill_count: int
    already_closed: bool = False


def month_close(*, month: str | date, today: date | None = None) -> MonthCloseResult:
    """Make every monthly bill of an ended month from its daily bills, and close the month.

    Refused while usage of the month is unbilled or a daily bill waits for its posting, so
    the monthly bills are final and always equal the sum of the daily ones. Closing a
    closed month again changes nothing.
    """
    first = month_parse(month) if isinstance(month, str) else month_start(month)
    last = month_end(first)
    today = today or timezone.localdate()
    if last >= today:
        raise ApplicationError(f"{first:%Y-%m} has not ended yet; it can be closed from "
                               f"{last + timedelta(days=1):%Y-%m-%d}.")
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    with transaction.atomic():
        _lock_days(days)
        if ClosedMonth.objects.filter(month=first).exists():
            return MonthCloseResult(
                month=first, already_closed=True,
                bill_count=MonthlyBill.objects.filter(month=first).count(),
            )
        unbilled = sorted(set(
            UsageRecord.objects.filter(
                usage_date__gte=first, usage_date__lte=last, line__isnull=True,
            ).values_list("usage_date", flat=True)
        ))
        if unbilled:
            raise ApplicationError(
                f"{first:%Y-%m} has usage not billed yet on "
                f"{', '.join(f'{d:%Y-%m-%d}' for d in unbilled)}; run billing for those days "
                "first.",
            )
        # Locking the month's bills waits out any posting still writing to them.
        in_month = DailyBill.objects.filter(date__gte=first, date__lte=last)
        waiting = 0
        for posted_at in in_month.select_for_update().order_by("pk").values_list(
            "posted_at", flat=True,
        ).iterator(chunk_size=5000):
            waiting += posted_at is None
        if waiting:
            raise ApplicationError(
                f"{waiting} daily bill{'s' if waiting != 1 else ''} of {first:%Y-%m} "
                f"{'are' if waiting != 1 else 'is'} still waiting for deductions to be "
                "posted; close the month once posting has run.",
            )
        ClosedMonth.objects.create(month=first)
        account_ids = list(
            in_month.order_by("sub_account_id").values_list("sub_account_id", flat=True)
            .distinct()
        )
        count = 0
        for chunk in _chunks(account_ids, ACCOUNT_BATCH):
            count += _monthly_bills_make(first=first, last=last, account_ids=list(chunk))
    return MonthCloseResult(month=first, bill_count=count)


def _monthly_bills_make(*, first: date, last: date, account_ids: list[int]) -> int:
    daily = DailyBill.objects.filter(
        date__gte=first, date__lte=last, sub_account_id__in=account_ids,
    )
    totals = list(
        daily.values("sub_account_id", "currency")
        .annotate(
            original=Sum("original_amount"), deduction=Sum("deduction_amount"),
            payable=Sum("payable_amount"), days=Count("pk"),
        )
        .order_by("sub_account_id")
    )
    seen: set[int] = set()
    bills = []
    for row in totals:
        if row["sub_account_id"] in seen:
            raise ApplicationError(
                f"Account #{row['sub_account_id']} was billed in two currencies in "
                f"{first:%Y-%m}; its monthly bill can not be made.",
            )
        seen.add(row["sub_account_id"])
        bills.append(MonthlyBill(
            sub_account_id=row["sub_account_id"], month=first, currency=row["currency"],
            original_amount=quantize(row["original"]), deduction_amount=quantize(row["deduction"]),
            payable_amount=quantize(row["payable"]), daily_bill_count=row["days"],
        ))
    MonthlyBill.objects.bulk_create(bills, batch_size=500)
    bill_of = {bill.sub_account_id: bill.pk for bill in bills}
    lines = [
        MonthlyBillLine(
            bill_id=bill_of[row["bill__sub_account_id"]], product_id=row["product_id"],
            original_amount=quantize(row["original"]), deduction_amount=quantize(row["deduction"]),
            payable_amount=quantize(row["payable"]),
        )
        for row in DailyBillLine.objects.filter(bill__in=daily)
        .values("bill__sub_account_id", "product_id")
        .annotate(
            original=Sum("original_amount"), deduction=Sum("deduction_amount"),
            payable=Sum("payable_amount"),
        )
        .order_by("bill__sub_account_id", "product_id")
    ]
    MonthlyBillLine.objects.bulk_create(lines, batch_size=1000)
    per_coupon = [
        MonthlyCouponDeduction(
            bill_id=bill_of[row["sub_account_id"]], coupon_id=row["coupon_id"],
            amount=quantize(row["total"]), deduction_count=row["count"],
        )
        for row in Deduction.objects.filter(
            bill_date__gte=first, bill_date__lte=last, sub_account_id__in=account_ids,
        )
        .values("sub_account_id", "coupon_id")
        .annotate(total=Sum("amount"), count=Count("pk"))
        .order_by("sub_account_id", "coupon_id")
    ]
    MonthlyCouponDeduction.objects.bulk_create(per_coupon, batch_size=1000)
    return len(bills)
