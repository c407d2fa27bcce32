"""Reads behind the billing pages, scoped to one partner or one sub-account."""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, ExpressionWrapper, F, Max, Min, Prefetch, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import Product
from billing.models import (
    ClosedMonth,
    CouponStat,
    DailyBill,
    Deduction,
    DeductionStat,
    MonthlyBill,
    MonthlyBillLine,
    MonthlyCouponDeduction,
)
from billing.month_close import month_sums
from billing.periods import month_end
from couponplatform.money import money_field, quantize
from couponplatform.routers import read_alias
from coupons.models import Coupon, CouponKind


def used_expression():
    return ExpressionWrapper(
        F("amount") - F("balance") - F("voided_amount"), output_field=money_field(),
    )


def coupon_usage_list(*, partner) -> QuerySet[Coupon]:
    """Every coupon the partner issued, for Coupon Usage: its list and exports, and its
    totals and chart when a search makes them come from the coupons. A heavy read: from
    the replica when `read_alias` allows (the querysets made from it stay there)."""
    return (
        Coupon.objects.using(read_alias()).filter(partner=partner)
        .select_related("sub_account", "template")
        .annotate(used=used_expression())
    )


# Coupon Usage's totals and chart. They come from the usage statistics (billing/stats.py:
# delta rows the database's triggers write on every change of a coupon or a deduction,
# folded each minute into one row per key), whose size follows the partner's templates,
# statuses and release days, not its coupons: the benchmark's distributor of 1,000,000
# coupons has about 1,200 coupon rows and 15,500 chart rows for 60 days (docs/BENCHMARKS.md,
# usage_pages). The sub-account search is a text match on the account's ID or name, which
# the statistics do not key on: with it the figures are summed from the coupons themselves,
# as before; it selects one or a few accounts, so few coupons.

CHART_DAYS = 60
# The page's filters the statistics answer, as lookups on CouponStat and DeductionStat.
STAT_LOOKUPS = {
    "template": "template_id",
    "status": "status",
    "cost_bearer": "cost_bearer",
    "released_from": "released_on__gte",
    "released_to": "released_on__lte",
    "valid_until_from": "valid_until__gte",
    "valid_until_to": "valid_until__lte",
}
HALF_CENT = Decimal("0.005")


def usage_stat_lookups(cleaned: dict) -> dict | None:
    """The filter form's values as lookups on the statistics; None when a filter is set
    that they can not answer (the sub-account search, or a filter added later and not
    mapped in STAT_LOOKUPS): then the figures come from the coupons."""
    lookups = {}
    for name, value in cleaned.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if name not in STAT_LOOKUPS:
            return None
        lookups[STAT_LOOKUPS[name]] = value.pk if name == "template" else value
    return lookups


STAT_KEY = ("template_id", "status", "cost_bearer", "currency", "released_on", "valid_until")


def coupon_usage_narrowed(queryset: QuerySet[Coupon], *, partner,
                          cleaned: dict | None) -> QuerySet[Coupon]:
    """The filtered coupons of a status filter, their release bounded by the first and last
    release day the usage statistics hold coupons of that status (and the other filters)
    on: the same rows. No index holds the status, which posting changes (docs/BENCHMARKS.md,
    "The write path"), and statuses follow age (a platform-borne coupon expires a year after
    its release), so without the bound a page of expired coupons newest first would read a
    year of coupons that are not. One read of the partner's statistics rows."""
    lookups = usage_stat_lookups(cleaned) if cleaned else None
    if not lookups or "status" not in lookups:
        return queryset
    # Read where the coupons are read (the replica, when read_alias allows).
    days = (CouponStat.objects.using(queryset.db).filter(partner_id=partner.pk, **lookups)
            .values(*STAT_KEY).annotate(n=Sum("coupons")).filter(n__gt=0)
            .aggregate(first=Min("released_on"), last=Max("released_on")))
    if days["first"] is None:  # no such coupon: a range with nothing in it
        days = {"first": date.min + timedelta(days=1), "last": date.min}
    try:
        start = timezone.make_aware(datetime.combine(days["first"], time.min))
        end = timezone.make_aware(datetime.combine(days["last"] + timedelta(days=1), time.min))
    except OverflowError:
        return queryset
    return queryset.filter(released_at__gte=start, released_at__lt=end)


