"""The month close: the monthly bills of an ended month, made from its daily bills once
every one of them is posted; a closed month's bills are final."""
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing.daily_bills import ACCOUNT_BATCH
from billing.locks import daily_bills_for_update
from billing.models import (
    ClosedMonth,
    DailyBill,
    DailyBillLine,
    Deduction,
    MonthlyBill,
    MonthlyBillLine,
    MonthlyCouponDeduction,
    UsageRecord,
)
from billing.periods import days_lock, month_end, month_parse, month_start
from couponplatform.db import chunks
from couponplatform.exceptions import ApplicationError
from couponplatform.money import quantize


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
        raise ApplicationError(_("%(month)s has not ended yet; it can be closed from %(day)s.")
                               % {"month": f"{first:%Y-%m}",
                                  "day": f"{last + timedelta(days=1):%Y-%m-%d}"})
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    with transaction.atomic():
        days_lock(days)
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
                _("%(month)s has usage not billed yet on %(days)s; run billing for those days "
                  "first.") % {"month": f"{first:%Y-%m}",
                               "days": ", ".join(f"{d:%Y-%m-%d}" for d in unbilled)},
            )
        # Locking the month's bills waits out any posting still writing to them.
        in_month = DailyBill.objects.filter(date__gte=first, date__lte=last)
        waiting = 0
        for posted_at in daily_bills_for_update().filter(
            date__gte=first, date__lte=last,
        ).values_list("posted_at", flat=True).iterator(chunk_size=5000):
            waiting += posted_at is None
        if waiting:
            raise ApplicationError(
                ngettext(
                    "%(n)s daily bill of %(month)s is still waiting for deductions to be "
                    "posted; close the month once posting has run.",
                    "%(n)s daily bills of %(month)s are still waiting for deductions to be "
                    "posted; close the month once posting has run.", waiting,
                ) % {"n": f"{waiting:,}", "month": f"{first:%Y-%m}"},
            )
        ClosedMonth.objects.create(month=first)
        account_ids = list(
            in_month.order_by("sub_account_id").values_list("sub_account_id", flat=True)
            .distinct()
        )
        count = 0
        for chunk in chunks(account_ids, ACCOUNT_BATCH):
            count += _monthly_bills_make(first=first, last=last, account_ids=list(chunk))
    return MonthCloseResult(month=first, bill_count=count)


@dataclass
class MonthSums:
    """A month's daily bills of some accounts summed as its monthly bills sum them: per
    account (`bills`: sub_account_id, currency, original, deduction, payable, days), per
    account and product (`lines`: sub_account_id, product_id, the three amounts) and per
    coupon (`coupons`: sub_account_id, coupon_id, total, count), amounts to the cent."""

    bills: list[dict]
    lines: list[dict]
    coupons: list[dict]


def month_sums(*, first: date, last: date, account_ids: list[int],
               totals_only: bool = False) -> MonthSums:
    """The one sum of a month's daily bills: the close writes it as the monthly bills, and
    the sub-account's pages show it for a month not closed yet (the month so far).
    `totals_only`: the bills' totals, without lines and coupons."""
    daily = DailyBill.objects.filter(
        date__gte=first, date__lte=last, sub_account_id__in=account_ids,
    )
    money = ("original", "deduction", "payable")

    def cents_of(row: dict, keys=money) -> dict:
        return {**row, **{k: quantize(row[k]) for k in keys}}

    bills = [cents_of(row) for row in (
        daily.values("sub_account_id", "currency")
        .annotate(original=Sum("original_amount"), deduction=Sum("deduction_amount"),
                  payable=Sum("payable_amount"), days=Count("pk"))
        .order_by("sub_account_id", "currency")
    )]
    if totals_only:
        return MonthSums(bills=bills, lines=[], coupons=[])
    lines = [cents_of({"sub_account_id": row.pop("bill__sub_account_id"), **row}) for row in (
        DailyBillLine.objects.filter(bill__in=daily)
        .values("bill__sub_account_id", "product_id")
        .annotate(original=Sum("original_amount"), deduction=Sum("deduction_amount"),
                  payable=Sum("payable_amount"))
        .order_by("bill__sub_account_id", "product_id")
    )]
    coupons = [cents_of(row, ("total",)) for row in (
        Deduction.objects.filter(
            bill_date__gte=first, bill_date__lte=last, sub_account_id__in=account_ids,
        )
        .values("sub_account_id", "coupon_id")
        .annotate(total=Sum("amount"), count=Count("pk"))
        .order_by("sub_account_id", "coupon_id")
    )]
    return MonthSums(bills=bills, lines=lines, coupons=coupons)


def _monthly_bills_make(*, first: date, last: date, account_ids: list[int]) -> int:
    sums = month_sums(first=first, last=last, account_ids=account_ids)
    seen: set[int] = set()
    bills = []
    for row in sums.bills:
        if row["sub_account_id"] in seen:
            raise ApplicationError(
                _("Account #%(id)s was billed in two currencies in %(month)s; its monthly bill "
                  "can not be made.") % {"id": row["sub_account_id"], "month": f"{first:%Y-%m}"},
            )
        seen.add(row["sub_account_id"])
        bills.append(MonthlyBill(
            sub_account_id=row["sub_account_id"], month=first, currency=row["currency"],
            original_amount=row["original"], deduction_amount=row["deduction"],
            payable_amount=row["payable"], daily_bill_count=row["days"],
        ))
    MonthlyBill.objects.bulk_create(bills, batch_size=500)
    bill_of = {bill.sub_account_id: bill.pk for bill in bills}
    MonthlyBillLine.objects.bulk_create([
        MonthlyBillLine(
            bill_id=bill_of[row["sub_account_id"]], product_id=row["product_id"],
            original_amount=row["original"], deduction_amount=row["deduction"],
            payable_amount=row["payable"],
        )
        for row in sums.lines
    ], batch_size=1000)
    MonthlyCouponDeduction.objects.bulk_create([
        MonthlyCouponDeduction(
            bill_id=bill_of[row["sub_account_id"]], coupon_id=row["coupon_id"],
            amount=row["total"], deduction_count=row["count"],
        )
        for row in sums.coupons
    ], batch_size=1000)
    return len(bills)
