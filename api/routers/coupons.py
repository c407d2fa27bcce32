"""Coupons (Coupon Usage's filters and sorts, through its own FilterSet), a coupon with its
deductions, voiding in batches, deductions, and Coupon Usage's totals."""
from datetime import date
from typing import Literal

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema
from pydantic import Field

from accounts.selectors import sub_account_list
from api.common import ERRORS, IdempotencyKey, dump, partner_of, user_of
from api.errors import ApiError
from api.idempotency import idempotent_post
from api.pagination import PageParams, page
from api.presenters import coupon_out, deduction_out, money
from api.schemas import (
    Bearer,
    CouponOut,
    CouponPage,
    DeductionPage,
    UsageOut,
    VoidIn,
    VoidOut,
)
from billing import selectors
from billing.coupon_status import coupons_void
from billing.filters import CouponUsageFilter

router = Router(tags=["Coupons"])

# Each sort is one index's order (coupons' indexes by partner), unique by id last.
SORTS = {
    "-released_at": ("-released_at", "-id"), "released_at": ("released_at", "id"),
    "amount": ("amount", "id"), "-amount": ("-amount", "-id"),
    "balance": ("balance", "id"), "-balance": ("-balance", "-id"),
    "valid_until": ("valid_until", "id"), "-valid_until": ("-valid_until", "-id"),
}
Sort = Literal["-released_at", "released_at", "amount", "-amount", "balance", "-balance",
               "valid_until", "-valid_until"]


class CouponFilters(Schema):
    template_id: int | None = Field(None, ge=1, le=9_223_372_036_854_775_807)
    sub_account: str | None = Field(
        None, max_length=100, description="The start of an account ID, or part of a name.")
    status: Literal["available", "used_up", "expired", "voided"] | None = None
    cost_bearer: Bearer | None = None
    released_from: date | None = None
    released_to: date | None = None
    valid_until_from: date | None = None
    valid_until_to: date | None = None


def _filtered(request, filters: CouponFilters):
    """Coupon Usage's FilterSet over the partner's coupons, and its cleaned values."""
    partner = partner_of(request)
    request.partner = partner  # scopes the template filter's choices, as on the page
    data = {("template" if k == "template_id" else k): (v.isoformat() if hasattr(
        v, "isoformat") else str(v)) for k, v in filters.model_dump().items() if v is not None}
    filterset = CouponUsageFilter(data, queryset=selectors.coupon_usage_list(partner=partner),
                                  request=request)
    if not filterset.is_valid():
        errors = [{"param": "template_id" if field == "template" else field,
                   "message": message}
                  for field, messages in filterset.errors.items() for message in messages]
        raise ApiError(422, "parameter_invalid", "; ".join(
            f"{e['param']}: {e['message']}" for e in errors), param=errors[0]["param"],
            errors=errors)
    return filterset.qs, filterset.form.cleaned_data


@router.get("/coupons", response={200: CouponPage, **ERRORS}, summary="List coupons")
def coupon_list(request, filters: Query[CouponFilters], params: Query[PageParams],
                sort: Sort = "-released_at"):
    qs, _cleaned = _filtered(request, filters)
    return page(qs, order=SORTS[sort], params=params, cursor_field="code", present=coupon_out,
                anchor_qs=selectors.coupon_usage_list(partner=partner_of(request)))


def _void(request, payload: VoidIn) -> tuple[int, dict]:
    results = coupons_void(partner=partner_of(request), codes=payload.codes,
                           acting_user=user_of(request), reason=payload.reason)
    out = [{"code": code, "result": "voided" if coupon else "refused",
            "coupon": coupon_out(coupon) if coupon else None,
            "error": None if coupon else {"code": "not_voided", "message": why}}
           for code, coupon, why in results]
    voided = sum(1 for r in out if r["result"] == "voided")
    return 200, dump(VoidOut, {"voided": voided, "refused": len(out) - voided,
                               "results": out})


@router.post("/coupons/void", response={200: VoidOut, **ERRORS},
             summary="Void coupons (up to 1,000)")
def coupon_void_batch(request, payload: VoidIn, idempotency_key: str | None = IdempotencyKey):
    return idempotent_post(request, lambda: _void(request, payload))


# After /coupons/void, so that route is not read as a coupon's code.
@router.get("/coupons/{code}", response={200: CouponOut, **ERRORS},
            summary="Get a coupon with its deductions")
def coupon_get(request, code: str):
    partner = partner_of(request)
    coupon = get_object_or_404(selectors.coupon_usage_list(partner=partner), code=code)
    deductions = selectors.deduction_list(partner=partner, coupon=coupon).order_by(
        "bill_date", "id")
    return coupon_out(coupon, deductions=deductions)


class DeductionFilters(Schema):
    coupon: str | None = Field(None, max_length=64, description="A coupon code.")
    sub_account: str | None = Field(None, max_length=64, description="An account ID.")
    date_from: date | None = None
    date_to: date | None = None


@router.get("/deductions", response={200: DeductionPage, **ERRORS}, tags=["Deductions"],
            summary="List deductions")
def deduction_list(request, filters: Query[DeductionFilters], params: Query[PageParams]):
    partner = partner_of(request)
    coupon = sub_account = None
    if filters.coupon is not None:
        coupon = selectors.coupon_usage_list(partner=partner).filter(code=filters.coupon).first()
    if filters.sub_account is not None:
        sub_account = sub_account_list(partner=partner).filter(
            account_id=filters.sub_account).first()
    anchor = selectors.deduction_list(partner=partner)
    if (filters.coupon is not None and coupon is None) or (
            filters.sub_account is not None and sub_account is None):
        qs = anchor.none()  # another partner's or no such code: no rows, nothing revealed
    else:
        qs = selectors.deduction_list(partner=partner, coupon=coupon, sub_account=sub_account,
                                      date_from=filters.date_from, date_to=filters.date_to)
    return page(qs, order=("-bill_date", "-id"), params=params, cursor_field="id",
                present=deduction_out, anchor_qs=anchor)


@router.get("/usage/totals", response={200: UsageOut, **ERRORS}, tags=["Usage"],
            summary="Coupon Usage's totals per currency")
def usage_totals(request, filters: Query[CouponFilters]):
    qs, cleaned = _filtered(request, filters)
    lookups = selectors.usage_stat_lookups(cleaned)
    if lookups is None:
        totals = selectors.coupon_usage_totals(qs)
    else:
        totals = selectors.coupon_usage_totals_from_stats(partner=partner_of(request),
                                                          lookups=lookups)
    return {"totals": [{"currency": t["currency"], **{k: money(t[k]) for k in (
        "amount", "used", "remaining", "voided")}} for t in totals]}