def _totals_rows(rows) -> list[dict]:
    out = []
    for row in rows:
        amount, remaining, voided = (quantize(row[k]) for k in ("a", "b", "v"))
        out.append({"currency": row["currency"], "amount": amount, "remaining": remaining,
                    "voided": voided, "used": amount - remaining - voided})
    return out


def coupon_usage_totals(queryset: QuerySet[Coupon]) -> list[dict]:
    """Totals per currency of the given coupons, summed over the rows."""
    return _totals_rows(
        queryset.order_by().values("currency").annotate(
            a=Sum("amount"), b=Sum("balance"), v=Sum("voided_amount"),
        ).order_by("currency")
    )


def coupon_usage_totals_from_stats(*, partner, lookups: dict) -> list[dict]:
    """The same totals of the partner's coupons matching `lookups` (usage_stat_lookups),
    from the statistics. A key whose coupons all left it (a status change) sums to 0."""
    return _totals_rows(
        CouponStat.objects.using(read_alias()).filter(partner_id=partner.pk, **lookups)
        .values("currency")
        .annotate(n=Sum("coupons"), a=Sum("amount"), b=Sum("balance"), v=Sum("voided"))
        .exclude(n=0)
        .order_by("currency")
    )


def _chart_start(days: int, today: date | None) -> date:
    # Bills are made for past days, so the window ends today and reaches `days` days back.
    return (today or timezone.localdate()) - timedelta(days=days)


def chart_window(*, days: int = CHART_DAYS, today: date | None = None) -> tuple[date, date]:
    """The first and last day of the chart (the days deductions_per_day* read)."""
    today = today or timezone.localdate()
    return _chart_start(days, today), today


def _chart_rows(rows) -> list[dict]:
    # SQLite sums decimals as floats (37.3400000000000); the chart shows cents.
    return [{"bill_date": row["bill_date"], "currency": row["currency"],
             "total": quantize(row["total"])} for row in rows]


def deductions_per_day(*, partner, coupons: QuerySet[Coupon], days: int = CHART_DAYS,
                       today: date | None = None) -> list[dict]:
    """Deductions of the given coupons of the partner per bill day over the last `days`
    days, summed over the deduction rows: those of the coupons' (index deduction_coupon),
    `partner` keeping them to the partner's own."""
    return _chart_rows(
        Deduction.objects.using(coupons.db).filter(
            partner=partner, coupon__in=coupons.order_by().values("pk"),
            bill_date__gte=_chart_start(days, today),
        )
        .values("bill_date", currency=F("coupon__currency"))
        .annotate(total=Sum("amount"))
        .order_by("bill_date", "currency")
    )


def deductions_per_day_from_stats(*, partner, lookups: dict, days: int = CHART_DAYS,
                                  today: date | None = None) -> list[dict]:
    """The same chart of the partner's coupons matching `lookups`, from the statistics."""
    return _chart_rows(
        DeductionStat.objects.using(read_alias()).filter(
            partner_id=partner.pk, bill_date__gte=_chart_start(days, today), **lookups,
        )
        .values("bill_date", "currency")
        .annotate(total=Sum("amount"))
        # Deductions are above 0, so a day sums to 0 only when its coupons all moved to
        # another key; SQLite's float sums may leave a trace of them.
        .filter(total__gte=HALF_CENT)
        .order_by("bill_date", "currency")
    )


def coupon_get(*, partner, pk: int) -> Coupon:
    """One of the partner's coupons; 404 for another partner's (its existence is not
    revealed)."""
    return get_object_or_404(
        Coupon.objects.select_related("sub_account", "template", "partner", "voided_by",
                                      "request"),
        partner=partner, pk=pk,
    )


def coupon_deductions(*, coupon: Coupon) -> QuerySet[Deduction]:
    """What the coupon paid, newest bill day first."""
    return (Deduction.objects.filter(coupon=coupon).select_related("line__product")
            .order_by("-bill_date", "-pk"))


