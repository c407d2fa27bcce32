"""The ledger check of PRODUCT §7: every money invariant, verified over the whole database.

Each rule is one set-based query (or one per closed month), so the check reads each table a
few times whatever its size. Sums are compared with a half-cent tolerance: PostgreSQL sums
Decimals exactly, SQLite in floating point, and real amounts are whole cents either way.
"""
from collections import defaultdict
from dataclasses import dataclass
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
from django.db.models.functions import Coalesce, TruncDate

from billing.models import (
    ClosedMonth,
    CouponStat,
    DailyBill,
    DailyBillLine,
    Deduction,
    DeductionStat,
    MonthlyBill,
    MonthlyBillLine,
    MonthlyCouponDeduction,
    UsageRecord,
)
from billing.periods import month_end
from couponplatform.money import ZERO, money_field
from coupons.models import Coupon, CouponKind

TOLERANCE = Decimal("0.005")


@dataclass(frozen=True)
class Discrepancy:
    rule: str
    obj: str
    detail: str

    def __str__(self) -> str:
        return f"{self.obj}: {self.rule} ({self.detail})"


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


def _money(value) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"))


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
            f"deductions {_money(c['deducted'])}, amount {c['amount']}, balance "
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
            f"{c['deduction_count']} deductions, uses {c['uses_total']} total and "
            f"{c['uses_left']} left",
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
                f"payable {row['payable_amount']}, deductions {_money(row['deducted'])}, "
                f"usage {_money(row['usage'])}",
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
            f", lines {_money(row['lines_original'])}/{_money(row['lines_deduction'])}/"
            f"{_money(row['lines_payable'])}",
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
                "daily " + "/".join(str(_money(w)) for w, _ in pairs)
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
                    f"daily {_money(want[key][0])}/{want[key][1]}, monthly "
                    f"{_money(have[key][0])}/{have[key][1]}",
                ))
    return found


STAT_KEY = ("partner_id", "template_id", "status", "cost_bearer", "currency", "released_on",
            "valid_until")


def _stat_key_name(key: tuple) -> str:
    partner, template, status, bearer, currency, released_on, valid_until, *day = key
    return (f"partner #{partner}, template #{template}, {status}, {bearer}-borne, {currency}, "
            f"released {released_on}, valid until {valid_until}"
            + (f", bill day {day[0]}" if day else ""))


STAT_MEASURE_NAMES = {"n": "count", "amount_sum": "amount", "balance_sum": "balance",
                      "voided_sum": "voided"}


def _shown(measure: str, value: Decimal) -> str:
    return str(int(value)) if measure == "n" else str(_money(value))


def _stats_compare(rule: str, what: str, want_qs: QuerySet, have_qs: QuerySet,
                   key: tuple[str, ...], measures: tuple[str, ...]) -> list[Discrepancy]:
    """Each key whose figures in the statistics differ from the rows' own, either way."""
    def by_key(qs):
        return {tuple(row[k] for k in key): tuple(Decimal(str(row[m] or 0)) for m in measures)
                for row in qs.order_by()}

    want, have = by_key(want_qs), by_key(have_qs)
    zero = tuple(ZERO for _ in measures)
    found = []
    for k in sorted(want.keys() | have.keys(), key=lambda k: tuple(map(str, k))):
        w, h = want.get(k, zero), have.get(k, zero)
        if any(abs(a - b) > TOLERANCE for a, b in zip(w, h, strict=True)):
            found.append(Discrepancy(
                rule, f"{what} of {_stat_key_name(k)}",
                "rows " + "/".join(_shown(m, a) for m, a in zip(measures, w, strict=True))
                + ", statistics " + "/".join(_shown(m, b) for m, b in zip(measures, h,
                                                                             strict=True))
                + f" ({'/'.join(STAT_MEASURE_NAMES.get(m, m) for m in measures)})",
            ))
    return found


def usage_stats_check() -> list[Discrepancy]:
    """The Coupon Usage statistics (billing/stats.py), summed per key, equal the same sums
    over the coupons and deductions themselves: the triggers keep them, so a difference is
    a write that slipped past them or a compaction that lost a row."""
    coupon_key = {k: F(k) for k in STAT_KEY if k != "released_on"}
    coupon_key["released_on"] = TruncDate("released_at")
    deduction_key = {k: F(f"coupon__{k}") for k in STAT_KEY if k != "released_on"}
    deduction_key["released_on"] = TruncDate("coupon__released_at")
    deduction_key["bill"] = F("bill_date")
    coupon_measures = ("n", "amount_sum", "balance_sum", "voided_sum")
    return [
        *_stats_compare(
            "coupon statistics ≠ the coupons", "coupons",
            Coupon.objects.values(**{f"k_{k}": v for k, v in coupon_key.items()}).annotate(
                n=Count("pk"), amount_sum=Sum("amount"), balance_sum=Sum("balance"),
                voided_sum=Sum("voided_amount"),
            ),
            CouponStat.objects.values(**{f"k_{k}": F(k) for k in STAT_KEY}).annotate(
                n=Sum("coupons"), amount_sum=Sum("amount"), balance_sum=Sum("balance"),
                voided_sum=Sum("voided"),
            ),
            tuple(f"k_{k}" for k in STAT_KEY), coupon_measures,
        ),
        *_stats_compare(
            "deduction statistics ≠ the deductions", "deductions",
            Deduction.objects.values(**{f"k_{k}": v for k, v in deduction_key.items()})
            .annotate(amount_sum=Sum("amount")),
            DeductionStat.objects.values(
                **{f"k_{k}": F(k) for k in STAT_KEY}, k_bill=F("bill_date"),
            ).annotate(amount_sum=Sum("amount")),
            (*(f"k_{k}" for k in STAT_KEY), "k_bill"), ("amount_sum",),
        ),
    ]


def ledger_check() -> list[Discrepancy]:
    """Every row that breaks a money invariant of PRODUCT §7; an empty list when none does."""
    found = [*_coupon_checks(), *_line_checks(), *_deduction_checks(), *_usage_checks(),
             *usage_stats_check()]
    months = set(ClosedMonth.objects.values_list("month", flat=True))
    months |= set(MonthlyBill.objects.values_list("month", flat=True).distinct())
    for first in sorted(months):
        found.extend(_month_checks(first))
    return found
