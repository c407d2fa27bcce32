"""The ledger check: every money invariant, verified over the whole database
(docs/ARCHITECTURE.md, "Invariants"); the usage statistics' own check is billing/stats.py.

Each rule is one set-based query (or one per closed month), so the check reads each table a
few times whatever its size. Sums are compared with a half-cent tolerance: PostgreSQL sums
Decimals exactly, SQLite in floating point, and real amounts are whole cents either way.
"""
from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db.models import (
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils.translation import ngettext

from billing.discrepancy import TOLERANCE, Discrepancy, money_shown
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
from billing.periods import month_end
from billing.stats import usage_stats_check
from couponplatform.money import ZERO, money_field
from coupons.models import Coupon, CouponKind


def _sum_of(qs: QuerySet, group: str, field: str) -> Coalesce:
    """A correlated SUM(field) over qs grouped by `group`, 0 when there are no rows."""
    inner = qs.order_by().values(group).annotate(total=Sum(field)).values("total")
    return Coalesce(
        Subquery(inner, output_field=money_field()), Value(ZERO), output_field=money_field(),
    )


def _count_of(qs: QuerySet, group: str) -> Coalesce:
    inner = qs.order_by().values(group).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(inner, output_field=IntegerField()), Value(0))


def _differs(name: str) -> Q:
    return Q(**{f"{name}__gt": TOLERANCE}) | Q(**{f"{name}__lt": -TOLERANCE})


def _diff(left, right) -> ExpressionWrapper:
    return ExpressionWrapper(left - right, output_field=money_field())


def _coupon_checks() -> list[Discrepancy]:
    found = []
    coupons = Coupon.objects.annotate(
        deducted=_sum_of(Deduction.objects.filter(coupon=OuterRef("pk")), "coupon", "amount"),
        deduction_count=_count_of(Deduction.objects.filter(coupon=OuterRef("pk")), "coupon"),
    ).annotate(
        off=_diff(F("deducted"), F("amount") - F("balance") - F("voided_amount")),
    )
    for c in coupons.filter(_differs("off")).values(
        "pk", "code", "amount", "balance", "voided_amount", "deducted",
    ).order_by("pk"):
        found.append(Discrepancy(
            "deductions ≠ amount − balance − voided", f"coupon #{c['pk']} {c['code']}",
            f"deductions {money_shown(c['deducted'])}, amount {c['amount']}, balance "
            f"{c['balance']}, voided {c['voided_amount']}",
        ))
    for c in Coupon.objects.filter(
        Q(balance__lt=0) | Q(balance__gt=F("amount")) | Q(voided_amount__lt=0)
        | Q(voided_amount__gt=F("amount")),
    ).values("pk", "code", "amount", "balance", "voided_amount").order_by("pk"):
        found.append(Discrepancy(
            "balance or voided amount outside 0…amount", f"coupon #{c['pk']} {c['code']}",
            f"amount {c['amount']}, balance {c['balance']}, voided {c['voided_amount']}",
        ))
    for c in coupons.filter(
        kind=CouponKind.DISCOUNT, uses_total__isnull=False, uses_left__isnull=False,
    ).exclude(deduction_count=F("uses_total") - F("uses_left")).values(
        "pk", "code", "uses_total", "uses_left", "deduction_count",
    ).order_by("pk"):
        found.append(Discrepancy(
            "discount uses ≠ deductions", f"coupon #{c['pk']} {c['code']}",
            ngettext("%(n)s deduction, uses %(total)s total and %(left)s left",
                     "%(n)s deductions, uses %(total)s total and %(left)s left",
                     c["deduction_count"])
            % {"n": c["deduction_count"], "total": c["uses_total"], "left": c["uses_left"]},
        ))
    discount_spent = Q(kind=CouponKind.DISCOUNT, uses_left=0)
    wrong_status = {
        "available with nothing left": Q(status=Coupon.Status.AVAILABLE)
        & (Q(balance__lte=0) | discount_spent),
        "used up with balance and uses left": Q(status=Coupon.Status.USED_UP, balance__gt=0)
        & ~discount_spent,
        "voided with balance left": Q(status=Coupon.Status.VOIDED, balance__gt=0),
    }
    for rule, condition in wrong_status.items():
        for c in Coupon.objects.filter(condition).values(
            "pk", "code", "balance", "uses_left",
        ).order_by("pk"):
            found.append(Discrepancy(
                rule, f"coupon #{c['pk']} {c['code']}",
                f"balance {c['balance']}, uses left {c['uses_left']}",
            ))
    return found


