"""The rules of PRODUCT §3 (templates) and §4 (issuing) in the coupons services."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models.deletion import ProtectedError
from django.utils import timezone

from accounts.models import PlatformBudget
from approvals.release import issuance_request_release
from approvals.services import approval_approve, issuance_request_cancel
from audit.models import AuditLog
from couponplatform.exceptions import ApplicationError, PermissionDeniedError
from coupons import services
from coupons.models import Coupon, CouponTemplate, IssuanceRecipient, IssuanceRequest
from coupons.rules import issuance_selection_check
from coupons.services import (
    TemplateTermsError,
    coupon_template_create,
    coupon_template_disable,
    coupon_template_update,
    issuance_request_submit,
)
from tests import factories as f
from tests.factories import nothing_written

pytestmark = pytest.mark.django_db


def ids(accounts) -> list[str]:
    return [a.account_id for a in accounts]


def create(partner, user, **overrides) -> CouponTemplate:
    return coupon_template_create(partner=partner, acting_user=user,
                                  **f.template_fields(**overrides))


def refused_terms(partner, user, **overrides) -> dict[str, str]:
    """Create with bad terms; assert the refusal wrote nothing and return field → message."""
    with nothing_written(), pytest.raises(TemplateTermsError) as exc:
        create(partner, user, **overrides)
    return exc.value.errors


@pytest.fixture
def tier2(distributor):
    """A tier-2 reseller under the distributor (even with a budget of its own) and its admin."""
    reseller, account = f.make_tier2(distributor, budget="5000.00")
    return reseller, account, f.make_member(reseller, "admin")


@pytest.fixture
def platform_template(distributor, dist_admin):
    return create(distributor, dist_admin, cost_bearer="platform", face_value=Decimal("100.00"))


def set_budget(partner, amount: str, currency="USD") -> PlatformBudget:
    budget = PlatformBudget.objects.get(partner=partner, currency=currency)
    budget.amount = Decimal(amount)
    budget.save(update_fields=["amount"])
    return budget


# ---------------------------------------------------------------------------------------
# Creating templates: the terms of §3


def test_create_cash_template_is_active_at_once_with_its_terms(distributor, dist_operator):
    template = create(distributor, dist_operator, face_value=Decimal("12.34"), valid_days=90)
    template.refresh_from_db()
    assert template.status == CouponTemplate.Status.ACTIVE
    assert template.partner == distributor
    assert template.created_by == dist_operator
    assert template.face_value == Decimal("12.34")
    assert isinstance(template.face_value, Decimal)
    assert template.valid_days == 90
    assert template.all_products is True


def test_create_writes_one_audit_row_with_actor_partner_and_after(distributor, dist_admin):
    template = create(distributor, dist_admin, name="Audit me", face_value=Decimal("75.50"))
    rows = AuditLog.objects.filter(action="template.create", object_id=str(template.pk))
    assert rows.count() == 1
    row = rows.get()
    assert row.actor == dist_admin
    assert row.partner == distributor
    assert row.object_type == "coupons.CouponTemplate"
    assert row.before is None
    assert row.after["name"] == "Audit me"
    assert Decimal(row.after["face_value"]) == Decimal("75.50")
    assert row.after["status"] == "active"


def test_create_threshold_template_keeps_minimum_and_drops_discount_terms(
    distributor, dist_admin,
):
    template = create(
        distributor, dist_admin, kind="threshold", face_value=Decimal("20.00"),
        min_bill_amount=Decimal("200.00"), discount_rate=Decimal("10"), discount_uses=3,
    )
    template.refresh_from_db()
    assert template.min_bill_amount == Decimal("200.00")
    assert template.discount_rate is None and template.discount_uses is None


def test_create_discount_template_stores_rate_uses_and_cap(distributor, dist_admin):
    template = create(
        distributor, dist_admin, kind="discount", face_value=Decimal("30.00"),
        discount_rate=Decimal("15.5"), discount_uses=4, min_bill_amount=Decimal("5.00"),
    )
    template.refresh_from_db()
    assert template.discount_rate == Decimal("15.50")
    assert template.discount_uses == 4
    assert template.min_bill_amount is None
    # The most one discount coupon can take off: the cap per use times the uses.
    assert template.unit_value == Decimal("120.00")


def test_create_fixed_window_clears_relative_days(distributor, dist_admin):
    template = create(distributor, dist_admin, valid_days=30, **f.fixed_window(0, 10))
    template.refresh_from_db()
    assert template.validity_type == "fixed"
    assert template.valid_days is None
    assert template.valid_until - template.valid_from == timedelta(days=10)


@pytest.mark.parametrize("value", ["0.01", "1000000.00"])
def test_create_accepts_face_value_at_the_limits(distributor, dist_admin, value):
    template = create(distributor, dist_admin, face_value=Decimal(value))
    template.refresh_from_db()
    assert template.face_value == Decimal(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "greater than 0"),
        ("0.00", "greater than 0"),
        ("-5.00", "greater than 0"),
        ("1000000.01", "at most 1,000,000.00"),
        ("1E+20", "at most 1,000,000.00"),
        ("10.005", "at most 2 decimal places"),
        ("0.001", "at most 2 decimal places"),
        ("NaN", "must be a number"),
        ("sNaN", "must be a number"),
        ("Infinity", "must be a number"),
        ("-Infinity", "must be a number"),
    ],
)
def test_create_refuses_bad_face_value_and_writes_nothing(distributor, dist_admin, value,
                                                          message):
    errors = refused_terms(distributor, dist_admin, face_value=Decimal(value))
    assert message in errors["face_value"]


def test_create_refuses_missing_face_value(distributor, dist_admin):
    errors = refused_terms(distributor, dist_admin, face_value=None)
    assert "Enter the face value" in errors["face_value"]


@pytest.mark.parametrize("rate", ["0", "0.99", "99.01", "100", "-10", "NaN", "Infinity"])
def test_create_refuses_discount_rate_outside_1_to_99(distributor, dist_admin, rate):
    errors = refused_terms(distributor, dist_admin, kind="discount", discount_uses=1,
                           discount_rate=Decimal(rate))
    assert "between 1 and 99" in errors["discount_rate"]


def test_create_refuses_discount_rate_with_three_places(distributor, dist_admin):
    errors = refused_terms(distributor, dist_admin, kind="discount", discount_uses=1,
                           discount_rate=Decimal("12.345"))
    assert "2 decimal places" in errors["discount_rate"]


def test_create_refuses_discount_without_rate(distributor, dist_admin):
    errors = refused_terms(distributor, dist_admin, kind="discount", discount_uses=1)
    assert "Enter the discount rate" in errors["discount_rate"]


@pytest.mark.parametrize("rate", ["1", "99"])
def test_create_accepts_discount_rate_at_the_limits(distributor, dist_admin, rate):
    template = create(distributor, dist_admin, kind="discount", discount_uses=1,
                      discount_rate=Decimal(rate))
    assert template.discount_rate == Decimal(rate)


@pytest.mark.parametrize("uses", [None, 0, -1, 1001])
def test_create_refuses_discount_uses_outside_1_to_1000(distributor, dist_admin, uses):
    errors = refused_terms(distributor, dist_admin, kind="discount",
                           discount_rate=Decimal("10"), discount_uses=uses)
    assert "1 to 1,000 times" in errors["discount_uses"]


@pytest.mark.parametrize("minimum", [None, Decimal("0"), Decimal("-1"), Decimal("1.001")])
def test_create_refuses_threshold_without_a_valid_minimum(distributor, dist_admin, minimum):
    errors = refused_terms(distributor, dist_admin, kind="threshold", min_bill_amount=minimum)
    assert "minimum bill amount" in errors["min_bill_amount"]


@pytest.mark.parametrize("days", [None, 0, -1, 1096, 5000])
def test_create_refuses_relative_days_outside_1_to_1095(distributor, dist_admin, days):
    errors = refused_terms(distributor, dist_admin, valid_days=days)
    assert "from 1 to 1,095" in errors["valid_days"]


@pytest.mark.parametrize("days", [1, 1095])
def test_create_accepts_relative_days_at_the_limits(distributor, dist_admin, days):
    assert create(distributor, dist_admin, valid_days=days).valid_days == days


def test_create_refuses_valid_until_before_valid_from(distributor, dist_admin):
    today = timezone.localdate()
    errors = refused_terms(distributor, dist_admin, validity_type="fixed", valid_from=today,
                           valid_until=today - timedelta(days=1))
    assert "can not be before valid from" in errors["valid_until"]


def test_create_accepts_a_one_day_fixed_window(distributor, dist_admin):
    today = timezone.localdate()
    template = create(distributor, dist_admin, validity_type="fixed", valid_from=today,
                      valid_until=today)
    assert template.valid_from == template.valid_until == today


def test_create_refuses_fixed_window_without_dates(distributor, dist_admin):
    errors = refused_terms(distributor, dist_admin, validity_type="fixed")
    assert set(errors) >= {"valid_from", "valid_until"}


def test_create_refuses_unknown_validity_type(distributor, dist_admin):
    errors = refused_terms(distributor, dist_admin, validity_type="forever")
    assert "validity_type" in errors


def test_create_refuses_no_products_when_not_all_products(distributor, dist_admin):
    errors = refused_terms(distributor, dist_admin, all_products=False, products=[])
    assert "Choose the products" in errors["products"]


def test_create_with_chosen_products_stores_exactly_them(distributor, dist_admin):
    ecs, oss = f.make_product("ecs"), f.make_product("oss")
    f.make_product("rds")
    template = create(distributor, dist_admin, all_products=False, products=[ecs, oss])
    assert sorted(template.products.values_list("code", flat=True)) == ["ecs", "oss"]
    assert template.all_products is False


@pytest.mark.parametrize("name", ["", "   ", None])
def test_create_refuses_blank_name(distributor, dist_admin, name):
    errors = refused_terms(distributor, dist_admin, name=name)
    assert "Enter a name" in errors["name"]


def test_create_refuses_release_cap_of_zero_coupons(distributor, dist_admin):
    errors = refused_terms(distributor, dist_admin, release_cap_count=0)
    assert "at least 1 coupon" in errors["release_cap_count"]


@pytest.mark.parametrize("cap", ["0", "-1", "0.001", "1000000.01", "NaN"])
def test_create_refuses_bad_release_cap_amount(distributor, dist_admin, cap):
    errors = refused_terms(distributor, dist_admin, release_cap_amount=Decimal(cap))
    assert "release cap (amount)" in errors["release_cap_amount"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "voucher"), ("cost_bearer", "nobody"), ("issue_limit", "twice")],
)
def test_create_refuses_unknown_choices(distributor, dist_admin, field, value):
    errors = refused_terms(distributor, dist_admin, **{field: value})
    assert field in errors


@pytest.mark.parametrize("currency", ["XYZ", "", None, "usd"])
def test_create_refuses_a_currency_the_platform_does_not_bill_in(distributor, dist_admin,
                                                                 currency):
    errors = refused_terms(distributor, dist_admin, currency=currency)
    assert "currencies" in errors["currency"]


def test_create_reports_every_broken_rule_at_once(distributor, dist_admin):
    errors = refused_terms(distributor, dist_admin, name="", face_value=Decimal("0"),
                           valid_days=0, all_products=False)
    assert set(errors) >= {"name", "face_value", "valid_days", "products"}


# Who may create what


def test_tier1_with_budget_creates_platform_borne(distributor, dist_admin):
    template = create(distributor, dist_admin, cost_bearer="platform")
    assert template.is_platform_borne


def test_tier2_reseller_can_not_create_platform_borne_even_with_a_budget(tier2):
    reseller, _account, user = tier2
    errors = refused_terms(reseller, user, cost_bearer="platform")
    assert "tier-2 reseller can create partner-borne templates only" in errors["cost_bearer"]


def test_tier2_reseller_creates_partner_borne(tier2):
    reseller, _account, user = tier2
    assert create(reseller, user, cost_bearer="partner").partner == reseller


def test_tier1_without_budget_can_not_create_platform_borne(dist_admin):
    partner = f.make_partner(name="No budget")
    user = f.make_member(partner, "admin")
    errors = refused_terms(partner, user, cost_bearer="platform")
    assert "no platform-borne budget in USD" in errors["cost_bearer"]


def test_tier1_with_zero_budget_can_not_create_platform_borne(distributor, dist_admin):
    set_budget(distributor, "0")
    errors = refused_terms(distributor, dist_admin, cost_bearer="platform")
    assert "no platform-borne budget" in errors["cost_bearer"]


def test_budget_in_another_currency_does_not_allow_platform_borne(distributor, dist_admin):
    errors = refused_terms(distributor, dist_admin, cost_bearer="platform", currency="EUR")
    assert "no platform-borne budget in EUR" in errors["cost_bearer"]


def test_viewer_can_not_create(distributor, dist_viewer):
    with nothing_written(), pytest.raises(PermissionDeniedError):
        create(distributor, dist_viewer)


def test_other_partners_user_can_not_create_for_this_partner(distributor, other_admin):
    with nothing_written(), pytest.raises(PermissionDeniedError):
        create(distributor, other_admin)


def test_user_without_partner_membership_can_not_create(distributor, bd, customers):
    sub_user = f.make_subaccount_user(customers[0])
    for user in (bd, sub_user):
        with nothing_written(), pytest.raises(PermissionDeniedError):
            create(distributor, user)


def test_create_refused_while_coupon_function_is_off():
    partner = f.make_partner(coupon_enabled=False, budget="100.00")
    user = f.make_member(partner, "admin")
    with nothing_written(), pytest.raises(PermissionDeniedError, match="Contact your BD"):
        create(partner, user)


# ---------------------------------------------------------------------------------------
# Updating: money fields freeze once a request exists


def test_money_fields_can_change_before_any_request(distributor, dist_admin):
    template = create(distributor, dist_admin, face_value=Decimal("10.00"))
    updated = coupon_template_update(template=template, acting_user=dist_admin,
                                     face_value=Decimal("20.00"), valid_days=60)
    updated.refresh_from_db()
    assert updated.face_value == Decimal("20.00") and updated.valid_days == 60


def test_update_checks_the_terms_like_create(distributor, dist_admin):
    template = create(distributor, dist_admin)
    with nothing_written(), pytest.raises(TemplateTermsError) as exc:
        coupon_template_update(template=template, acting_user=dist_admin,
                               face_value=Decimal("1000000.01"))
    assert "face_value" in exc.value.errors


@pytest.mark.parametrize(
    "change",
    [
        {"face_value": Decimal("99.00")},
        {"currency": "EUR"},
        {"valid_days": 365},
        {"issue_limit": "unlimited"},
        {"release_cap_count": 500},
        {"kind": "discount", "discount_rate": Decimal("10"), "discount_uses": 2},
        {"all_products": False},
    ],
    ids=lambda change: "+".join(change),
)
def test_money_fields_are_frozen_once_a_request_exists(distributor, dist_admin, customers,
                                                       change):
    template = create(distributor, dist_admin)
    f.submit(template, dist_admin, customers[:1])
    with nothing_written(), pytest.raises(ApplicationError, match="can no longer change"):
        coupon_template_update(template=template, acting_user=dist_admin, **change)


def test_products_are_frozen_once_a_request_exists(distributor, dist_admin, customers):
    ecs, oss = f.make_product("ecs"), f.make_product("oss")
    template = create(distributor, dist_admin, all_products=False, products=[ecs])
    f.submit(template, dist_admin, customers[:1])
    with nothing_written(), pytest.raises(ApplicationError, match="can no longer change"):
        coupon_template_update(template=template, acting_user=dist_admin, products=[ecs, oss])
    assert list(template.products.values_list("code", flat=True)) == ["ecs"]


def test_name_and_description_still_change_once_a_request_exists(distributor, dist_admin,
                                                                 customers):
    template = create(distributor, dist_admin, name="Old name")
    f.submit(template, dist_admin, customers[:1])
    updated = coupon_template_update(template=template, acting_user=dist_admin,
                                     name="  New name  ", description="Now described")
    updated.refresh_from_db()
    assert updated.name == "New name"
    assert updated.description == "Now described"
    row = AuditLog.objects.get(action="template.update", object_id=str(template.pk))
    assert row.actor == dist_admin and row.partner == distributor
    assert row.before["name"] == "Old name" and row.after["name"] == "New name"


def test_update_refuses_blank_name(distributor, dist_admin):
    template = create(distributor, dist_admin)
    with nothing_written(), pytest.raises(TemplateTermsError) as exc:
        coupon_template_update(template=template, acting_user=dist_admin, name="  ")
    assert "name" in exc.value.errors


@pytest.mark.parametrize("field", ["status", "partner", "released_amount", "created_by"])
def test_update_refuses_fields_outside_the_template_terms(distributor, dist_admin, field):
    template = create(distributor, dist_admin)
    with nothing_written(), pytest.raises(ApplicationError, match="can not be changed"):
        coupon_template_update(template=template, acting_user=dist_admin, **{field: None})


def test_viewer_can_not_update(distributor, dist_admin, dist_viewer):
    template = create(distributor, dist_admin)
    with nothing_written(), pytest.raises(PermissionDeniedError):
        coupon_template_update(template=template, acting_user=dist_viewer, name="x")


def test_tier2_can_not_turn_a_template_platform_borne_by_update(tier2):
    reseller, _account, user = tier2
    template = create(reseller, user, cost_bearer="partner")
    with nothing_written(), pytest.raises(TemplateTermsError) as exc:
        coupon_template_update(template=template, acting_user=user, cost_bearer="platform")
    assert "partner-borne templates only" in exc.value.errors["cost_bearer"]


def test_partner_without_budget_can_not_turn_a_template_platform_borne_by_update():
    partner = f.make_partner(name="No budget")
    user = f.make_member(partner, "admin")
    template = create(partner, user, cost_bearer="partner")
    with nothing_written(), pytest.raises(TemplateTermsError) as exc:
        coupon_template_update(template=template, acting_user=user, cost_bearer="platform")
    assert "no platform-borne budget in USD" in exc.value.errors["cost_bearer"]


def test_platform_template_can_not_move_to_a_currency_without_budget(distributor, dist_admin):
    template = create(distributor, dist_admin, cost_bearer="platform")
    with nothing_written(), pytest.raises(TemplateTermsError) as exc:
        coupon_template_update(template=template, acting_user=dist_admin, currency="EUR")
    assert "no platform-borne budget in EUR" in exc.value.errors["cost_bearer"]


def test_tier1_with_budget_may_turn_a_template_platform_borne_before_requests(
    distributor, dist_admin,
):
    template = create(distributor, dist_admin, cost_bearer="partner")
    updated = coupon_template_update(template=template, acting_user=dist_admin,
                                     cost_bearer="platform")
    assert updated.is_platform_borne


# ---------------------------------------------------------------------------------------
# Disabling


def test_disable_sets_status_and_writes_audit_before_after(distributor, dist_admin,
                                                          dist_operator):
    template = create(distributor, dist_operator)
    coupon_template_disable(template=template, acting_user=dist_admin)
    template.refresh_from_db()
    assert template.status == CouponTemplate.Status.DISABLED
    assert template.disabled_at is not None
    row = AuditLog.objects.get(action="template.disable", object_id=str(template.pk))
    assert row.actor == dist_admin and row.partner == distributor
    assert row.before == {"status": "active"} and row.after == {"status": "disabled"}


def test_an_operator_may_not_disable_a_template(distributor, dist_operator):
    """Disabling stops a programme: the partner admin's act (docs/ROLES.md)."""
    template = create(distributor, dist_operator)
    with nothing_written(), pytest.raises(PermissionDeniedError,
                                          match="Only a partner admin can disable"):
        coupon_template_disable(template=template, acting_user=dist_operator)


