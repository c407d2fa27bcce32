"""Helpers of the billing tests: coupons made directly (their release service is another
app's), usage through the import service, and the money state in comparable form."""
import csv
import io
import itertools
from datetime import date, datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import SubAccount
from billing.models import DailyBill, DailyBillLine, Deduction, MonthlyBill, UsageImport
from billing.usage_import import usage_import
from coupons.models import Coupon, CouponTemplate, IssuanceRecipient, IssuanceRequest
from tests import factories as f

_codes = itertools.count(1)
YEAR_START = date(2025, 1, 1)
YEAR_END = date(2025, 12, 31)


def D(value) -> Decimal:
    return Decimal(str(value))


def _template(partner, kind: str, currency: str) -> CouponTemplate:
    user, _ = get_user_model().objects.get_or_create(username="billing-tests")
    name = f"billing-tests {kind} {currency}"
    template = CouponTemplate.objects.filter(partner=partner, name=name).first()
    if template is None:
        template = CouponTemplate.objects.create(
            partner=partner, name=name, kind=kind, currency=currency,
            face_value=Decimal("1.00"), validity_type="relative", valid_days=365,
            discount_rate=Decimal("10") if kind == "discount" else None,
            discount_uses=1 if kind == "discount" else None,
            min_bill_amount=Decimal("1.00") if kind == "threshold" else None,
            cost_bearer="partner", issue_limit="unlimited", created_by=user,
        )
    return template


def make_coupon(
    account: SubAccount,
    *,
    kind: str = "cash",
    amount="100.00",
    currency: str | None = None,
    valid_from: date = YEAR_START,
    valid_until: date = YEAR_END,
    products: list[str] | None = None,
    min_amount=None,
    rate=None,
    cap=None,
    uses: int | None = None,
    released_at: datetime | None = None,
) -> Coupon:
    """A released coupon of `account`. A discount's amount is cap × uses, as at release."""
    currency = currency or account.currency
    template = _template(account.partner, kind, currency)
    if kind == "discount":
        amount = D(cap) * uses
    amount = D(amount)
    user = template.created_by
    request = IssuanceRequest.objects.create(
        partner=account.partner, template=template, status=IssuanceRequest.Status.ISSUED,
        route=IssuanceRequest.Route.AUTO, cost_bearer="partner", currency=currency,
        unit_value=amount, recipient_count=1, total_amount=amount, submitted_by=user,
    )
    recipient = IssuanceRecipient.objects.create(
        request=request, template=template, sub_account=account, limited=False,
    )
    return Coupon.objects.create(
        code=f"BT{next(_codes):08d}", template=template, request=request, recipient=recipient,
        partner=account.partner, sub_account=account, kind=kind, cost_bearer="partner",
        currency=currency, amount=amount, balance=amount,
        discount_rate=D(rate) if rate is not None else None,
        uses_total=uses, uses_left=uses,
        min_bill_amount=D(min_amount) if min_amount is not None else None,
        all_products=products is None, product_codes=sorted(products or []),
        valid_from=valid_from, valid_until=valid_until,
        released_at=released_at or timezone.now(),
    )


def usage_csv(rows, *, header: str = "account_id,date,product_code,amount") -> io.BytesIO:
    """rows: (account or account_id, date or text, product code, amount)."""
    out = io.StringIO()
    out.write(header + "\n")
    writer = csv.writer(out, lineterminator="\n")
    for account, day, product, amount in rows:
        account_id = account.account_id if isinstance(account, SubAccount) else account
        writer.writerow([account_id, day, product, amount])
    return io.BytesIO(out.getvalue().encode())


def import_usage(rows, **kwargs) -> UsageImport:
    return usage_import(file=usage_csv(rows), file_name="test.csv", **kwargs)


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
