"""Reads of the approval workflow: a request's decisions, and the BD queue's figures."""
from django.db.models import Count, OuterRef, QuerySet, Subquery, Sum

from accounts.models import PlatformBudget
from approvals.models import Approval
from coupons.models import IssuanceRecipient, IssuanceRequest


def approval_list(request: IssuanceRequest) -> QuerySet[Approval]:
    """The request's approvals, oldest first, with who was assigned and who decided."""
    return Approval.objects.filter(request=request).select_related(
        "decided_by", "assigned_bd",
    ).order_by("created_at", "pk")


def with_budget_left(requests: QuerySet[IssuanceRequest]) -> QuerySet[IssuanceRequest]:
    """Each request with `budget_left`: what its partner's budget in its currency has left
    (PlatformBudget.remaining_expression, unclamped); None where none is granted."""
    budget = PlatformBudget.objects.filter(
        partner_id=OuterRef("partner_id"), currency=OuterRef("currency"),
    )
    return requests.annotate(budget_left=Subquery(
        budget.annotate(left=PlatformBudget.remaining_expression()).values("left")[:1],
    ))


def first_recipients(request: IssuanceRequest, *, limit: int) -> QuerySet[IssuanceRecipient]:
    """The request's first `limit` recipients in the order they were selected."""
    return request.recipients.select_related("sub_account").order_by("pk")[:limit]


def totals_per_currency(requests: QuerySet[IssuanceRequest]) -> list[dict]:
    """Requests, accounts and amount of `requests` per currency."""
    return list(
        requests.order_by().values("currency")
        .annotate(requests=Count("id"), accounts=Sum("recipient_count"),
                  amount=Sum("total_amount"))
        .order_by("currency")
    )