def test_disable_twice_is_refused_and_writes_nothing(distributor, dist_admin):
    template = create(distributor, dist_admin)
    coupon_template_disable(template=template, acting_user=dist_admin)
    with nothing_written(), pytest.raises(ApplicationError, match="already disabled"):
        coupon_template_disable(template=template, acting_user=dist_admin)


@pytest.mark.parametrize("who", ["viewer", "other"])
def test_disable_refused_for_viewer_and_other_partner(distributor, dist_admin, dist_viewer,
                                                      other_admin, who):
    template = create(distributor, dist_admin)
    user = dist_viewer if who == "viewer" else other_admin
    with nothing_written(), pytest.raises(PermissionDeniedError):
        coupon_template_disable(template=template, acting_user=user)


def test_template_with_a_request_is_never_deleted(distributor, dist_admin, customers):
    template = create(distributor, dist_admin)
    f.submit(template, dist_admin, customers[:1])
    with pytest.raises(ProtectedError):
        template.delete()
    assert CouponTemplate.objects.filter(pk=template.pk).exists()


# ---------------------------------------------------------------------------------------
# Checking a selection (the Issue Coupon preview)


def test_selection_check_counts_and_totals_without_writing(distributor, dist_admin, customers):
    template = create(distributor, dist_admin, face_value=Decimal("33.33"))
    with nothing_written():
        check = issuance_selection_check(template=template, account_ids=ids(customers[:3]))
    assert check.ok, check.problems
    assert check.count == 3
    assert check.total == Decimal("99.99")
    assert check.needs_bd_approval is True


