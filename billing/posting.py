"""Posting: the account's coupons pay what its daily bills still owe, in batches of bills or
accounts, one transaction each; and the publishing of those batches as tasks.

Locking, in the one order every billing writer follows so two of them never deadlock:
coupons (pk order) → daily bills (pk order) → their lines; a posting's coupon lock (all the
account's available coupons) is the per-account lock. Which bills a coupon can pay is
billing/payable.py, which coupon pays a line the pure rule of billing/allocation.py
(docs/WHICH_COUPON_PAYS.md).
"""
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.allocation import DISCOUNT, Allocation, CouponIn, LineIn, allocate
from billing.locks import daily_bills_for_update
from billing.models import DailyBill, DailyBillLine, Deduction
from billing.payable import bill_open, bill_payable
from billing.periods import closed_months, month_start
from couponplatform import dispatch
from couponplatform.db import IN_CHUNK, bulk_insert, chunks, update_from_values
from couponplatform.exceptions import ApplicationError
from couponplatform.money import ZERO
from coupons.locks import coupons_for_update
from coupons.models import Coupon
from coupons.transitions import coupons_move

logger = logging.getLogger(__name__)


# Bills (or accounts) per posting task, and so per posting transaction.
POST_BATCH = 500
DEDUCTION_FIELDS = ["coupon", "line", "sub_account", "partner", "bill_date", "amount",
                    "created_at"]


def _fault(point: str) -> None:
    """Crash-point hook: the tests replace it to fail at a named point; does nothing here.

    Points, in order: "locked", "deductions_inserted", "balances_updated", "lines_updated",
    "before_commit".
    """


# ---------------------------------------------------------------------------------------
# Publishing postings


def bills_enqueue_posting(*, bill_ids: Iterable[int]) -> None:
    """Publish the posting of these bills, POST_BATCH bills a task."""
    for chunk in chunks(sorted(set(bill_ids)), POST_BATCH):
        dispatch.enqueue(dispatch.BILLS_POST, list(chunk))


def accounts_enqueue_posting(*, sub_account_ids: Iterable[int]) -> None:
    """Publish the posting of these accounts' outstanding bills, POST_BATCH accounts a task."""
    for chunk in chunks(sorted(set(sub_account_ids)), POST_BATCH):
        dispatch.enqueue(dispatch.ACCOUNTS_POST_OUTSTANDING, list(chunk))


# ---------------------------------------------------------------------------------------
# Posting deductions


@dataclass
class PostingResult:
    bills: int = 0
    deductions: int = 0
    amount: Decimal = ZERO


def coupon_in(coupon: Coupon) -> CouponIn:
    """The allocation's view of a coupon."""
    return CouponIn(
        id=coupon.pk, kind=coupon.kind, currency=coupon.currency, balance=coupon.balance,
        valid_from=coupon.valid_from, valid_until=coupon.valid_until,
        released_at=coupon.released_at, all_products=coupon.all_products,
        products=frozenset(coupon.product_codes or ()), min_amount=coupon.min_bill_amount,
        rate=coupon.discount_rate, cap=coupon.cap_per_use, uses_left=coupon.uses_left,
    )


