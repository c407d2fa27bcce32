"""Row locks of coupons' tables, one named helper per table (as Saleor's lock_objects.py):
`select_for_update(of=…, no_key=True)` (FOR NO KEY UPDATE) in pk order, so two lockers
of many rows take them alike and never deadlock, and a foreign key to a locked row is
not blocked (docs/ARCHITECTURE.md, "Lock order"). Every service that locks one of these
rows calls its helper; `of` keeps a `select_related` row (a template's partner) unlocked.

The order across tables, everywhere: request → template → budget; coupons → daily bills."""
from django.db.models import QuerySet

from coupons.models import Coupon, CouponTemplate, IssuanceRequest


def issuance_requests_for_update() -> QuerySet[IssuanceRequest]:
    return IssuanceRequest.objects.select_for_update(of=("self",), no_key=True).order_by("pk")


def coupon_templates_for_update() -> QuerySet[CouponTemplate]:
    return CouponTemplate.objects.select_for_update(of=("self",), no_key=True).order_by("pk")


def coupons_for_update() -> QuerySet[Coupon]:
    """Coupons, in pk order: a posting's lock of an account's available coupons is the
    per-account lock (billing/posting.py)."""
    return Coupon.objects.select_for_update(of=("self",), no_key=True).order_by("pk")