def test_selection_check_total_of_discount_is_cap_times_uses_times_count(
    distributor, dist_admin, customers,
):
    template = create(distributor, dist_admin, kind="discount", face_value=Decimal("10.00"),
                      discount_rate=Decimal("20"), discount_uses=3)
    check = issuance_selection_check(template=template, account_ids=ids(customers[:2]))
    assert check.total == Decimal("60.00")


def test_selection_check_ignores_blank_ids_and_whitespace(distributor, dist_admin, customers):
    template = create(distributor, dist_admin)
    check = issuance_selection_check(
        template=template, account_ids=["", "  ", f" {customers[0].account_id} "],
    )
    assert check.ok and ids(check.accounts) == [customers[0].account_id]


def test_selection_check_of_nothing_asks_for_an_account(distributor, dist_admin):
    template = create(distributor, dist_admin)
    check = issuance_selection_check(template=template, account_ids=[])
    assert not check.ok and "Select at least one account." in check.problems


def test_needs_no_bd_approval_for_partner_borne_when_the_partner_has_it_off(dist_admin):
    partner = f.make_partner(requires_bd_approval=False)
    user = f.make_member(partner, "admin")
    accounts = f.make_accounts(partner, 1)
    template = create(partner, user)
    check = issuance_selection_check(template=template, account_ids=ids(accounts))
    assert check.needs_bd_approval is False


