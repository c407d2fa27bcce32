"""Reads behind the billing pages, scoped to one partner or one sub-account."""
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, ExpressionWrapper, F, Prefetch, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone

from billing.models import CouponStat, DailyBill, Deduction, DeductionStat, MonthlyBill
from couponplatform.money import money_field, quantize
from coupons.models import Coupon


def used_expression():
    return ExpressionWrapper(
        F("amount") - F("balance") - F("voided_amount"), output_field=money_field(),
    )


def coupon_usage_list(*, partner) -> QuerySet[Coupon]:
    """Every coupon the partner issued, for Coupon Usage."""
    return (
        Coupon.objects.filter(partner=partner)
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
        CouponStat.objects.filter(partner_id=partner.pk, **lookups)
        .values("currency")
        .annotate(n=Sum("coupons"), a=Sum("amount"), b=Sum("balance"), v=Sum("voided"))
        .exclude(n=0)
        .order_by("currency")
    )


def _chart_start(days: int, today: date | None) -> date:
    # Bills are made for past days, so the window ends today and reaches `days` days back.
    return (today or timezone.localdate()) - timedelta(days=days)


def _chart_rows(rows) -> list[dict]:
    # SQLite sums decimals as floats (37.3400000000000); the chart shows cents.
    return [{"bill_date": row["bill_date"], "currency": row["currency"],
             "total": quantize(row["total"])} for row in rows]


def deductions_per_day(*, partner, coupons: QuerySet[Coupon], days: int = CHART_DAYS,
                       today: date | None = None) -> list[dict]:
    """Deductions of the given coupons of the partner per bill day over the last `days`
    days, summed over the deduction rows (`partner` keeps the scan on the partner's own
    deductions, index deduction_partner_day)."""
    return _chart_rows(
        Deduction.objects.filter(
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
        DeductionStat.objects.filter(
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
        Coupon.objects.select_related("sub_account", "template", "partner"),
        partner=partner, pk=pk,
    )


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
        .select_related("template")
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
    return (
        MonthlyBill.objects.filter(sub_account=sub_account, month=month)
        .prefetch_related("lines__product", "coupon_deductions__coupon__template")
        .first()
    )
