"""Reads of the coupons app, scoped to a partner, with their relations fetched."""
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404

from couponplatform.accounts.models import Partner
from couponplatform.accounts.selectors import sub_account_list
from coupons.models import CouponTemplate, IssuanceRecipient, IssuanceRequest

# What Issue Coupon's account list shows and decides with (selectable or not).
ISSUE_LIST_FIELDS = ("id", "account_id", "name", "type", "currency")


def coupon_template_list(*, partner: Partner) -> QuerySet[CouponTemplate]:
    return CouponTemplate.objects.filter(partner=partner).order_by("-created_at", "-id")


def coupon_template_get(*, partner: Partner, pk: int) -> CouponTemplate:
    """404 for another partner's template: its existence is not revealed."""
    return get_object_or_404(
        CouponTemplate.objects.select_related("partner", "created_by").prefetch_related(
            "products",
        ),
        partner=partner,
        pk=pk,
    )


def coupon_template_for_issue(*, partner: Partner, pk: int) -> CouponTemplate:
    """The template Issue Coupon works on; 404 for another partner's, as above.

    Without the products and the creator, which the page does not show; its partner is the
    caller's own `partner` object (the row the template was filtered by), so the partner
    and its BD, already read with the membership, are not read again.
    """
    template = get_object_or_404(CouponTemplate.objects.all(), partner=partner, pk=pk)
    template.partner = partner
    return template


def issuable_sub_accounts(*, template: CouponTemplate, search: str = "", type: str = ""):
    """The partner's sub-accounts, each annotated with whether it already holds or waits
    for `template` (for "Limited to 1"), in one query whatever the page size."""
    qs = sub_account_list(partner=template.partner, search=search, type=type).only(
        *ISSUE_LIST_FIELDS,
    )
    if template.is_limited:
        holding = IssuanceRecipient.objects.filter(
            template=template, sub_account=OuterRef("pk"), holds=True,
        )
        qs = qs.annotate(holds_template=Exists(holding))
    return qs


def issuance_request_list(*, partner: Partner) -> QuerySet[IssuanceRequest]:
    return (
        IssuanceRequest.objects.filter(partner=partner)
        .select_related("template", "submitted_by", "decided_by", "partner__bd")
        .order_by("-submitted_at", "-id")
    )


def issuance_request_for_submission(*, user, submission_key: str) -> IssuanceRequest | None:
    """The request `user` confirmed with this Issue Coupon token, if any."""
    if not submission_key or not getattr(user, "pk", None):
        return None
    return IssuanceRequest.objects.filter(
        submitted_by=user, submission_key=submission_key[:64],
    ).first()


def template_request_stats(template: CouponTemplate) -> dict:
    """The template's requests: how many, pending, issued, and the accounts issued to."""
    pending, issued = IssuanceRequest.Status.PENDING, IssuanceRequest.Status.ISSUED
    return template.requests.aggregate(
        total=Count("id"),
        pending=Count("id", filter=Q(status=pending)),
        issued=Count("id", filter=Q(status=issued)),
        issued_accounts=Sum("recipient_count", filter=Q(status=issued)),
    )


def template_recent_requests(template: CouponTemplate, *, limit: int = 10):
    return template.requests.select_related("submitted_by").order_by(
        "-submitted_at", "-id",
    )[:limit]