def sub_account_coupon_counts(*, sub_account) -> dict[str, int]:
    """How many of the account's coupons are in each status."""
    return dict(
        Coupon.objects.filter(sub_account=sub_account).order_by()
        .values_list("status").annotate(n=Count("id"))
    )


def sub_account_coupons(*, sub_account, status: str) -> QuerySet[Coupon]:
    deductions = Deduction.objects.select_related("line__product", "line__bill").order_by(
        "bill_date", "pk",
    )
    return (
        Coupon.objects.filter(sub_account=sub_account, status=status)
        .select_related("template", "partner", "voided_by")
        .prefetch_related(Prefetch("deductions", queryset=deductions))
        .annotate(used=used_expression())
        .order_by("valid_until", "id")
    )


def sub_account_daily_bills(*, sub_account) -> QuerySet[DailyBill]:
    return DailyBill.objects.filter(sub_account=sub_account).order_by("-date", "-id")


def sub_account_daily_bills_of_month(*, sub_account, month: date) -> list[DailyBill]:
    return list(
        sub_account_daily_bills(sub_account=sub_account)
        .filter(date__year=month.year, date__month=month.month).order_by("date")
    )


def sub_account_monthly_bills(*, sub_account) -> QuerySet[MonthlyBill]:
    return MonthlyBill.objects.filter(sub_account=sub_account).order_by("-month", "-id")


def sub_account_bill_months(*, sub_account) -> list[date]:
    """The months (first days) in which the account has daily bills, newest first."""
    days = (DailyBill.objects.filter(sub_account=sub_account)
            .dates("date", "month", order="DESC"))
    return list(days)


def daily_bill_get(*, sub_account, day: date) -> DailyBill | None:
    return (
        DailyBill.objects.filter(sub_account=sub_account, date=day)
        .prefetch_related(
            "lines__product",
            Prefetch("lines__deductions",
                     queryset=Deduction.objects.select_related("coupon__template").order_by("pk")),
        )
        .first()
    )


def monthly_bill_get(*, sub_account, month: date) -> MonthlyBill | None:
    """The closed month's bill (see monthly_bill_shown for a month still open)."""
    return (
        MonthlyBill.objects.filter(sub_account=sub_account, month=month)
        .prefetch_related("lines__product", "coupon_deductions__coupon__template")
        .first()
    )


# ---------------------------------------------------------------------------------------
# The monthly bill as the page shows it: the closed month's bill, or the month so far


@dataclass
class MonthlyBillShown:
    """A monthly bill for the page. `closed` False: the month so far, summed from its daily
    bills as the close will sum them (billing/month_close.month_sums); `bill` and its
    `lines` and `coupon_deductions` are then unsaved rows, and change as days are billed."""

    bill: MonthlyBill
    lines: list[MonthlyBillLine]
    coupon_deductions: list[MonthlyCouponDeduction]
    closed: bool


def monthly_bill_shown(*, sub_account, month: date) -> MonthlyBillShown | None:
    """The account's bill of `month` (its first day): the closed bill, or the month so far
    while it is not closed; None when the account has no daily bill in it."""
    bill = monthly_bill_get(sub_account=sub_account, month=month)
    if bill is not None:
        return MonthlyBillShown(bill=bill, lines=list(bill.lines.all()),
                                coupon_deductions=list(bill.coupon_deductions.all()),
                                closed=True)
    if ClosedMonth.objects.filter(month=month).exists():
        return None  # closed with no bill of this account's
    sums = month_sums(first=month, last=month_end(month), account_ids=[sub_account.pk])
    if not sums.bills:
        return None
    return _provisional(sub_account, month, sums)


def open_monthly_bills(*, sub_account) -> list[MonthlyBill]:
    """The account's months with daily bills that are not closed yet, newest first, each
    as an unsaved bill of the month so far (its totals only)."""
    closed = ClosedMonth.objects.order_by("-month").values_list("month", flat=True).first()
    days = DailyBill.objects.filter(sub_account=sub_account)
    if closed is not None:
        days = days.filter(date__gt=month_end(closed))
    bills = []
    for month in days.dates("date", "month", order="DESC"):
        sums = month_sums(first=month, last=month_end(month), account_ids=[sub_account.pk],
                          totals_only=True)
        bills += [_provisional(sub_account, month, sums).bill] if sums.bills else []
    return bills