def _line_in(line: DailyBillLine, bill: DailyBill, paid_by: Iterable[int]) -> LineIn:
    return LineIn(
        key=line.pk, product=line.product.code, original=line.original_amount,
        deducted=line.deduction_amount, bill_date=bill.date, currency=bill.currency,
        paid_by=frozenset(paid_by),
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
    bills_of: dict[int, set[int]] = defaultdict(set)
    for chunk in chunks(sorted(set(bill_ids)), IN_CHUNK):
        for bill_id, sub_account_id in DailyBill.objects.filter(pk__in=chunk).values_list(
            "pk", "sub_account_id",
        ):
            bills_of[sub_account_id].add(bill_id)
    return _post(bills_of=bills_of, outstanding_of=())


def account_post_outstanding(*, sub_account_id: int) -> PostingResult:
    """Post every outstanding daily bill of the account (payable left, or never posted), in
    date order: run when coupons are released and by the sweeper."""
    return accounts_post_outstanding(sub_account_ids=[sub_account_id])


def accounts_post_outstanding(*, sub_account_ids: Iterable[int]) -> PostingResult:
    """`account_post_outstanding` for many accounts in one transaction."""
    return _post(bills_of={}, outstanding_of=sub_account_ids)


def _post(
    *, bills_of: Mapping[int, Collection[int]], outstanding_of: Iterable[int],
) -> PostingResult:
    """Post, in one transaction, the given bills (`bills_of`: account id → its bill ids) and
    every outstanding bill of the accounts `outstanding_of`.

    Locks, in the module's order: every available coupon of the accounts (pk order, the
    per-account lock), then their bills (pk order). The allocation runs per account, each
    account's bills in date order; the writes are one statement per table.
    """
    result = PostingResult()
    given = {bill_id for ids in bills_of.values() for bill_id in ids}
    whole = sorted(set(outstanding_of))
    account_ids = sorted({a for a, ids in bills_of.items() if ids} | set(whole))
    if not account_ids:
        return result
    with transaction.atomic():
        coupons = []
        for chunk in chunks(account_ids, IN_CHUNK):
            coupons += coupons_for_update().filter(
                sub_account_id__in=chunk, status=Coupon.Status.AVAILABLE,
            )
        coupons.sort(key=lambda c: c.pk)
        _fault("locked")
        coupons_of: dict[int, list[Coupon]] = defaultdict(list)
        for coupon in coupons:
            coupons_of[coupon.sub_account_id].append(coupon)

        # Which bills to lock: the given ones; and of the accounts posted whole, those never
        # posted, or owing inside some coupon's validity (the exact window per account is
        # applied below, so the SQL may lock a few bills more, never fewer).
        wanted = Q(pk__in=sorted(given))
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
        locked = list(daily_bills_for_update().filter(wanted))

        whole_set = set(whole)
        # A closed month is final: its bills are no longer offered to coupons.
        closed = closed_months(month_start(b.date) for b in locked)

        def chosen(bill: DailyBill) -> bool:
            if not bill_open(bill_date=bill.date, closed=closed):
                return False
            if bill.pk in given:
                return True
            if bill.sub_account_id not in whole_set:
                return False
            if bill.posted_at is None:
                return True
            own = coupons_of[bill.sub_account_id]
            return bill.payable_amount > 0 and any(
                bill_payable(bill_date=bill.date, valid_from=c.valid_from,
                             valid_until=c.valid_until, closed=closed)
                for c in own
            )

        bills = sorted((b for b in locked if chosen(b)), key=lambda b: (b.date, b.pk))
        if not bills:
            return result
        owing = {b.pk: b for b in bills if b.payable_amount > 0 and coupons_of[b.sub_account_id]}
        if owing:
            lines = []
            for chunk in chunks(sorted(owing), IN_CHUNK):
                lines += DailyBillLine.objects.filter(
                    bill_id__in=chunk, payable_amount__gt=0,
                ).select_related("product")
            lines.sort(key=lambda line: (owing[line.bill_id].date, line.product.code, line.pk))
            paid_by: dict[int, set[int]] = defaultdict(set)
            for chunk in chunks([line.pk for line in lines], IN_CHUNK):
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
        for chunk in chunks(unposted, IN_CHUNK):
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
    coupon_rows, used_up, before, after = [], [], {}, {}
    for coupon_id in sorted(per_coupon):
        taken, uses = per_coupon[coupon_id]
        coupon = coupons[coupon_id]
        balance_after = coupon.balance - taken
        uses_after = None if coupon.uses_left is None else coupon.uses_left - uses
        coupon_rows.append((coupon_id, taken, uses))
        if balance_after <= ZERO or (coupon.kind == DISCOUNT and uses_after == 0):
            used_up.append(coupon)
            before[coupon_id] = {"balance": coupon.balance, "uses_left": coupon.uses_left}
            after[coupon_id] = {"balance": balance_after, "uses_left": uses_after}
        coupon.balance, coupon.uses_left = balance_after, uses_after
    update_from_values(
        Coupon, ["id", "taken", "uses"],
        "balance = ROUND(t.balance - CAST(v.taken AS NUMERIC), 2), "
        "uses_left = t.uses_left - v.uses",
        coupon_rows,
    )
    coupons_move(coupons=used_up, to=Coupon.Status.USED_UP, action="coupon.used_up",
                 before=before, after=after)
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
