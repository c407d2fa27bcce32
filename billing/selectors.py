"""Reads of billing for the sub-account's and partner's pages, scoped to their tenant and
with relations fetched, so a page's query count does not grow with its rows."""
from datetime import date

from django.db.models import Count, Prefetch, QuerySet, Sum

from billing.models import DailyBill, DailyBillLine, Deduction, MonthlyBill
from couponplatform.accounts.models import Partner, SubAccount
from coupons.models import Coupon


def daily_bill_list(*, sub_account: SubAccount) -> QuerySet[DailyBill]:
    return DailyBill.objects.filter(sub_account=sub_account).order_by("-date", "-id")


def daily_bill_get(*, sub_account: SubAccount, bill_date: date) -> DailyBill | None:
    """The day's bill with its lines and each line's deductions and their coupons."""
    return (
        DailyBill.objects.filter(sub_account=sub_account, date=bill_date)
        .prefetch_related(
            Prefetch(
                "lines",
                queryset=DailyBillLine.objects.select_related("product")
                .prefetch_related(
                    Prefetch(
                        "deductions",
                        queryset=Deduction.objects.select_related("coupon").order_by("pk"),
                    ),
                )
                .order_by("product__code", "pk"),
            ),
        )
        .first()
    )


def monthly_bill_list(*, sub_account: SubAccount) -> QuerySet[MonthlyBill]:
    return MonthlyBill.objects.filter(sub_account=sub_account).order_by("-month", "-id")


def monthly_bill_get(*, sub_account: SubAccount, month: date) -> MonthlyBill | None:
    return (
        MonthlyBill.objects.filter(sub_account=sub_account, month=month)
        .prefetch_related("lines__product", "coupon_deductions__coupon")
        .first()
    )


def coupon_deduction_list(*, sub_account: SubAccount, coupon: Coupon) -> QuerySet[Deduction]:
    """A coupon's deductions with date, product, bill and amount (empty for a foreign coupon)."""
    return (
        Deduction.objects.filter(sub_account=sub_account, coupon=coupon)
        .select_related("line__product", "line__bill")
        .order_by("-bill_date", "-id")
    )


def deductions_per_day(
    *, partner: Partner, date_from: date | None = None, date_to: date | None = None,
    coupon_ids: QuerySet | None = None,
) -> QuerySet:
    """Rows of (bill_date, total, count) for the partner's coupons: the usage page's chart."""
    qs = Deduction.objects.filter(partner=partner)
    if date_from:
        qs = qs.filter(bill_date__gte=date_from)
    if date_to:
        qs = qs.filter(bill_date__lte=date_to)
    if coupon_ids is not None:
        qs = qs.filter(coupon_id__in=coupon_ids)
    return (
        qs.order_by("bill_date").values("bill_date")
        .annotate(total=Sum("amount"), count=Count("pk"))
    )