def test_platform_borne_always_needs_bd_approval():
    partner = f.make_partner(requires_bd_approval=False, budget="1000.00")
    user = f.make_member(partner, "admin")
    accounts = f.make_accounts(partner, 1)
    template = create(partner, user, cost_bearer="platform")
    check = issuance_selection_check(template=template, account_ids=ids(accounts))
    assert check.ok and check.needs_bd_approval is True


def test_selection_check_names_tier2_accounts_only_for_platform_borne(
    distributor, dist_admin, customers, tier2,
):
    _reseller, t2_account, _user = tier2
    selection = [customers[0].account_id, t2_account.account_id]
    partner_borne = create(distributor, dist_admin, cost_bearer="partner")
    assert issuance_selection_check(template=partner_borne, account_ids=selection).ok
    platform = create(distributor, dist_admin, cost_bearer="platform")
    check = issuance_selection_check(template=platform, account_ids=selection)
    assert check.tier2 == [t2_account.account_id]
    assert any(t2_account.account_id in p and "tier-2" in p for p in check.problems)


# ---------------------------------------------------------------------------------------
# Submitting a request


def test_submit_creates_one_pending_request_with_a_row_per_account(distributor, dist_operator,
                                                                   customers):
    template = create(distributor, dist_operator, face_value=Decimal("25.00"))
    request = f.submit(template, dist_operator, customers[:4])
    request.refresh_from_db()
    assert request.status == IssuanceRequest.Status.PENDING
    assert request.route == IssuanceRequest.Route.BD
    assert request.partner == distributor and request.template == template
    assert request.submitted_by == dist_operator
    assert request.cost_bearer == "partner" and request.currency == "USD"
    assert request.unit_value == Decimal("25.00")
    assert request.recipient_count == 4
    assert request.total_amount == Decimal("100.00")
    recipients = IssuanceRecipient.objects.filter(request=request)
    assert sorted(recipients.values_list("sub_account_id", flat=True)) == sorted(
        a.pk for a in customers[:4]
    )
    assert all(r.holds and r.limited and r.template_id == template.pk for r in recipients)


