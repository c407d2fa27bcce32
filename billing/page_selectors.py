"""Reads behind the billing pages, scoped to one partner or one sub-account."""
from datetime import date, timedelta

from django.db.models import DecimalField, ExpressionWrapper, F, Prefetch, QuerySet, Sum

from billing.models import DailyBill, Deduction, MonthlyBill
from couponplatform.money import quantize
from coupons.models import Coupon

MONEY = DecimalField(max_digits=18, decimal_places=2)


def used_expression():
    return ExpressionWrapper(F("amount") - F("balance") - F("voided_amount"), output_field=MONEY)


def coupon_usage_list(*, partner) -> QuerySet[Coupon]:
    """Every coupon the partner issued, for Coupon Usage."""
    return (
        Coupon.objects.filter(partner=partner)
        .select_related("sub_account", "template")
        .annotate(used=used_expression())
    )


def coupon_usage_totals(queryset: QuerySet[Coupon]) -> list[dict]:
    rows = list(
        queryset.order_by().values("currency").annotate(
            amount_sum=Sum("amount"), remaining=Sum("balance"), voided=Sum("voided_amount"),
        ).order_by("currency")
    )
    for row in rows:
        row["amount"] = row.pop("amount_sum")
        row["used"] = row["amount"] - row["remaining"] - row["voided"]
    return rows


def deductions_per_day(*, coupons: QuerySet[Coupon], days: int = 60,
                       today: date | None = None) -> list[dict]:
    """Deductions of the given coupons per bill day over the last `days` days."""
    from django.utils import timezone

    today = today or timezone.localdate()
    # Bills are made for past days, so the window ends today and reaches `days` days back.
    start = today - timedelta(days=days)
    rows = (
        Deduction.objects.filter(coupon__in=coupons.order_by().values("pk"), bill_date__gte=start)
        .values("bill_date", "coupon__currency")
        .annotate(total=Sum("amount"))
        .order_by("bill_date")
    )
    # SQLite sums decimals as floats (37.3400000000000); the chart shows cents.
    return [{**row, "total": quantize(row["total"])} for row in rows]


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
