"""Issuance requests: submit (a template and up to ISSUE_MAX_ACCOUNTS account IDs, through
the console's submit service; each refusal names its accounts and rule), get with the
release's progress, list, cancel."""
from datetime import date
from typing import Literal

from ninja import Query, Router, Schema

from api.common import ERRORS, IdempotencyKey, dump, partner_of, user_of
from api.errors import ApiError
from api.idempotency import idempotent_post
from api.pagination import PageParams, page
from api.presenters import request_out
from api.schemas import RequestIn, RequestOut, RequestPage
from approvals.release import release_progress
from approvals.services import issuance_request_cancel
from billing.filters import local_midnight
from couponplatform.exceptions import ApplicationError
from coupons import selectors, services

router = Router(tags=["Issuance requests"])

Status = Literal["pending", "approved", "issued", "failed", "rejected", "cancelled",
                 "withdrawn"]


def _present(request_obj) -> dict:
    progress = (release_progress(request_obj.pk)
                if request_obj.status == "approved" else None)
    return request_out(request_obj, progress=progress)


def _selection_refused(exc: ApplicationError) -> ApiError:
    """The selection check's problems, each naming its rule and (where it has them) its
    account IDs, in the words the Issue Coupon page shows."""
    check = exc.extra.get("check")
    errors = []
    if check is not None:
        grouped = {message for _code, _ids, message in check.refused_groups}
        errors = [{"param": "account_ids", "code": code, "message": message,
                   "account_ids": ids} for code, ids, message in check.refused_groups]
        errors += [{"param": None, "code": "rule", "message": problem}
                   for problem in check.problems if problem not in grouped]
    return ApiError(422, "selection_refused", exc.message,
                    param="account_ids" if any(e["param"] for e in errors) else None,
                    errors=errors or None)


def _submit(request, payload: RequestIn) -> tuple[int, dict]:
    partner = partner_of(request)
    template = selectors.coupon_template_for_issue(partner=partner, pk=payload.template_id)
    try:
        created = services.issuance_request_submit(
            template=template, acting_user=user_of(request), account_ids=payload.account_ids)
    except ApplicationError as exc:
        if "check" in exc.extra:
            raise _selection_refused(exc) from exc
        raise
    return 201, dump(RequestOut, _present(selectors.issuance_request_get(
        partner=partner, pk=created.pk)))


@router.post("/issuance_requests", response={201: RequestOut, **ERRORS},
             summary="Submit an issuance request")
def request_submit(request, payload: RequestIn, idempotency_key: str | None = IdempotencyKey):
    return idempotent_post(request, lambda: _submit(request, payload))


class RequestFilters(Schema):
    status: Status | None = None
    template_id: int | None = None
    submitted_from: date | None = None
    submitted_to: date | None = None


@router.get("/issuance_requests", response={200: RequestPage, **ERRORS},
            summary="List issuance requests")
def request_list(request, filters: Query[RequestFilters], params: Query[PageParams]):
    qs = anchor = selectors.issuance_request_list(partner=partner_of(request))
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.template_id is not None:
        qs = qs.filter(template_id=filters.template_id)
    # Days of the platform's time zone, as the console's date filters count them.
    if filters.submitted_from and (start := local_midnight(filters.submitted_from)):
        qs = qs.filter(submitted_at__gte=start)
    if filters.submitted_to and (end := local_midnight(filters.submitted_to, days_after=1)):
        qs = qs.filter(submitted_at__lt=end)
    return page(qs, order=("-submitted_at", "-id"), params=params, cursor_field="id",
                present=_present, anchor_qs=anchor)


@router.get("/issuance_requests/{int:request_id}", response={200: RequestOut, **ERRORS},
            summary="Get an issuance request")
def request_get(request, request_id: int):
    return _present(selectors.issuance_request_get(partner=partner_of(request), pk=request_id))


@router.post("/issuance_requests/{int:request_id}/cancel", response={200: RequestOut, **ERRORS},
             summary="Cancel a pending issuance request")
def request_cancel(request, request_id: int, idempotency_key: str | None = IdempotencyKey):
    def work():
        partner = partner_of(request)
        found = selectors.issuance_request_get(partner=partner, pk=request_id)
        issuance_request_cancel(request_id=found.pk, acting_user=user_of(request))
        return 200, dump(RequestOut, _present(selectors.issuance_request_get(
            partner=partner, pk=found.pk)))

    return idempotent_post(request, work)