def test_submit_writes_audit_row_with_actor_partner_and_after(distributor, dist_admin,
                                                              customers):
    template = create(distributor, dist_admin, face_value=Decimal("10.00"))
    request = f.submit(template, dist_admin, customers[:2])
    row = AuditLog.objects.get(action="request.submit", object_id=str(request.pk))
    assert row.actor == dist_admin and row.partner == distributor
    assert row.object_type == "coupons.IssuanceRequest"
    assert row.after["status"] == "pending"
    assert row.after["recipients"] == 2
    assert Decimal(row.after["total"]) == Decimal("20.00")
    assert row.after["template"] == template.pk


def test_partner_borne_submit_is_auto_approved_route_when_no_bd_approval_required():
    partner = f.make_partner(requires_bd_approval=False)
    user = f.make_member(partner, "operator")
    accounts = f.make_accounts(partner, 2)
    request = f.submit(create(partner, user), user, accounts)
    assert request.route == IssuanceRequest.Route.AUTO


def test_platform_borne_submit_goes_to_the_bd_even_without_the_approval_rule():
    partner = f.make_partner(requires_bd_approval=False, budget="500.00")
    user = f.make_member(partner, "admin")
    accounts = f.make_accounts(partner, 2)
    request = f.submit(create(partner, user, cost_bearer="platform"), user, accounts)
    assert request.route == IssuanceRequest.Route.BD


