"""What the API reads and writes, as pydantic schemas (the OpenAPI schema is made from
them). Amounts are strings with two decimals beside a currency code, never numbers; times
are ISO 8601 with the platform's offset; dates are YYYY-MM-DD in the platform's time zone."""
from datetime import date, datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field, StringConstraints

Money = Annotated[str, StringConstraints(pattern=r"^-?[0-9]+\.[0-9]{2}$")]
# What a client may send as an amount: text as people write it (parse_amount reads it).
AmountText = Annotated[str, StringConstraints(max_length=40)]
Currency = Literal["USD", "CNY", "EUR", "SGD"]
Kind = Literal["cash", "threshold", "discount"]
Bearer = Literal["platform", "partner"]


class ErrorDetail(Schema):
    param: str | None
    message: str
    code: str | None = None
    account_ids: list[str] | None = None


class ErrorObject(Schema):
    type: str
    code: str
    message: str
    param: str | None
    request_id: str
    errors: list[ErrorDetail] | None = None


class ErrorOut(Schema):
    error: ErrorObject


class Page(Schema):
    object: Literal["list"] = "list"
    has_more: bool
    next_cursor: str | None


# ---------------------------------------------------------------------------------------


class PartnerOut(Schema):
    object: Literal["partner"] = "partner"
    id: int
    name: str
    kind: str
    tier: int
    coupon_function: bool
    requires_bd_approval: bool
    key_name: str
    key_role: Literal["read_only", "operator"]


class TemplateIn(Schema):
    name: Annotated[str, StringConstraints(max_length=120)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    kind: Kind
    currency: Currency
    face_value: AmountText | None = Field(
        None, description="Cash and threshold: the value; discount: the cap per use.")
    discount_rate: AmountText | None = Field(None, description="Discount: percent off, 1–99.")
    discount_uses: int | None = Field(None, ge=0, le=2_147_483_647)
    min_bill_amount: AmountText | None = Field(None, description="Threshold cash's minimum.")
    validity_type: Literal["fixed", "relative"]
    valid_from: date | None = None
    valid_until: date | None = None
    valid_days: int | None = Field(None, ge=0, le=32_767)
    all_products: bool = True
    products: list[Annotated[str, StringConstraints(max_length=40)]] = Field(
        default_factory=list, max_length=1000, description="Product codes.")
    cost_bearer: Bearer
    issue_limit: Literal["one", "unlimited"]
    release_cap_count: int | None = Field(None, ge=0, le=2_147_483_647)
    release_cap_amount: AmountText | None = None


class TemplateOut(Schema):
    object: Literal["template"] = "template"
    id: int
    name: str
    description: str
    status: Literal["active", "disabled"]
    kind: Kind
    currency: Currency
    face_value: Money
    discount_rate: str | None
    discount_uses: int | None
    min_bill_amount: Money | None
    validity_type: Literal["fixed", "relative"]
    valid_from: date | None
    valid_until: date | None
    valid_days: int | None
    all_products: bool
    products: list[str]
    cost_bearer: Bearer
    issue_limit: Literal["one", "unlimited"]
    release_cap_count: int | None
    release_cap_amount: Money | None
    released_count: int
    released_amount: Money
    created_at: datetime
    disabled_at: datetime | None


class TemplatePage(Page):
    data: list[TemplateOut]


class Refusal(Schema):
    code: str
    message: str


class SubAccountOut(Schema):
    object: Literal["sub_account"] = "sub_account"
    account_id: str
    name: str
    type: Literal["customer", "tier2_reseller"]
    currency: Currency
    created_at: datetime
    eligible: bool | None = Field(
        None, description="With `template_id`: whether it can receive that template.")
    refusals: list[Refusal] | None = None


class SubAccountPage(Page):
    data: list[SubAccountOut]


class RequestIn(Schema):
    template_id: int = Field(ge=1, le=9_223_372_036_854_775_807)
    account_ids: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        min_length=1, max_length=10_000)


class RequestOut(Schema):
    object: Literal["issuance_request"] = "issuance_request"
    id: int
    template_id: int
    status: Literal["pending", "approved", "issued", "failed", "rejected", "cancelled",
                    "withdrawn"]
    route: Literal["bd", "auto"]
    cost_bearer: Bearer
    currency: Currency
    unit_value: Money
    recipient_count: int
    total_amount: Money
    submitted_at: datetime
    decided_at: datetime | None
    approver: str | None = Field(description="Who decided; null when auto-approved or "
                                 "still pending.")
    reason: str
    issued_at: datetime | None
    released_count: int
    release_progress: float = Field(description="Share of the coupons released, 0–1.")


class RequestPage(Page):
    data: list[RequestOut]


class DeductionOut(Schema):
    object: Literal["deduction"] = "deduction"
    id: int
    coupon_code: str
    account_id: str
    bill_date: date
    product_code: str
    amount: Money
    currency: Currency
    created_at: datetime


class DeductionPage(Page):
    data: list[DeductionOut]


class CouponOut(Schema):
    object: Literal["coupon"] = "coupon"
    code: str
    template_id: int
    request_id: int
    account_id: str
    kind: Kind
    cost_bearer: Bearer
    currency: Currency
    amount: Money
    used: Money
    balance: Money
    voided_amount: Money
    discount_rate: str | None
    uses_total: int | None
    uses_left: int | None
    min_bill_amount: Money | None
    all_products: bool
    product_codes: list[str]
    valid_from: date
    valid_until: date
    status: Literal["available", "used_up", "expired", "voided"]
    released_at: datetime
    void_reason: str
    deductions: list[DeductionOut] | None = None


class CouponPage(Page):
    data: list[CouponOut]


class VoidIn(Schema):
    codes: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        min_length=1, max_length=1000)
    reason: Annotated[str, StringConstraints(max_length=2000)]


class VoidResult(Schema):
    code: str
    result: Literal["voided", "refused"]
    error: Refusal | None = None
    coupon: CouponOut | None = None


class VoidOut(Schema):
    object: Literal["void_result"] = "void_result"
    voided: int
    refused: int
    results: list[VoidResult]


class UsageTotal(Schema):
    currency: Currency
    amount: Money
    used: Money
    remaining: Money
    voided: Money


class UsageOut(Schema):
    object: Literal["usage_totals"] = "usage_totals"
    totals: list[UsageTotal]
