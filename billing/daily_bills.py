"""Daily bills: one bill per account and day with a line per product, made from the day's
unbilled usage; each batch's posting is enqueued once it commits."""
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db import transaction
from django.db.models import F, OuterRef, Subquery, Sum

from billing.locks import daily_bills_for_update
from billing.models import DailyBill, DailyBillLine, UsageRecord
from billing.periods import closed_months, days_lock, month_start
from billing.posting import bills_enqueue_posting
from couponplatform.db import chunks
from couponplatform.exceptions import ApplicationError
from couponplatform.money import ZERO, cents, quantize

# Accounts handled per transaction by the daily bill run and the month close, so memory
# stays flat however many accounts bill that day.
ACCOUNT_BATCH = 1000


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
    if month_start(bill_date) in closed_months([month_start(bill_date)]):
        raise ApplicationError(f"{bill_date:%Y-%m} is closed; its daily bills are final.")
    result = DailyBillsResult(bill_date=bill_date)
    account_ids = list(
        UsageRecord.objects.filter(usage_date=bill_date, line__isnull=True)
        .order_by("sub_account_id").values_list("sub_account_id", flat=True).distinct()
    )
    for chunk in chunks(account_ids, batch_size):
        with transaction.atomic():
            days_lock([bill_date])
            if closed_months([month_start(bill_date)]):
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
        for bill in daily_bills_for_update().filter(
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
                    original_amount=cents(F("original_amount") + row["total"]),
                    payable_amount=cents(F("payable_amount") + row["total"]),
                )
            added += row["total"]
        DailyBill.objects.filter(pk=bill.pk).update(
            original_amount=cents(F("original_amount") + added),
            payable_amount=cents(F("payable_amount") + added),
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