def test_submit_refuses_unknown_and_foreign_ids_naming_them(distributor, dist_admin, customers,
                                                            other_partner):
    foreign = f.make_accounts(other_partner, 1, prefix="FOREIGN-")[0]
    template = create(distributor, dist_admin)
    selection = [customers[0].account_id, "NO-SUCH-ID", foreign.account_id]
    with nothing_written(), pytest.raises(ApplicationError) as exc:
        issuance_request_submit(template=template, acting_user=dist_admin,
                                account_ids=selection)
    assert "NO-SUCH-ID" in exc.value.message
    assert foreign.account_id in exc.value.message
    assert customers[0].account_id not in exc.value.message
    assert "not among your sub-accounts" in exc.value.message


def test_submit_refuses_the_customers_of_a_tier2_reseller(distributor, dist_admin, customers,
                                                          tier2):
    reseller, _t2_account, _user = tier2
    resellers_customer = f.make_accounts(reseller, 1, prefix="T2CUST-")[0]
    template = create(distributor, dist_admin)
    with nothing_written(), pytest.raises(ApplicationError) as exc:
        issuance_request_submit(template=template, acting_user=dist_admin,
                                account_ids=[resellers_customer.account_id])
    assert resellers_customer.account_id in exc.value.message


def test_submit_refuses_duplicate_ids_naming_them(distributor, dist_admin, customers):
    template = create(distributor, dist_admin)
    a, b = customers[0].account_id, customers[1].account_id
    with nothing_written(), pytest.raises(ApplicationError) as exc:
        issuance_request_submit(template=template, acting_user=dist_admin,
                                account_ids=[a, b, a])
    assert f"listed twice: {a}." in exc.value.message


def test_submit_platform_borne_refuses_tier2_reseller_accounts_naming_them(
    distributor, dist_admin, customers, tier2,
):
    _reseller, t2_account, _user = tier2
    template = create(distributor, dist_admin, cost_bearer="platform")
    with nothing_written(), pytest.raises(ApplicationError) as exc:
        issuance_request_submit(
            template=template, acting_user=dist_admin,
            account_ids=[customers[0].account_id, t2_account.account_id],
        )
    assert "can not be issued to tier-2 resellers" in exc.value.message
    assert t2_account.account_id in exc.value.message
    assert customers[0].account_id not in exc.value.message


def test_submit_partner_borne_accepts_tier2_reseller_accounts(distributor, dist_admin, tier2):
    _reseller, t2_account, _user = tier2
    template = create(distributor, dist_admin, cost_bearer="partner")
    request = f.submit(template, dist_admin, [t2_account])
    assert request.recipient_count == 1


def test_submit_refuses_an_account_already_pending_for_a_limited_template(
    distributor, dist_admin, customers,
):
    template = create(distributor, dist_admin, issue_limit="one")
    f.submit(template, dist_admin, customers[:2])
    with nothing_written(), pytest.raises(ApplicationError) as exc:
        f.submit(template, dist_admin, customers[1:3])
    assert "Limited to 1" in exc.value.message
    assert customers[1].account_id in exc.value.message
    assert customers[2].account_id not in exc.value.message


def test_submit_refuses_an_account_that_already_holds_a_limited_coupon(
    distributor, dist_admin, customers, bd,
):
    """Once approved and released, the account holds the coupon for good."""
    template = create(distributor, dist_admin, issue_limit="one")
    first = f.submit(template, dist_admin, customers[:1])
    approval_approve(request_id=first.pk, acting_user=bd)
    issuance_request_release(request_id=first.pk)
    first.refresh_from_db()
    assert first.status == IssuanceRequest.Status.ISSUED
    assert Coupon.objects.filter(template=template, sub_account=customers[0]).count() == 1
    with nothing_written(), pytest.raises(ApplicationError, match=customers[0].account_id):
        f.submit(template, dist_admin, customers[:1])


