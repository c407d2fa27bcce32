"""Reads of the approval workflow: a request's decisions and history, and the BD queue's
figures."""
from django.db.models import CharField, Count, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Cast, Concat, Trim

from accounts.models import PlatformBudget
from approvals.models import Approval
from audit.models import AuditLog
from coupons.models import IssuanceRecipient, IssuanceRequest

# The moves a partner user makes that end a request: who made them is in the audit log
# (the request keeps who decided, for approve and reject).
CLOSING_ACTIONS = ("request.cancelled", "request.withdrawn")


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


def _request_audit(request_pk) -> QuerySet[AuditLog]:
    return AuditLog.objects.filter(object_type=IssuanceRequest._meta.label, object_id=request_pk)


def with_closing_move(requests: QuerySet[IssuanceRequest]) -> QuerySet[IssuanceRequest]:
    """Each request with who cancelled or withdrew it and when (`closed_at`,
    `closed_by_name`: full name, else username); empty for the others. Subqueries over the
    audit log's (object type, object id) index, so a page of requests costs one query."""
    moves = _request_audit(Cast(OuterRef("pk"), CharField())).filter(
        action__in=CLOSING_ACTIONS,
    ).order_by("-created_at", "-pk")
    name = Trim(Concat("actor__first_name", Value(" "), "actor__last_name",
                       output_field=CharField()))
    return requests.annotate(
        closed_at=Subquery(moves.values("created_at")[:1]),
        closed_by_name=Subquery(moves.annotate(name=name).values("name")[:1]),
        closed_by_username=Subquery(moves.values("actor__username")[:1]),
    )


def request_history(request: IssuanceRequest) -> list[AuditLog]:
    """The request's audit rows, oldest first, with who acted."""
    return list(_request_audit(str(request.pk)).select_related("actor").order_by(
        "created_at", "pk",
    ))