def _line_checks() -> list[Discrepancy]:
    found = []
    lines = DailyBillLine.objects.annotate(
        deducted=_sum_of(Deduction.objects.filter(line=OuterRef("pk")), "line", "amount"),
        usage=_sum_of(UsageRecord.objects.filter(line=OuterRef("pk")), "line", "amount"),
    ).annotate(
        off=_diff(F("deducted"), F("deduction_amount")),
        usage_off=_diff(F("usage"), F("original_amount")),
        payable_off=_diff(F("payable_amount"), F("original_amount") - F("deduction_amount")),
    )
    fields = ("pk", "bill_id", "original_amount", "deduction_amount", "payable_amount")
    rules = {
        "deductions ≠ the line's deduction": _differs("off"),
        "deduction above the original amount or below 0": Q(
            deduction_amount__gt=F("original_amount"),
        ) | Q(deduction_amount__lt=0),
        "payable ≠ original − deduction": _differs("payable_off"),
        "usage ≠ the line's original amount": _differs("usage_off"),
    }
    for rule, condition in rules.items():
        for row in lines.filter(condition).values(*fields, "deducted", "usage").order_by("pk"):
            found.append(Discrepancy(
                rule, f"daily bill line #{row['pk']} (bill #{row['bill_id']})",
                f"original {row['original_amount']}, deduction {row['deduction_amount']}, "
                f"payable {row['payable_amount']}, deductions {money_shown(row['deducted'])}, "
                f"usage {money_shown(row['usage'])}",
            ))
    bills = DailyBill.objects.annotate(
        lines_original=_sum_of(
            DailyBillLine.objects.filter(bill=OuterRef("pk")), "bill", "original_amount",
        ),
        lines_deduction=_sum_of(
            DailyBillLine.objects.filter(bill=OuterRef("pk")), "bill", "deduction_amount",
        ),
        lines_payable=_sum_of(
            DailyBillLine.objects.filter(bill=OuterRef("pk")), "bill", "payable_amount",
        ),
    ).annotate(
        o=_diff(F("lines_original"), F("original_amount")),
        d=_diff(F("lines_deduction"), F("deduction_amount")),
        p=_diff(F("lines_payable"), F("payable_amount")),
    )
    for row in bills.filter(_differs("o") | _differs("d") | _differs("p")).values(
        "pk", "original_amount", "deduction_amount", "payable_amount", "lines_original",
        "lines_deduction", "lines_payable",
    ).order_by("pk"):
        found.append(Discrepancy(
            "bill totals ≠ the sum of its lines", f"daily bill #{row['pk']}",
            f"bill {row['original_amount']}/{row['deduction_amount']}/{row['payable_amount']}"
            f", lines {money_shown(row['lines_original'])}/{money_shown(row['lines_deduction'])}/"
            f"{money_shown(row['lines_payable'])}",
        ))
    return found


def _deduction_checks() -> list[Discrepancy]:
    found = []
    rules = {
        "deduction on another account's bill": ~Q(sub_account_id=F("coupon__sub_account_id"))
        | ~Q(sub_account_id=F("line__bill__sub_account_id")),
        "deduction in another currency than its bill": ~Q(
            coupon__currency=F("line__bill__currency"),
        ),
        "deduction dated off its bill": ~Q(bill_date=F("line__bill__date")),
        "deduction of another partner than its coupon": ~Q(partner_id=F("coupon__partner_id")),
        "deduction not above 0": Q(amount__lte=0),
    }
    for rule, condition in rules.items():
        for row in Deduction.objects.filter(condition).values(
            "pk", "coupon_id", "line_id", "amount",
        ).order_by("pk"):
            found.append(Discrepancy(
                rule, f"deduction #{row['pk']}",
                f"coupon #{row['coupon_id']}, line #{row['line_id']}, amount {row['amount']}",
            ))
    return found


def _usage_checks() -> list[Discrepancy]:
    found = []
    misplaced = UsageRecord.objects.filter(line__isnull=False).filter(
        ~Q(sub_account_id=F("line__bill__sub_account_id"))
        | ~Q(usage_date=F("line__bill__date"))
        | ~Q(product_id=F("line__product_id")),
    )
    for row in misplaced.values("pk", "line_id").order_by("pk"):
        found.append(Discrepancy(
            "usage on a bill line of another account, day or product",
            f"usage record #{row['pk']}", f"line #{row['line_id']}",
        ))
    billed_day = DailyBill.objects.filter(
        sub_account_id=OuterRef("sub_account_id"), date=OuterRef("usage_date"),
    )
    for row in UsageRecord.objects.filter(line__isnull=True).filter(Exists(billed_day)).values(
        "pk", "sub_account_id", "usage_date",
    ).order_by("pk"):
        found.append(Discrepancy(
            "usage left off its day's bill", f"usage record #{row['pk']}",
            f"account #{row['sub_account_id']} on {row['usage_date']}",
        ))
    return found