def _provisional(sub_account, month: date, sums) -> MonthlyBillShown:
    row = sums.bills[0]  # an account is billed in its one currency
    bill = MonthlyBill(sub_account=sub_account, month=month, currency=row["currency"],
                       original_amount=row["original"], deduction_amount=row["deduction"],
                       payable_amount=row["payable"], daily_bill_count=row["days"])
    products = Product.objects.in_bulk({r["product_id"] for r in sums.lines})
    coupons = Coupon.objects.select_related("template").in_bulk(
        {r["coupon_id"] for r in sums.coupons})
    lines = sorted((
        MonthlyBillLine(product=products[r["product_id"]], original_amount=r["original"],
                        deduction_amount=r["deduction"], payable_amount=r["payable"])
        for r in sums.lines), key=lambda line: line.product.code)
    per_coupon = [MonthlyCouponDeduction(coupon=coupons[r["coupon_id"]], amount=r["total"],
                                         deduction_count=r["count"]) for r in sums.coupons]
    return MonthlyBillShown(bill=bill, lines=lines, coupon_deductions=per_coupon, closed=False)


# ---------------------------------------------------------------------------------------
# The sub-account's figures on top of Coupons

EXPIRING_DAYS = 30
EXPIRING_SHOWN = 5


def _spendable(coupons: QuerySet[Coupon]) -> list[dict]:
    """Per currency: the balance of the cash and threshold cash coupons among `coupons`,
    and the discount coupons with their uses left (a discount is a share of a bill, not
    cash: its balance, cap × uses, is not added)."""
    rows = (coupons.order_by().values("currency", "kind")
            .annotate(n=Count("pk"), balance=Sum("balance"), uses=Sum("uses_left")))
    out: dict[str, dict] = {}
    for row in rows:
        entry = out.setdefault(row["currency"], {
            "currency": row["currency"], "balance": Decimal("0.00"), "coupons": 0,
            "discounts": 0, "uses_left": 0})
        if row["kind"] == CouponKind.DISCOUNT:
            entry["discounts"] += row["n"]
            entry["uses_left"] += row["uses"] or 0
        else:
            entry["coupons"] += row["n"]
            entry["balance"] = quantize(entry["balance"] + Decimal(str(row["balance"])))
    return [out[c] for c in sorted(out)]


def sub_account_balances(*, sub_account) -> list[dict]:
    """What the account can still spend, per currency (`_spendable` of its available
    coupons)."""
    return _spendable(Coupon.objects.filter(sub_account=sub_account,
                                            status=Coupon.Status.AVAILABLE))


def sub_account_expiring(*, sub_account, today: date | None = None,
                         days: int = EXPIRING_DAYS) -> tuple[list[Coupon], list[dict]]:
    """Available coupons that expire within `days` days (valid until today … today + days
    − 1): the first EXPIRING_SHOWN by valid until, and what they hold per currency
    (`_spendable`)."""
    today = today or timezone.localdate()
    qs = Coupon.objects.filter(sub_account=sub_account, status=Coupon.Status.AVAILABLE,
                               valid_until__gte=today,
                               valid_until__lt=today + timedelta(days=days))
    shown = list(qs.select_related("template").order_by("valid_until", "id")[:EXPIRING_SHOWN])
    return shown, _spendable(qs)


def deduction_list(*, partner, coupon=None, sub_account=None, date_from: date | None = None,
                   date_to: date | None = None) -> QuerySet[Deduction]:
    """The partner's deductions, by coupon, sub-account or bill-day range (the API's
    list and a coupon's detail), with what a row shows fetched."""
    qs = Deduction.objects.filter(partner=partner).select_related(
        "coupon", "sub_account", "line__product")
    if coupon is not None:
        qs = qs.filter(coupon=coupon)
    if sub_account is not None:
        qs = qs.filter(sub_account=sub_account)
    if date_from is not None:
        qs = qs.filter(bill_date__gte=date_from)
    if date_to is not None:
        qs = qs.filter(bill_date__lte=date_to)
    return qs
