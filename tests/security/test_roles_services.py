"""The roles table (accounts/permissions.ACTIONS, walked over HTTP by test_roles.py),
walked at the service layer: each write action's service called directly as each role, on
the same rows.

A view may refuse before its service is reached (the void page checks the role itself),
which hides the service's own check from the request walk; here nothing stands in front of
the service. Allowed: the call returns and the change is made. Denied: PermissionDeniedError
and nothing written.

Not walked here, because no service with a role check of its own does them: the reads
(a selector scopes them to the user; the request walk and the isolation walker cover them),
"issue_select" (a selection kept in the session, nothing written), and "usage_upload"
(`usage_import` is also the management command's; the admin is its gate).
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import override_settings

from accounts import services as accounts
from accounts.models import PlatformBudget
from api.keys import api_key_create
from api.models import ApiKey, WebhookEndpoint
from api.webhooks import webhook_endpoint_create
from approvals import services as approvals
from billing.coupon_status import coupon_void
from couponplatform.exceptions import PermissionDeniedError
from coupons.models import Coupon, CouponTemplate, IssuanceRequest
from coupons.services import (
    coupon_template_create,
    coupon_template_disable,
    coupon_template_update,
    issuance_request_submit,
)
from tests import factories as f
from tests.security import test_roles as roles

User = get_user_model()


def create_template(user) -> bool:
    name = "Roles table service template"
    coupon_template_create(
        partner=roles.northwind(), acting_user=user, name=name, kind="cash", currency="USD",
        face_value=Decimal("10.00"), validity_type="relative", valid_days=30,
        cost_bearer="partner", issue_limit="one",
    )
    return CouponTemplate.objects.filter(name=name).exists()


def disable_template(user) -> bool:
    tpl = roles.template("Spend 200 save 20 on ECS")
    coupon_template_disable(template=tpl, acting_user=user)
    tpl.refresh_from_db()
    return tpl.status == CouponTemplate.Status.DISABLED


def edit_template(user) -> bool:
    tpl = roles.template("Spend 200 save 20 on ECS")
    coupon_template_update(template=tpl, acting_user=user, name="Roles table renamed")
    tpl.refresh_from_db()
    return tpl.name == "Roles table renamed"


def issue_confirm(user) -> bool:
    tpl = roles.template(roles.ISSUE_TEMPLATE)
    before = IssuanceRequest.objects.filter(template=tpl).count()
    issuance_request_submit(template=tpl, acting_user=user, account_ids=[roles.FREE_ACCOUNT])
    return IssuanceRequest.objects.filter(template=tpl).count() > before


def _request_action(service, status: str):
    def run(user) -> bool:
        req = roles.request_in(status)
        service(request_id=req.pk, acting_user=user)
        req.refresh_from_db()
        return req.status != status

    return run


def _bd_decision(service, **kwargs):
    def run(user) -> bool:
        req = roles.request_in("pending", cost_bearer="platform")
        service(request_id=req.pk, acting_user=user, **kwargs)
        req.refresh_from_db()
        return req.status != IssuanceRequest.Status.PENDING

    return run


def void_coupon(user) -> bool:
    coupon = roles.available_coupon()
    coupon_void(coupon=coupon, acting_user=user, reason="Roles table")
    coupon.refresh_from_db()
    return coupon.status == Coupon.Status.VOIDED


def manage_api_keys(user) -> bool:
    api_key_create(partner=roles.northwind(), acting_user=user, name="Roles service key",
                   role="read_only")
    return ApiKey.objects.filter(name="Roles service key").exists()


def manage_webhooks(user) -> bool:
    with override_settings(WEBHOOK_ALLOW_LOCAL=True):
        webhook_endpoint_create(partner=roles.northwind(), acting_user=user,
                                url=roles.ROLES_HOOK, events=["request.issued"])
    return WebhookEndpoint.objects.filter(url=roles.ROLES_HOOK).exists()


def change_settings(user) -> bool:
    partner = roles.northwind()
    accounts.partner_coupon_settings_update(partner=partner, acting_user=user,
                                            coupon_enabled=True, requires_bd_approval=False)
    partner.refresh_from_db()
    return partner.requires_bd_approval is False


def change_budget(user) -> bool:
    partner = roles.northwind()
    accounts.platform_budget_set(partner=partner, acting_user=user, currency="USD",
                                 amount=Decimal("260000.00"))
    return PlatformBudget.objects.get(partner=partner, currency="USD").amount == Decimal(
        "260000.00")


def assign_bd(user) -> bool:
    partner = roles.northwind()
    bd2 = User.objects.get(username="bd2")
    accounts.partner_bd_assign(partner=partner, acting_user=user, bd=bd2)
    partner.refresh_from_db()
    return partner.bd_id == bd2.pk


SERVICES = {
    "template_create": create_template,
    "template_edit": edit_template,
    "template_disable": disable_template,
    "issue_confirm": issue_confirm,
    "request_cancel": _request_action(approvals.issuance_request_cancel, "pending"),
    "request_retry": _request_action(approvals.issuance_request_retry, "failed"),
    "request_withdraw": _request_action(approvals.issuance_request_withdraw, "failed"),
    "coupon_void": void_coupon,
    "api_keys_manage": manage_api_keys,
    "webhooks_manage": manage_webhooks,
    "request_approve": _bd_decision(approvals.approval_approve),
    "request_reject": _bd_decision(approvals.approval_reject, reason="Roles table says no"),
    "partner_settings": change_settings,
    "partner_budget": change_budget,
    "partner_assign_bd": assign_bd,
}
NOT_AT_THE_SERVICE_LAYER = {
    "templates_view", "requests_view", "usage_view", "usage_export", "billing_view",
    "admin_templates_view", "issue_select", "usage_upload",
}
assert set(SERVICES) | NOT_AT_THE_SERVICE_LAYER == set(roles.TABLE)
assert not set(SERVICES) & NOT_AT_THE_SERVICE_LAYER

CELLS = [(action, role) for action in SERVICES for role in roles.ROLE_USERS]


def acting(role: str):
    """The role's user, read afresh (a user caches its membership and partner)."""
    username = roles.ROLE_USERS[role]
    return AnonymousUser() if username is None else User.objects.get(username=username)


@pytest.mark.parametrize(("action", "role"), CELLS, ids=[f"{a} | {r}" for a, r in CELLS])
def test_role_table_at_the_service_layer(action, role, world, db):
    user = acting(role)
    if role in roles.TABLE[action]:
        assert SERVICES[action](user), f"{role} should be able to {action} (service)"
    else:
        with f.nothing_written(), pytest.raises(PermissionDeniedError):
            SERVICES[action](user)
