"""Roles (QUALITY "roles"): every action × every role, by the real request, walking the one
table of the code, accounts/permissions.ACTIONS (docs/ROLES.md shows it, and
test_roles_table.py holds the two together).

Every cell is one test doing the request as that user on tenant A's rows (Northwind, whose
BD is `bd`; `bd2` is the BD of other partners). Allowed: the action took effect (or the
page showed the row). Denied: it did not, and the answer was a refusal (403, 404, a login
redirect, or the admin's "does not exist"), never a 500. Besides the table's roles, a BD of
another partner and an anonymous visitor knock on every door; no row of the table lets them
in.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts import permissions as perms
from accounts.models import Partner, PlatformBudget
from api.models import ApiKey, WebhookEndpoint
from billing.models import UsageImport
from coupons.models import Coupon, CouponTemplate, IssuanceRequest

ROLE_USERS = {
    "admin": "distributor",
    "operator": "operator",
    "viewer": "viewer",
    "sub-account user": "customer",
    "BD of the partner": "bd",
    "BD of another partner": "bd2",
    "superuser": "root",
    "anonymous": None,
}
ADM, OPR, VIE, SUB, BD, BD2, SU = (
    "admin", "operator", "viewer", "sub-account user", "BD of the partner",
    "BD of another partner", "superuser",
)
# Each user's role towards Northwind in the table's terms; None holds none.
ROLE_OF = {
    ADM: perms.ADMIN, OPR: perms.OPERATOR, VIE: perms.VIEWER, SUB: perms.SUB_ACCOUNT,
    BD: perms.BD, BD2: None, SU: perms.PLATFORM_OPERATOR, "anonymous": None,
}

# action → the roles allowed, read from the code's table; every other role is denied.
TABLE: dict[str, set[str]] = {
    action: {role for role, code in ROLE_OF.items() if code in spec.roles}
    for action, spec in perms.ACTIONS.items()
}
# Actions no page does yet: their services are walked (test_roles_services.py).
NOT_OVER_HTTP = {
    "template_edit": "no page changes a template's terms; the service is there for the API",
}


@dataclass
class Outcome:
    response: object
    happened: bool


# ---------------------------------------------------------------------------------------
# The rows acted on, all tenant A's (Northwind)


def northwind() -> Partner:
    return Partner.objects.get(name="Northwind Distribution")


def template(name: str) -> CouponTemplate:
    return CouponTemplate.objects.get(partner=northwind(), name=name)


def request_in(status: str, cost_bearer: str | None = None) -> IssuanceRequest:
    qs = IssuanceRequest.objects.filter(partner=northwind(), status=status)
    if cost_bearer:
        qs = qs.filter(cost_bearer=cost_bearer)
    return qs.order_by("pk").first()


def available_coupon() -> Coupon:
    return Coupon.objects.filter(partner=northwind(), status="available").order_by("pk").first()


def _get_all(client, *urls):
    return [client.get(url) for url in urls]


def _shows(responses, text) -> bool:
    return all(r.status_code == 200 and text in r.content.decode() for r in responses)


# ---------------------------------------------------------------------------------------
# The actions


def view_templates(client, world):
    tpl = template("Autumn promo 100")
    responses = _get_all(client, reverse("coupons:template_list"), tpl.get_absolute_url())
    return Outcome(responses[-1], _shows(responses, tpl.name))


def create_template(client, world):
    name = "Roles table template"
    response = client.post(reverse("coupons:template_create"), {
        "name": name, "kind": "cash", "currency": "USD", "face_value": "10.00",
        "validity_type": "relative", "valid_days": "30", "all_products": "on",
        "cost_bearer": "partner", "issue_limit": "one",
    })
    return Outcome(response, CouponTemplate.objects.filter(name=name).exists())


def disable_template(client, world):
    tpl = template("Spend 200 save 20 on ECS")
    response = client.post(reverse("coupons:template_disable", args=[tpl.pk]))
    tpl.refresh_from_db()
    return Outcome(response, tpl.status == CouponTemplate.Status.DISABLED)


ISSUE_TEMPLATE = "Spend 200 save 20 on ECS"
FREE_ACCOUNT = "NW000045"


def issue_add(client, world):
    tpl = template(ISSUE_TEMPLATE)
    response = client.post(reverse("coupons:issue", args=[tpl.pk]),
                           {"action": "add", "pick": [FREE_ACCOUNT]})
    selected = client.session.get(f"issue_selection:{tpl.pk}", []) if client.session else []
    return Outcome(response, FREE_ACCOUNT in selected)


def issue_confirm(client, world):
    tpl = template(ISSUE_TEMPLATE)
    session = client.session
    session[f"issue_selection:{tpl.pk}"] = [FREE_ACCOUNT]
    session.save()
    if settings.SESSION_COOKIE_NAME not in client.cookies:
        client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    before = IssuanceRequest.objects.filter(template=tpl).count()
    response = client.post(reverse("coupons:issue", args=[tpl.pk]), {"action": "confirm"})
    return Outcome(response, IssuanceRequest.objects.filter(template=tpl).count() > before)


def view_approvals(client, world):
    req = request_in("pending")
    responses = _get_all(client, reverse("approvals:list"), req.get_absolute_url())
    return Outcome(responses[-1], _shows(responses, req.template.name))


def _partner_action(action, status):
    def run(client, world):
        req = request_in(status)
        response = client.post(reverse(f"approvals:{action}", args=[req.pk]))
        req.refresh_from_db()
        return Outcome(response, req.status != status)

    run.__name__ = f"{action}_request"
    return run


def view_coupon_usage(client, world):
    coupon = available_coupon()
    response = client.get(reverse("coupon_usage"), {"sub_account": coupon.sub_account.account_id})
    return Outcome(response, _shows([response], coupon.code))


def export_coupon_usage(client, world):
    coupon = available_coupon()
    response = client.get(reverse("coupon_usage"),
                          {"_export": "csv", "sub_account": coupon.sub_account.account_id})
    body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else (
        response.content)
    return Outcome(response, response.status_code == 200 and coupon.code in body.decode())


def void_coupon(client, world):
    coupon = available_coupon()
    response = client.post(reverse("coupon_void", args=[coupon.pk]), {"reason": "Roles table"})
    coupon.refresh_from_db()
    return Outcome(response, coupon.status == Coupon.Status.VOIDED)


def manage_api_keys(client, world):
    name = "Roles table key"
    response = client.post(reverse("api_keys"), {"name": name, "role": "read_only"})
    return Outcome(response, ApiKey.objects.filter(name=name).exists())


# A port nothing listens on: a delivery, if one ran, would be refused at once.
ROLES_HOOK = "http://127.0.0.1:9/roles-table"


def manage_webhooks(client, world):
    with override_settings(WEBHOOK_ALLOW_LOCAL=True):
        response = client.post(reverse("webhooks"), {"url": ROLES_HOOK,
                                                     "events": ["request.issued"]})
    return Outcome(response, WebhookEndpoint.objects.filter(url=ROLES_HOOK).exists())


def view_billing_pages(client, world):
    account = world.users["customer"].subaccount_membership.sub_account
    coupon = Coupon.objects.filter(sub_account=account, status="available").first()
    day = world.customer_days[-1].strftime("%Y-%m-%d")
    responses = _get_all(client, reverse("billing:coupons"), reverse("billing:bills"),
                         reverse("billing:daily_bill", args=[day]))
    return Outcome(responses[-1], _shows(responses[:1], coupon.code)
                   and _shows(responses[1:], account.name))


def view_templates_admin(client, world):
    tpl = template("Autumn promo 100")
    response = client.get(reverse("admin:coupons_coupontemplate_change", args=[tpl.pk]))
    return Outcome(response, _shows([response], tpl.name))


def approve_admin(client, world):
    req = request_in("pending", cost_bearer="platform")
    response = client.post(reverse("admin:approvals_pendingrequest_approve", args=[req.pk]))
    req.refresh_from_db()
    return Outcome(response, req.status != IssuanceRequest.Status.PENDING)


def reject_admin(client, world):
    req = request_in("pending", cost_bearer="platform")
    response = client.post(reverse("admin:approvals_pendingrequest_reject", args=[req.pk]),
                           {"reason": "Roles table says no"})
    req.refresh_from_db()
    return Outcome(response, req.status == IssuanceRequest.Status.REJECTED)


def _partner_form(partner: Partner, **changes) -> dict:
    budget = PlatformBudget.objects.get(partner=partner, currency="USD")
    data = {
        "name": partner.name, "bd": partner.bd_id or "",
        "coupon_enabled": "on" if partner.coupon_enabled else "",
        "requires_bd_approval": "on" if partner.requires_bd_approval else "",
        "budgets-TOTAL_FORMS": "1", "budgets-INITIAL_FORMS": "1",
        "budgets-MIN_NUM_FORMS": "0", "budgets-MAX_NUM_FORMS": "1000",
        "budgets-0-id": budget.pk, "budgets-0-partner": partner.pk,
        "budgets-0-currency": "USD", "budgets-0-amount": str(budget.amount),
        "_save": "Save",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def _post_partner(client, partner, **changes):
    return client.post(reverse("admin:accounts_partner_change", args=[partner.pk]),
                       _partner_form(partner, **changes))


def change_settings_admin(client, world):
    partner = northwind()
    response = _post_partner(client, partner, requires_bd_approval="")
    partner.refresh_from_db()
    return Outcome(response, partner.requires_bd_approval is False)


def change_budget_admin(client, world):
    partner = northwind()
    response = _post_partner(client, partner, **{"budgets-0-amount": "260000.00"})
    budget = PlatformBudget.objects.get(partner=partner, currency="USD")
    return Outcome(response, budget.amount == Decimal("260000.00"))


def assign_bd_admin(client, world):
    partner = northwind()
    response = _post_partner(client, partner, bd=world.users["bd2"].pk)
    partner.refresh_from_db()
    return Outcome(response, partner.bd_id == world.users["bd2"].pk)


def upload_usage_admin(client, world):
    day = timezone.localdate() + timedelta(days=1)
    upload = io.BytesIO(f"account_id,date,product_code,amount,currency\n"
                        f"NW000004,{day:%Y-%m-%d},ecs,1.00,USD\n".encode())
    upload.name = "roles-table.csv"
    response = client.post(reverse("admin:billing_usageimport_upload"), {"file": upload})
    return Outcome(response, UsageImport.objects.filter(file_name="roles-table.csv").exists())


ACTIONS = {
    "templates_view": view_templates,
    "template_create": create_template,
    "template_disable": disable_template,
    "issue_select": issue_add,
    "issue_confirm": issue_confirm,
    "requests_view": view_approvals,
    "request_cancel": _partner_action("cancel", "pending"),
    "request_retry": _partner_action("retry", "failed"),
    "request_withdraw": _partner_action("withdraw", "failed"),
    "usage_view": view_coupon_usage,
    "usage_export": export_coupon_usage,
    "coupon_void": void_coupon,
    "api_keys_manage": manage_api_keys,
    "webhooks_manage": manage_webhooks,
    "billing_view": view_billing_pages,
    "admin_templates_view": view_templates_admin,
    "request_approve": approve_admin,
    "request_reject": reject_admin,
    "partner_settings": change_settings_admin,
    "partner_budget": change_budget_admin,
    "partner_assign_bd": assign_bd_admin,
    "usage_upload": upload_usage_admin,
}
assert set(ACTIONS) | set(NOT_OVER_HTTP) == set(TABLE), (
    "every action of accounts/permissions.ACTIONS is walked here, or says why not")
assert not set(ACTIONS) & set(NOT_OVER_HTTP)

CELLS = [(action, role) for action in ACTIONS for role in ROLE_USERS]

# A field the admin shows the BD read-only: their save of the form goes through and the
# field is ignored (Django's way), which is the refusal for that field.
READ_ONLY_FOR = {("partner_assign_bd", BD)}


def _refused(response) -> bool:
    if response.status_code in (403, 404):
        return True
    if response.status_code == 302:
        location = response["Location"]
        return location.startswith((settings.LOGIN_URL, reverse("admin:login"))) or (
            location == reverse("admin:index")  # the admin's "does not exist"
        )
    return False


@pytest.mark.parametrize(("action", "role"), CELLS, ids=[f"{a} | {r}" for a, r in CELLS])
def test_role_table(action, role, world, db):
    client = Client()
    username = ROLE_USERS[role]
    if username is not None:
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[username]
    outcome = ACTIONS[action](client, world)
    allowed = role in TABLE[action]
    assert outcome.response.status_code < 500
    if allowed:
        assert outcome.happened, (
            f"{role} should be able to {action}: answered {outcome.response.status_code}")
    else:
        assert not outcome.happened, f"{role} must not be able to {action}"
        if (action, role) in READ_ONLY_FOR:
            assert outcome.response.status_code == 302
            return
        assert _refused(outcome.response), (
            f"{role} doing {action}: expected a refusal, got {outcome.response.status_code} "
            f"{outcome.response.get('Location', '')}")


def test_every_role_of_the_table_is_walked():
    """Each column of the code's table has a user here, and the walk knocks as each."""
    assert {code for code in ROLE_OF.values() if code} == set(perms.ROLES)
    assert set(ROLE_OF) == set(ROLE_USERS)
