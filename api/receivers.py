"""The API's answer to the apps' transition signals: each request and coupon change a
partner's endpoints subscribe to becomes a webhook event in the outbox, in the same
transaction as the change (api/webhooks.py). The apps never import api."""
from collections import defaultdict

from api.common import dump
from api.presenters import coupon_out, request_out
from api.schemas import CouponOut, RequestOut
from api.webhooks import REQUEST_EVENTS, subscribed_endpoints, webhook_events_record
from coupons.models import Coupon

COUPON_VOIDED = "coupon.voided"


def request_moved(sender, *, request, before, to, **kwargs) -> None:
    """A request's move to a status with an event: the request as GET
    /issuance_requests/{id} shows it, and the status it left."""
    type_ = REQUEST_EVENTS.get(to)
    if type_ is None:
        return
    endpoints = subscribed_endpoints(request.partner_id, type_)
    if not endpoints:
        return
    released = request.recipient_count if to == "issued" else 0
    data = {"object": dump(RequestOut, request_out(request, progress=released)),
            "previous_status": before}
    webhook_events_record(partner_id=request.partner_id, type=type_, objects=[data],
                          endpoints=endpoints)


def coupons_moved(sender, *, coupons, to, **kwargs) -> None:
    """Voided coupons, one event each, as GET /coupons/{code} shows them (read again: the
    void's UPDATE set their balances in SQL)."""
    if to != Coupon.Status.VOIDED or not coupons:
        return
    by_partner = defaultdict(list)
    for coupon in coupons:
        by_partner[coupon.partner_id].append(coupon.pk)
    for partner_id, pks in by_partner.items():
        endpoints = subscribed_endpoints(partner_id, COUPON_VOIDED)
        if not endpoints:
            continue
        fresh = Coupon.objects.filter(pk__in=pks).select_related("sub_account").order_by("pk")
        webhook_events_record(
            partner_id=partner_id, type=COUPON_VOIDED, endpoints=endpoints,
            objects=[{"object": dump(CouponOut, coupon_out(c))} for c in fresh])