def _month_checks(first: date) -> list[Discrepancy]:
    last = month_end(first)
    found = []
    daily = DailyBill.objects.filter(date__gte=first, date__lte=last)
    expected = {
        row["sub_account_id"]: row
        for row in daily.order_by().values("sub_account_id").annotate(
            o=Sum("original_amount"), d=Sum("deduction_amount"), p=Sum("payable_amount"),
        )
    }
    actual = {
        row["sub_account_id"]: row
        for row in MonthlyBill.objects.filter(month=first).values(
            "pk", "sub_account_id", "original_amount", "deduction_amount", "payable_amount",
        )
    }
    for account_id in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(account_id), actual.get(account_id)
        where = f"monthly bill {first:%Y-%m} of account #{account_id}"
        if have is None:
            found.append(Discrepancy("daily bills without a monthly bill", where, "missing"))
            continue
        if want is None:
            want = {"o": ZERO, "d": ZERO, "p": ZERO}
        pairs = [(want["o"], have["original_amount"]), (want["d"], have["deduction_amount"]),
                 (want["p"], have["payable_amount"])]
        if any(abs(Decimal(w) - h) > TOLERANCE for w, h in pairs):
            found.append(Discrepancy(
                "monthly bill ≠ the sum of its daily bills", f"{where} (#{have['pk']})",
                "daily " + "/".join(str(money_shown(w)) for w, _ in pairs)
                + ", monthly " + "/".join(str(h) for _, h in pairs),
            ))
    # Per product and per coupon.
    keyed = [
        (
            "monthly line ≠ the sum of its daily lines",
            DailyBillLine.objects.filter(bill__in=daily).values(
                key_a=F("bill__sub_account_id"), key_b=F("product_id"),
            ).annotate(total=Sum("original_amount"), deducted=Sum("deduction_amount")),
            MonthlyBillLine.objects.filter(bill__month=first).values(
                key_a=F("bill__sub_account_id"), key_b=F("product_id"),
                total=F("original_amount"), deducted=F("deduction_amount"),
            ),
            "product",
        ),
        (
            "monthly coupon deduction ≠ the sum of its deductions",
            Deduction.objects.filter(bill_date__gte=first, bill_date__lte=last).values(
                key_a=F("sub_account_id"), key_b=F("coupon_id"),
            ).annotate(total=Sum("amount"), deducted=Count("pk")),
            MonthlyCouponDeduction.objects.filter(bill__month=first).values(
                key_a=F("bill__sub_account_id"), key_b=F("coupon_id"),
                total=F("amount"), deducted=F("deduction_count"),
            ),
            "coupon",
        ),
    ]
    for rule, want_qs, have_qs, what in keyed:
        want = defaultdict(lambda: (ZERO, ZERO))
        for row in want_qs.order_by():
            want[(row["key_a"], row["key_b"])] = (Decimal(row["total"]), Decimal(row["deducted"]))
        have = defaultdict(lambda: (ZERO, ZERO))
        for row in have_qs.order_by():
            have[(row["key_a"], row["key_b"])] = (Decimal(row["total"]), Decimal(row["deducted"]))
        for key in sorted(want.keys() | have.keys()):
            if any(abs(w - h) > TOLERANCE for w, h in zip(want[key], have[key], strict=True)):
                found.append(Discrepancy(
                    rule, f"monthly bill {first:%Y-%m} of account #{key[0]}, {what} #{key[1]}",
                    f"daily {money_shown(want[key][0])}/{want[key][1]}, monthly "
                    f"{money_shown(have[key][0])}/{have[key][1]}",
                ))
    return found


def ledger_check() -> list[Discrepancy]:
    """Every row that breaks a money invariant; an empty list when none does."""
    found = [*_coupon_checks(), *_line_checks(), *_deduction_checks(), *_usage_checks(),
             *usage_stats_check()]
    months = set(ClosedMonth.objects.values_list("month", flat=True))
    months |= set(MonthlyBill.objects.values_list("month", flat=True).distinct())
    for first in sorted(months):
        found.extend(_month_checks(first))
    return found
