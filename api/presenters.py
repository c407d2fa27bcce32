"""Rows as the API shows them: amounts as two-decimal strings, times in the platform's
time zone with its offset."""
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from couponplatform.money import quantize


def money(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return f"{quantize(Decimal(str(value))):.2f}"


def when(value: datetime | None) -> str | None:
    return None if value is None else timezone.localtime(value).isoformat()


def template_out(t, *, product_codes: list[str] | None = None) -> dict:
    if product_codes is None:
        product_codes = [] if t.all_products else sorted(p.code for p in t.products.all())
    return {
        "id": t.pk, "name": t.name, "description": t.description, "status": t.status,
        "kind": t.kind, "currency": t.currency, "face_value": money(t.face_value),
        "discount_rate": None if t.discount_rate is None else f"{t.discount_rate:.2f}",
        "discount_uses": t.discount_uses, "min_bill_amount": money(t.min_bill_amount),
        "validity_type": t.validity_type, "valid_from": t.valid_from,
        "valid_until": t.valid_until, "valid_days": t.valid_days,
        "all_products": t.all_products, "products": product_codes,
        "cost_bearer": t.cost_bearer, "issue_limit": t.issue_limit,
        "release_cap_count": t.release_cap_count,
        "release_cap_amount": money(t.release_cap_amount),
        "released_count": t.released_count, "released_amount": money(t.released_amount),
        "created_at": when(t.created_at), "disabled_at": when(t.disabled_at),
    }


def sub_account_out(a, *, refusals=None) -> dict:
    out = {"account_id": a.account_id, "name": a.name, "type": a.type,
           "currency": a.currency, "created_at": when(a.created_at)}
    if refusals is not None:
        out["eligible"] = not refusals
        out["refusals"] = refusals
    return out


def request_out(r, *, progress: int | None = None) -> dict:
    released = r.recipient_count if r.status == "issued" else (progress or 0)
    decider = r.decided_by
    return {
        "id": r.pk, "template_id": r.template_id, "status": r.status, "route": r.route,
        "cost_bearer": r.cost_bearer, "currency": r.currency,
        "unit_value": money(r.unit_value), "recipient_count": r.recipient_count,
        "total_amount": money(r.total_amount), "submitted_at": when(r.submitted_at),
        "decided_at": when(r.decided_at),
        "approver": (decider.get_full_name() or decider.username) if decider else None,
        "reason": r.reason, "issued_at": when(r.issued_at), "released_count": released,
        "release_progress": round(released / r.recipient_count, 4) if r.recipient_count
        else 0.0,
    }


def deduction_out(d) -> dict:
    return {
        "id": d.pk, "coupon_code": d.coupon.code, "account_id": d.sub_account.account_id,
        "bill_date": d.bill_date, "product_code": d.line.product.code,
        "amount": money(d.amount), "currency": d.coupon.currency,
        "created_at": when(d.created_at),
    }


def coupon_out(c, *, deductions=None) -> dict:
    out = {
        "code": c.code, "template_id": c.template_id, "request_id": c.request_id,
        "account_id": c.sub_account.account_id, "kind": c.kind, "cost_bearer": c.cost_bearer,
        "currency": c.currency, "amount": money(c.amount),
        "used": money(c.amount - c.balance - c.voided_amount), "balance": money(c.balance),
        "voided_amount": money(c.voided_amount),
        "discount_rate": None if c.discount_rate is None else f"{c.discount_rate:.2f}",
        "uses_total": c.uses_total, "uses_left": c.uses_left,
        "min_bill_amount": money(c.min_bill_amount), "all_products": c.all_products,
        "product_codes": list(c.product_codes or []), "valid_from": c.valid_from,
        "valid_until": c.valid_until, "status": c.status, "released_at": when(c.released_at),
        "void_reason": c.void_reason,
    }
    if deductions is not None:
        out["deductions"] = [deduction_out(d) for d in deductions]
    return out
