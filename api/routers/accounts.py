"""The partner itself, and its sub-accounts: search by name or account ID, type filter,
and whether each can receive a template (and why not: coupons/rules.account_refusals)."""
from typing import Literal

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema
from pydantic import Field

from accounts.selectors import sub_account_list
from api.common import ERRORS, partner_of
from api.pagination import PageParams, page
from api.presenters import sub_account_out
from api.schemas import PartnerOut, SubAccountOut, SubAccountPage
from coupons import rules, selectors

router = Router(tags=["Sub-accounts"])


@router.get("/partner", response={200: PartnerOut, **ERRORS}, tags=["Partner"],
            summary="The key's partner")
def partner_get(request):
    partner, key = partner_of(request), request.auth
    return {"id": partner.pk, "name": partner.name, "kind": partner.kind,
            "tier": partner.tier, "coupon_function": partner.coupon_enabled,
            "requires_bd_approval": partner.requires_bd_approval, "key_name": key.name,
            "key_role": key.role}


class AccountFilters(Schema):
    q: str = Field("", max_length=100, description="Part of the name or account ID.")
    type: Literal["customer", "tier2_reseller"] | None = None
    template_id: int | None = Field(
        None, ge=1, le=9_223_372_036_854_775_807,
        description="Say for each account whether it can receive this template, and why not.")


def _refusals(template, account, problem: str | None) -> list[dict]:
    """What the Issue Coupon page's table says of the account, as codes and messages."""
    out = [{"code": "template_not_issuable", "message": problem}] if problem else []
    holds = bool(getattr(account, "holds_template", False))
    for refusal in rules.account_refusals(template=template, account=account, holds=holds):
        out.append({"code": refusal.field,
                    "message": refusal.row(account_currency=account.currency)})
    return out


def _accounts(request, filters: AccountFilters):
    """The partner's sub-accounts as filtered, and a presenter (with eligibility when a
    template is named)."""
    partner = partner_of(request)
    type_ = filters.type or ""
    if filters.template_id is None:
        return sub_account_list(partner=partner, search=filters.q, type=type_), sub_account_out
    template = selectors.coupon_template_for_issue(partner=partner, pk=filters.template_id)
    problem = rules.template_issuable_problem(template)
    qs = selectors.issuable_sub_accounts(template=template, search=filters.q, type=type_)
    qs = qs.only(*selectors.ISSUE_LIST_FIELDS, "created_at")
    return qs, lambda a: sub_account_out(a, refusals=_refusals(template, a, problem))


@router.get("/sub_accounts", response={200: SubAccountPage, **ERRORS},
            summary="Search sub-accounts")
def sub_account_search(request, filters: Query[AccountFilters], params: Query[PageParams]):
    qs, present = _accounts(request, filters)
    return page(qs, order=("name", "id"), params=params, cursor_field="account_id",
                present=present, anchor_qs=sub_account_list(partner=partner_of(request)))


@router.get("/sub_accounts/{account_id}", response={200: SubAccountOut, **ERRORS},
            summary="Get a sub-account")
def sub_account_get(request, account_id: str, template_id: int | None = Query(
        None, ge=1, le=9_223_372_036_854_775_807)):
    qs, present = _accounts(request, AccountFilters(template_id=template_id))
    return present(get_object_or_404(qs, account_id=account_id))
