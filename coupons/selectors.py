"""Reads of the coupons app, scoped to a partner, with their relations fetched."""
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404

from accounts.models import Partner
from accounts.selectors import sub_account_list
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


def template_holders(*, template: CouponTemplate, sub_account_ids: list[int]) -> set[int]:
    """Which of these accounts hold `template` or wait for it (what "Limited to 1" counts)."""
    return set(
        IssuanceRecipient.objects.filter(
            template=template, holds=True, sub_account_id__any=sub_account_ids,
        ).values_list("sub_account_id", flat=True)
    )


def template_is_frozen(template: CouponTemplate) -> bool:
    """Money fields freeze once any coupon was issued or requested from the template."""
    return IssuanceRecipient.objects.filter(template=template).exists()


def template_cap_left(template: CouponTemplate) -> tuple[int | None, Decimal | None]:
    """What the template's release caps leave for new requests: (coupons, amount), None
    where there is no cap. Every recipient still holding a place counts (pending, approved,
    failed to issue and issued), as the submit checks."""
    if template.release_cap_count is None and template.release_cap_amount is None:
        return None, None
    committed = IssuanceRecipient.objects.filter(template=template, holds=True).count()
    count_left = (
        max(template.release_cap_count - committed, 0)
        if template.release_cap_count is not None else None
    )
    amount_left = (
        max(template.release_cap_amount - template.unit_value * committed, Decimal("0"))
        if template.release_cap_amount is not None else None
    )
    return count_left, amount_left


# The partner's own number of a request (`IssuanceRequest.number`) is approvals' row,
# reached by its reverse relation: read along wherever requests are listed.
REQUEST_NUMBER = "partner_number"


def issuance_request_list(*, partner: Partner) -> QuerySet[IssuanceRequest]:
    return (
        IssuanceRequest.objects.filter(partner=partner)
        .select_related("template", "submitted_by", "decided_by", "partner__bd", REQUEST_NUMBER)
        .order_by("-submitted_at", "-id")
    )


def issuance_request_get(*, partner: Partner, pk: int) -> IssuanceRequest:
    """404 for another partner's request: its existence is not revealed."""
    return get_object_or_404(issuance_request_list(partner=partner), pk=pk)


def issuance_request_recipients(request: IssuanceRequest) -> QuerySet[IssuanceRecipient]:
    return request.recipients.select_related("sub_account").order_by("sub_account__name", "id")
def issuance_request_for_submission(*, user, submission_key: str) -> IssuanceRequest | None:
    """The request `user` confirmed with this Issue Coupon token, if any."""
    if not submission_key or not getattr(user, "pk", None):
        return None
    return IssuanceRequest.objects.filter(
        submitted_by=user, submission_key=submission_key[:64],
    ).select_related(REQUEST_NUMBER).first()


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
    return template.requests.select_related("submitted_by", REQUEST_NUMBER).order_by(
        "-submitted_at", "-id",
    )[:limit]