def test_account_of_a_cancelled_request_can_be_selected_again(distributor, dist_admin,
                                                             customers):
    """Only pending and issued recipients hold a "Limited to 1" account."""
    template = create(distributor, dist_admin, issue_limit="one")
    first = f.submit(template, dist_admin, customers[:1])
    issuance_request_cancel(request_id=first.pk, acting_user=dist_admin)
    again = f.submit(template, dist_admin, customers[:1])
    assert again.recipient_count == 1
    assert IssuanceRecipient.objects.filter(template=template, sub_account=customers[0],
                                            holds=True).get().request_id == again.pk


def test_unique_index_refuses_a_second_holder_the_check_missed(distributor, dist_admin,
                                                              customers, monkeypatch):
    """What a race looks like to the loser: its check saw no holder, the insert meets one."""
    template = create(distributor, dist_admin, issue_limit="one")
    f.submit(template, dist_admin, customers[:1])
    real_check = services.issuance_selection_check

    def check_that_misses_holders(**kwargs):
        check = real_check(**kwargs)
        check.holding = []
        check.problems = [p for p in check.problems if "Limited to 1" not in p]
        return check

    monkeypatch.setattr(services, "issuance_selection_check", check_that_misses_holders)
    with nothing_written(), pytest.raises(ApplicationError, match="at the same time"):
        f.submit(template, dist_admin, customers[:2])
    assert IssuanceRecipient.objects.filter(template=template, holds=True).count() == 1


def test_limited_templates_are_independent_of_each_other(distributor, dist_admin, customers):
    first = create(distributor, dist_admin, issue_limit="one")
    second = create(distributor, dist_admin, issue_limit="one")
    f.submit(first, dist_admin, customers[:1])
    assert f.submit(second, dist_admin, customers[:1]).recipient_count == 1


def test_unlimited_template_can_go_to_the_same_account_again(distributor, dist_admin,
                                                             customers):
    template = create(distributor, dist_admin, issue_limit="unlimited")
    f.submit(template, dist_admin, customers[:1])
    f.submit(template, dist_admin, customers[:1])
    rows = IssuanceRecipient.objects.filter(template=template, sub_account=customers[0])
    assert rows.count() == 2
    assert not any(r.limited for r in rows)


def test_submit_refuses_accounts_billed_in_another_currency(distributor, dist_admin):
    euro = f.make_accounts(distributor, 1, prefix="EUR-", currency="EUR")[0]
    template = create(distributor, dist_admin, currency="USD")
    with nothing_written(), pytest.raises(ApplicationError, match=euro.account_id):
        f.submit(template, dist_admin, [euro])


def test_submit_refuses_a_disabled_template(distributor, dist_admin, customers):
    template = create(distributor, dist_admin)
    coupon_template_disable(template=template, acting_user=dist_admin)
    with nothing_written(), pytest.raises(ApplicationError, match="disabled"):
        f.submit(template, dist_admin, customers[:1])


def test_submit_refuses_an_expired_fixed_window(distributor, dist_admin, customers):
    template = f.ended(create(distributor, dist_admin, **f.fixed_window(-30, 30)), days=1)
    assert template.valid_until == timezone.localdate() - timedelta(days=1)
    with nothing_written(), pytest.raises(ApplicationError, match="validity ended on"):
        f.submit(template, dist_admin, customers[:1])


def test_submit_accepts_a_fixed_window_ending_today(distributor, dist_admin, customers):
    template = create(distributor, dist_admin, **f.fixed_window(-30, 30))
    assert template.valid_until == timezone.localdate()
    assert f.submit(template, dist_admin, customers[:1]).recipient_count == 1


def test_submit_refused_once_the_coupon_function_is_switched_off(distributor, dist_admin,
                                                                 customers):
    template = create(distributor, dist_admin)
    distributor.coupon_enabled = False
    distributor.save(update_fields=["coupon_enabled"])
    template.partner.refresh_from_db()
    with nothing_written(), pytest.raises(ApplicationError, match="Contact your BD"):
        f.submit(template, dist_admin, customers[:1])


def test_viewer_can_not_submit(distributor, dist_admin, dist_viewer, customers):
    template = create(distributor, dist_admin)
    with nothing_written(), pytest.raises(PermissionDeniedError):
        f.submit(template, dist_viewer, customers[:1])


def test_other_partners_user_can_not_submit(distributor, dist_admin, other_admin, customers):
    template = create(distributor, dist_admin)
    with nothing_written(), pytest.raises(PermissionDeniedError):
        f.submit(template, other_admin, customers[:1])


def test_submit_of_nothing_is_refused(distributor, dist_admin):
    template = create(distributor, dist_admin)
    with nothing_written(), pytest.raises(ApplicationError, match="Select at least one"):
        issuance_request_submit(template=template, acting_user=dist_admin, account_ids=[])


