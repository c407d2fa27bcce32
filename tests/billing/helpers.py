"""Helpers of the billing tests: amounts, products, and the money state in comparable form.
(Coupons made directly and usage through the import service are in tests/factories.py.)"""
from decimal import Decimal

from accounts.models import SubAccount
from billing.models import DailyBill, DailyBillLine, Deduction, MonthlyBill
from coupons.models import Coupon
from tests import factories as f


def D(value) -> Decimal:
    return Decimal(str(value))


def products(*codes: str) -> list:
    return [f.make_product(code) for code in codes]


def money_state(account: SubAccount) -> dict:
    """The account's coupons, bills, lines and deductions, with ids replaced by positions,
    so two accounts built alike compare equal when their money came out alike."""
    coupons = list(Coupon.objects.filter(sub_account=account).order_by("pk"))
    position = {c.pk: i for i, c in enumerate(coupons)}
    return {
        "coupons": [(position[c.pk], c.balance, c.status, c.uses_left, c.voided_amount)
                    for c in coupons],
        "bills": list(
            DailyBill.objects.filter(sub_account=account).order_by("date").values_list(
                "date", "original_amount", "deduction_amount", "payable_amount",
            )
        ),
        "posted": [
            posted_at is not None
            for posted_at in DailyBill.objects.filter(sub_account=account).order_by("date")
            .values_list("posted_at", flat=True)
        ],
        "lines": list(
            DailyBillLine.objects.filter(bill__sub_account=account)
            .order_by("bill__date", "product__code").values_list(
                "bill__date", "product__code", "original_amount", "deduction_amount",
                "payable_amount",
            )
        ),
        "deductions": sorted(
            (position[coupon_id], day, code, amount)
            for coupon_id, day, code, amount in Deduction.objects.filter(
                sub_account=account,
            ).values_list("coupon_id", "bill_date", "line__product__code", "amount")
        ),
        "monthly": list(
            MonthlyBill.objects.filter(sub_account=account).order_by("month").values_list(
                "month", "original_amount", "deduction_amount", "payable_amount",
            )
        ),
    }