def test_submit_refuses_one_more_than_the_maximum_accounts(distributor, dist_admin, settings):
    limit = settings.ISSUE_MAX_ACCOUNTS
    assert limit == 10_000
    template = create(distributor, dist_admin)
    selection = [f"X-{i:06d}" for i in range(limit + 1)]
    with nothing_written(), pytest.raises(ApplicationError) as exc:
        issuance_request_submit(template=template, acting_user=dist_admin,
                                account_ids=selection)
    assert "10,001 accounts were selected" in exc.value.message
    assert "at most 10,000" in exc.value.message


def test_submit_accepts_exactly_the_maximum_accounts(distributor, dist_admin, settings):
    settings.ISSUE_MAX_ACCOUNTS = 4
    accounts = f.make_accounts(distributor, 5)
    template = create(distributor, dist_admin)
    assert f.submit(template, dist_admin, accounts[:4]).recipient_count == 4
    other = create(distributor, dist_admin)
    with nothing_written(), pytest.raises(ApplicationError, match="at most 4"):
        f.submit(other, dist_admin, accounts)


# Platform budget


def test_platform_submit_reserves_the_total_in_the_budget(distributor, dist_admin, customers,
                                                          platform_template):
    budget = PlatformBudget.objects.get(partner=distributor, currency="USD")
    assert budget.reserved == Decimal("0")
    f.submit(platform_template, dist_admin, customers[:3])
    budget.refresh_from_db()
    assert budget.reserved == Decimal("300.00")
    assert budget.remaining == Decimal("9700.00")


def test_platform_submit_over_the_budget_shows_remaining_and_writes_nothing(
    distributor, dist_admin, customers, platform_template,
):
    set_budget(distributor, "250.00")
    with nothing_written(), pytest.raises(ApplicationError) as exc:
        f.submit(platform_template, dist_admin, customers[:3])
    assert "300.00 USD" in exc.value.message
    assert "remaining platform-borne budget of 250.00 USD" in exc.value.message
    budget = PlatformBudget.objects.get(partner=distributor, currency="USD")
    assert budget.reserved == Decimal("0")
    assert not IssuanceRequest.objects.exists()
    assert not IssuanceRecipient.objects.exists()


def test_platform_budget_remaining_shrinks_with_each_pending_request(
    distributor, dist_admin, customers, platform_template,
):
    set_budget(distributor, "250.00")
    f.submit(platform_template, dist_admin, customers[:2])
    with nothing_written(), pytest.raises(ApplicationError, match="budget of 50.00 USD"):
        f.submit(platform_template, dist_admin, customers[2:3])


def test_platform_submit_that_uses_the_budget_exactly_is_accepted(
    distributor, dist_admin, customers, platform_template,
):
    set_budget(distributor, "300.00")
    f.submit(platform_template, dist_admin, customers[:3])
    budget = PlatformBudget.objects.get(partner=distributor, currency="USD")
    assert budget.remaining == Decimal("0.00")


def test_partner_borne_submit_leaves_the_platform_budget_alone(distributor, dist_admin,
                                                              customers):
    template = create(distributor, dist_admin, face_value=Decimal("1000000.00"))
    f.submit(template, dist_admin, customers)
    budget = PlatformBudget.objects.get(partner=distributor, currency="USD")
    assert budget.reserved == Decimal("0")


# Release caps


def test_release_cap_count_counts_pending_requests(distributor, dist_admin, customers):
    template = create(distributor, dist_admin, release_cap_count=3, issue_limit="unlimited")
    f.submit(template, dist_admin, customers[:2])
    with nothing_written(), pytest.raises(ApplicationError) as exc:
        f.submit(template, dist_admin, customers[2:4])
    assert "at most 3 coupons; 1 left, 2 selected" in exc.value.message
    assert f.submit(template, dist_admin, customers[2:3]).recipient_count == 1


def test_release_cap_amount_counts_pending_requests(distributor, dist_admin, customers):
    template = create(distributor, dist_admin, face_value=Decimal("40.00"),
                      release_cap_amount=Decimal("100.00"))
    f.submit(template, dist_admin, customers[:2])
    with nothing_written(), pytest.raises(ApplicationError) as exc:
        f.submit(template, dist_admin, customers[2:3])
    assert "at most 100.00 USD; 20.00 USD is left" in exc.value.message


def test_money_fields_frozen_then_disable_still_allowed(distributor, dist_admin, customers):
    template = create(distributor, dist_admin)
    f.submit(template, dist_admin, customers[:1])
    coupon_template_disable(template=template, acting_user=dist_admin)
    template.refresh_from_db()
    assert template.status == CouponTemplate.Status.DISABLED


def test_submit_never_selects_accounts_from_another_partner_with_the_same_template_ids(
    distributor, dist_admin, other_partner, other_admin,
):
    """A template id of another partner can not be used to issue to its accounts."""
    other_template = create(other_partner, other_admin)
    other_accounts = f.make_accounts(other_partner, 1)
    with nothing_written(), pytest.raises(PermissionDeniedError):
        f.submit(other_template, dist_admin, other_accounts)
