"""The approval state machine, routing, release and budget of PRODUCT §5, through the
services."""
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import PartnerMembership
from accounts.services import (
    partner_bd_assign,
    partner_coupon_settings_update,
    platform_budget_set,
)
from approvals import release, services, transitions
from approvals.models import Approval
from approvals.tasks import release_request
from couponplatform.exceptions import InvalidTransitionError, PermissionDeniedError
from coupons.models import Coupon, CouponTemplate, IssuanceRecipient, IssuanceRequest
from coupons.services import coupon_template_disable
from tests import factories as f
from tests.approvals import helpers as h

Status = IssuanceRequest.Status
pytestmark = pytest.mark.django_db


def coupons_of(request):
    return Coupon.objects.filter(request_id=request.pk)


# ---------------------------------------------------------------------------------------
# The transition table


def test_transition_table_is_exactly_the_product_state_machine():
    assert IssuanceRequest.TRANSITIONS == {
        Status.PENDING: {Status.APPROVED, Status.REJECTED, Status.CANCELLED},
        Status.APPROVED: {Status.ISSUED, Status.FAILED},
        Status.FAILED: {Status.APPROVED, Status.WITHDRAWN},
        Status.ISSUED: set(),
        Status.REJECTED: set(),
        Status.CANCELLED: set(),
        Status.WITHDRAWN: set(),
    }
    assert set(IssuanceRequest.TRANSITIONS) == set(Status.values)


def test_no_status_move_outside_the_table_is_possible_and_a_refused_move_writes_nothing(
    partner_template, dist_admin, customers,
):
    request = f.submitted(partner_template, dist_admin, customers[:1])
    refused = 0
    for source in Status.values:
        for target in Status.values:
            if target in IssuanceRequest.TRANSITIONS[source]:
                continue
            request.status = source  # in memory only: the mover must refuse before any write
            with f.nothing_written(), pytest.raises(InvalidTransitionError) as exc:
                transitions.issuance_request_move(request=request, to=target, actor=None)
            assert f"Request {request.number} is" in exc.value.message
            assert "can not be" in exc.value.message
            refused += 1
    assert refused == 49 - 7


# ---------------------------------------------------------------------------------------
# Routing


def test_platform_borne_request_waits_for_the_bd_with_one_open_approval(
    platform_template, dist_admin, customers, bd,
):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    assert request.status == Status.PENDING
    assert request.route == IssuanceRequest.Route.BD
    assert request.decided_by is None and request.decided_at is None
    approval = Approval.objects.get(request=request)
    assert approval.status == Approval.Status.OPEN
    assert approval.assigned_bd == bd
    assert not coupons_of(request).exists()


def test_platform_borne_request_goes_to_the_bd_even_when_the_partner_needs_no_approval(
    distributor, platform_template, dist_admin, customers, bd,
):
    partner_coupon_settings_update(partner=distributor, acting_user=bd, coupon_enabled=True,
                                   requires_bd_approval=False)
    request = f.submitted(platform_template, dist_admin, customers[:2])
    assert request.status == Status.PENDING
    assert request.route == IssuanceRequest.Route.BD


def test_partner_borne_request_waits_for_the_bd_when_the_partner_requires_approval(
    partner_template, dist_admin, customers,
):
    request = f.submitted(partner_template, dist_admin, customers[:2])
    assert request.status == Status.PENDING
    assert request.route == IssuanceRequest.Route.BD
    assert Approval.objects.get(request=request).status == Approval.Status.OPEN


def test_partner_borne_request_without_required_approval_is_auto_approved_and_issued_at_once(
    distributor, partner_template, dist_admin, customers, bd,
):
    partner_coupon_settings_update(partner=distributor, acting_user=bd, coupon_enabled=True,
                                   requires_bd_approval=False)
    request = f.submitted(partner_template, dist_admin, customers[:3])
    assert request.route == IssuanceRequest.Route.AUTO
    assert request.status == Status.ISSUED
    assert request.decided_by is None
    assert request.decided_at is not None and request.issued_at is not None
    approval = Approval.objects.get(request=request)
    assert approval.status == Approval.Status.AUTO_APPROVED
    assert approval.decided_by is None
    assert coupons_of(request).count() == 3
    approved = [r for r in h.audit_rows(request) if r.action == "request.approved"]
    assert len(approved) == 1
    assert approved[0].actor is None
    assert approved[0].reason.startswith("Auto-approved")


def test_one_open_approval_per_request_is_held_by_the_database(
    partner_template, dist_admin, customers, bd,
):
    request = f.submitted(partner_template, dist_admin, customers[:1])
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(request=request, status=Approval.Status.OPEN, assigned_bd=bd)
    # A decided approval beside the open one is fine: the rule is about open ones only.
    Approval.objects.create(request=request, status=Approval.Status.REJECTED)


# ---------------------------------------------------------------------------------------
# Allowed transitions


def test_bd_approval_moves_pending_to_approved_and_the_release_to_issued(
    platform_template, dist_admin, customers, bd,
):
    request = f.submitted(platform_template, dist_admin, customers[:3])
    with f.deferred() as release:
        services.approval_approve(request_id=request.pk, acting_user=bd)
    request.refresh_from_db()
    assert request.status == Status.APPROVED
    assert request.decided_by == bd and request.decided_at is not None
    assert not coupons_of(request).exists(), "approval and issuing are separate steps"
    approval = Approval.objects.get(request=request)
    assert (approval.status, approval.decided_by) == (Approval.Status.APPROVED, bd)

    f.run_callbacks(list(release))
    request.refresh_from_db()
    assert request.status == Status.ISSUED
    assert request.issued_at is not None
    assert request.released_so_far == 3
    assert coupons_of(request).count() == 3


def test_bd_rejection_moves_pending_to_rejected_with_the_reason(
    platform_template, dist_admin, customers, bd,
):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    request = f.reject(request, bd, reason="  Budget is for Q3 campaigns.  ")
    assert request.status == Status.REJECTED
    assert request.reason == "Budget is for Q3 campaigns."
    assert request.decided_by == bd
    approval = Approval.objects.get(request=request)
    assert approval.status == Approval.Status.REJECTED
    assert approval.reason == "Budget is for Q3 campaigns."
    assert not coupons_of(request).exists()


@pytest.mark.parametrize("role", ["admin", "operator"])
def test_partner_writer_cancels_a_pending_request(
    role, distributor, platform_template, dist_admin, customers,
):
    user = f.make_member(distributor, role)
    request = f.submitted(platform_template, dist_admin, customers[:2])
    request = f.cancel(request, user)
    assert request.status == Status.CANCELLED
    approval = Approval.objects.get(request=request)
    assert approval.status == Approval.Status.CANCELLED
    assert not Approval.objects.filter(request=request, status=Approval.Status.OPEN).exists()
    assert not coupons_of(request).exists()


def test_retry_moves_a_failed_request_back_to_approved_and_releases_it(
    distributor, platform_template, dist_admin, customers, bd,
):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    platform_budget_set(partner=distributor, acting_user=bd, currency="USD",
                        amount=Decimal("50.00"))
    request = f.approve(request, bd)
    assert request.status == Status.FAILED
    platform_budget_set(partner=distributor, acting_user=bd, currency="USD",
                        amount=Decimal("100.00"))
    with f.deferred() as release:
        services.issuance_request_retry(request_id=request.pk, acting_user=dist_admin)
    request.refresh_from_db()
    assert request.status == Status.APPROVED
    assert request.reason == ""
    f.run_callbacks(list(release))
    request.refresh_from_db()
    assert request.status == Status.ISSUED
    assert coupons_of(request).count() == 2


def test_withdraw_moves_a_failed_request_to_withdrawn(
    partner_template, dist_admin, customers, bd,
):
    request = f.submitted(partner_template, dist_admin, customers[:2])
    request = f.approve_and_fail(request, bd, dist_admin)
    request = f.withdraw(request, dist_admin)
    assert request.status == Status.WITHDRAWN
    assert not coupons_of(request).exists()


# ---------------------------------------------------------------------------------------
# Refused transitions

ALLOWED = {
    (Status.PENDING, "approve"), (Status.PENDING, "reject"), (Status.PENDING, "cancel"),
    (Status.FAILED, "retry"), (Status.FAILED, "withdraw"),
}
VERB = {"approve": "approved", "reject": "rejected", "cancel": "cancelled",
        "retry": "retried", "withdraw": "withdrawn"}
REFUSED = [
    (status, action) for status in Status.values
    for action in ("approve", "reject", "cancel", "retry", "withdraw")
    if (status, action) not in ALLOWED
]


def _act(action, request, *, bd, partner_user):
    if action == "approve":
        return services.approval_approve(request_id=request.pk, acting_user=bd)
    if action == "reject":
        return services.approval_reject(request_id=request.pk, acting_user=bd,
                                        reason="Too late.")
    fn = {"cancel": services.issuance_request_cancel, "retry": services.issuance_request_retry,
          "withdraw": services.issuance_request_withdraw}[action]
    return fn(request_id=request.pk, acting_user=partner_user)


@pytest.mark.parametrize(("status", "action"), REFUSED)
def test_action_not_allowed_from_a_status_raises_a_clear_error_and_writes_nothing(
    status, action, platform_template, dist_admin, customers, bd,
):
    request = f.request_in(status, template=platform_template, partner_user=dist_admin, bd=bd,
                           accounts=customers[:2])
    assert request.status == status
    with f.nothing_written(), f.committed():
        with pytest.raises(InvalidTransitionError) as exc:
            _act(action, request, bd=bd, partner_user=dist_admin)
    assert exc.value.message == (
        f"Request {request.number} is {request.get_status_display().lower()}; it can not be "
        f"{VERB[action]}."
    )


def test_partner_can_not_bypass_the_bd_by_retrying_a_pending_request(
    distributor, platform_template, dist_admin, customers,
):
    # pending → approved is in the table (for the BD); retry must still start from failed.
    request = f.submitted(platform_template, dist_admin, customers[:2])
    with f.nothing_written(), f.committed():
        with pytest.raises(InvalidTransitionError, match="pending approval; it can not be "
                                                         "retried"):
            services.issuance_request_retry(request_id=request.pk, acting_user=dist_admin)
    assert not coupons_of(request).exists()
    assert h.budget_of(distributor).consumed == Decimal("0.00")


def test_bd_approve_does_not_re_release_a_failed_request(
    partner_template, dist_admin, customers, bd,
):
    # failed → approved is the partner's retry, not a second decision of the BD.
    request = f.submitted(partner_template, dist_admin, customers[:2])
    request = f.approve_and_fail(request, bd, dist_admin)
    with f.nothing_written(), f.committed():
        with pytest.raises(InvalidTransitionError, match="failed to issue; it can not be "
                                                         "approved"):
            services.approval_approve(request_id=request.pk, acting_user=bd)


def test_transition_on_an_unknown_request_id_raises_and_writes_nothing(bd, dist_admin):
    with f.nothing_written():
        with pytest.raises(InvalidTransitionError, match="There is no request #999999"):
            services.approval_approve(request_id=999999, acting_user=bd)
        with pytest.raises(InvalidTransitionError, match="There is no request #999999"):
            services.issuance_request_cancel(request_id=999999, acting_user=dist_admin)


@pytest.mark.parametrize("status", [Status.PENDING, Status.ISSUED, Status.FAILED,
                                    Status.REJECTED, Status.CANCELLED, Status.WITHDRAWN])
def test_release_of_a_request_that_is_not_approved_changes_nothing(
    status, platform_template, dist_admin, customers, bd,
):
    request = f.request_in(status, template=platform_template, partner_user=dist_admin, bd=bd,
                           accounts=customers[:2])
    with f.nothing_written(), f.committed():
        assert release.issuance_request_release(request_id=request.pk).status == status


# ---------------------------------------------------------------------------------------
# Reject reason; what reject, cancel and withdraw give back


@pytest.mark.parametrize("reason", ["", "   ", "\n\t ", None])
def test_reject_without_a_reason_is_refused_and_writes_nothing(
    reason, platform_template, dist_admin, customers, bd,
):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    with f.nothing_written(), pytest.raises(InvalidTransitionError, match="Give a reason"):
        services.approval_reject(request_id=request.pk, acting_user=bd, reason=reason)


def test_reject_with_an_overlong_reason_is_refused_and_writes_nothing(
    platform_template, dist_admin, customers, bd,
):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    with f.nothing_written(), pytest.raises(InvalidTransitionError, match="at most 2000"):
        services.approval_reject(request_id=request.pk, acting_user=bd, reason="x" * 2001)


def _end(how, request, *, bd, partner_user):
    if how == "reject":
        return f.reject(request, bd)
    if how == "cancel":
        return f.cancel(request, partner_user)
    return f.withdraw(f.approve_and_fail(request, bd, partner_user), partner_user)


@pytest.mark.parametrize("how", ["reject", "cancel", "withdraw"])
def test_reject_cancel_and_withdraw_free_the_limit_one_holds_and_the_budget_reservation(
    how, distributor, dist_admin, customers, bd,
):
    template = f.make_template(distributor, dist_admin, cost_bearer="platform",
                               issue_limit="one")
    request = f.submitted(template, dist_admin, customers[:3])
    assert h.budget_of(distributor).reserved == Decimal("150.00")
    assert IssuanceRecipient.objects.filter(request=request, holds=True).count() == 3

    request = _end(how, request, bd=bd, partner_user=dist_admin)

    budget = h.budget_of(distributor)
    assert (budget.reserved, budget.consumed) == (Decimal("0.00"), Decimal("0.00"))
    assert not IssuanceRecipient.objects.filter(request=request, holds=True).exists()
    if how != "withdraw":
        # The same accounts can be selected again for the "Limited to 1" template.
        again = f.submitted(template, dist_admin, customers[:3])
        assert again.status == Status.PENDING
        assert h.budget_of(distributor).reserved == Decimal("150.00")


# ---------------------------------------------------------------------------------------
# Who may decide and act


def test_bd_of_another_partner_can_not_approve_or_reject_and_nothing_is_written(
    platform_template, dist_admin, customers, bd2,
):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    with f.nothing_written():
        with pytest.raises(PermissionDeniedError, match="Only the BD of Dist One"):
            services.approval_approve(request_id=request.pk, acting_user=bd2)
        with pytest.raises(PermissionDeniedError, match="Only the BD of Dist One"):
            services.approval_reject(request_id=request.pk, acting_user=bd2, reason="No.")


@pytest.mark.parametrize("role", ["admin", "operator", "viewer"])
def test_partner_users_can_not_approve_or_reject_even_their_own_request(
    role, distributor, platform_template, dist_admin, customers,
):
    user = f.make_member(distributor, role)
    request = f.submitted(platform_template, dist_admin, customers[:2])
    with f.nothing_written():
        for actor in (user, dist_admin):
            with pytest.raises(PermissionDeniedError):
                services.approval_approve(request_id=request.pk, acting_user=actor)
            with pytest.raises(PermissionDeniedError):
                services.approval_reject(request_id=request.pk, acting_user=actor, reason="No.")


def test_sub_account_user_can_not_approve(platform_template, dist_admin, customers):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    user = f.make_subaccount_user(customers[0])
    with f.nothing_written(), pytest.raises(PermissionDeniedError):
        services.approval_approve(request_id=request.pk, acting_user=user)


def test_superuser_can_approve_and_reject_any_partners_request(
    platform_template, dist_admin, customers, superuser,
):
    first = f.submitted(platform_template, dist_admin, customers[:2])
    second = f.submitted(platform_template, dist_admin, customers[2:4])
    first = f.approve(first, superuser)
    assert (first.status, first.decided_by) == (Status.ISSUED, superuser)
    second = f.reject(second, superuser, reason="Duplicate campaign.")
    assert (second.status, second.decided_by) == (Status.REJECTED, superuser)


def test_bd_can_not_decide_a_request_they_submitted(db):
    bd_member = f.make_bd("bd-and-member")
    partner = f.make_partner(name="Self Service", bd=bd_member, budget="1000.00")
    PartnerMembership.objects.create(user=bd_member, partner=partner,
                                     role=PartnerMembership.Role.ADMIN)
    template = f.make_template(partner, bd_member, cost_bearer="platform")
    request = f.submitted(template, bd_member, f.make_accounts(partner, 2))
    with f.nothing_written():
        with pytest.raises(PermissionDeniedError, match="You submitted this request"):
            services.approval_approve(request_id=request.pk, acting_user=bd_member)
        with pytest.raises(PermissionDeniedError, match="You submitted this request"):
            services.approval_reject(request_id=request.pk, acting_user=bd_member, reason="x")


def test_bd_who_is_no_longer_assigned_inactive_or_out_of_the_bd_group_can_not_approve(
    distributor, platform_template, dist_admin, customers, bd, superuser, bd_group,
):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    new_bd = f.make_bd("bd-new")
    partner_bd_assign(partner=distributor, acting_user=superuser, bd=new_bd)
    with f.nothing_written(), pytest.raises(PermissionDeniedError):
        services.approval_approve(request_id=request.pk, acting_user=bd)

    new_bd.groups.remove(bd_group)
    with f.nothing_written(), pytest.raises(PermissionDeniedError):
        services.approval_approve(request_id=request.pk, acting_user=new_bd)

    new_bd.groups.add(bd_group)
    new_bd.is_active = False
    new_bd.save(update_fields=["is_active"])
    with f.nothing_written(), pytest.raises(PermissionDeniedError):
        services.approval_approve(request_id=request.pk, acting_user=new_bd)


@pytest.mark.parametrize("action", ["cancel", "retry", "withdraw"])
def test_viewer_other_partner_and_bd_can_not_cancel_retry_or_withdraw(
    action, platform_template, dist_admin, dist_viewer, customers, bd, other_admin,
):
    status = Status.PENDING if action == "cancel" else Status.FAILED
    request = f.request_in(status, template=platform_template, partner_user=dist_admin, bd=bd,
                           accounts=customers[:2])
    fn = {"cancel": services.issuance_request_cancel, "retry": services.issuance_request_retry,
          "withdraw": services.issuance_request_withdraw}[action]
    with f.nothing_written():
        with pytest.raises(PermissionDeniedError, match="can view requests but not change"):
            fn(request_id=request.pk, acting_user=dist_viewer)
        with pytest.raises(PermissionDeniedError, match="do not act for this partner"):
            fn(request_id=request.pk, acting_user=other_admin)
        with pytest.raises(PermissionDeniedError, match="do not act for this partner"):
            fn(request_id=request.pk, acting_user=bd)


# ---------------------------------------------------------------------------------------
# Release


def test_release_makes_one_coupon_per_recipient_with_unique_codes_and_face_value_balance(
    partner_template, dist_admin, customers, bd,
):
    request = f.approve(f.submitted(partner_template, dist_admin, customers), bd)
    coupons = list(coupons_of(request).select_related("recipient"))
    assert len(coupons) == len(customers) == request.recipient_count
    assert sorted(c.sub_account_id for c in coupons) == sorted(a.pk for a in customers)
    assert {c.recipient.sub_account_id for c in coupons} == {a.pk for a in customers}
    codes = [c.code for c in coupons]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"CP[A-HJ-NP-Z2-9]{14}", code) for code in codes)
    for c in coupons:
        assert c.amount == c.balance == Decimal("50.00")
        assert c.voided_amount == Decimal("0.00")
        assert (c.kind, c.cost_bearer, c.currency) == ("cash", "partner", "USD")
        assert c.status == Coupon.Status.AVAILABLE
        assert c.uses_total is None and c.uses_left is None and c.discount_rate is None
        assert c.template_id == partner_template.pk and c.partner_id == request.partner_id
        assert c.released_at == request.issued_at
    template = CouponTemplate.objects.get(pk=partner_template.pk)
    assert template.released_count == 5
    assert template.released_amount == Decimal("250.00")


def test_release_of_a_discount_template_sets_amount_to_cap_times_uses_and_all_uses_left(
    distributor, dist_admin, customers, bd,
):
    template = f.make_template(distributor, dist_admin, kind="discount",
                               face_value=Decimal("20.00"), discount_rate=Decimal("15.00"),
                               discount_uses=3)
    request = f.submitted(template, dist_admin, customers[:2])
    assert request.total_amount == Decimal("120.00")
    request = f.approve(request, bd)
    for c in coupons_of(request):
        assert c.amount == c.balance == Decimal("60.00")
        assert (c.uses_total, c.uses_left) == (3, 3)
        assert c.discount_rate == Decimal("15.00")


def test_release_copies_the_threshold_minimum_and_the_chosen_products(
    distributor, dist_admin, customers, bd,
):
    products = [f.make_product("ecs"), f.make_product("cdn")]
    template = f.make_template(distributor, dist_admin, kind="threshold",
                               face_value=Decimal("20.00"), min_bill_amount=Decimal("200.00"),
                               all_products=False, products=products)
    request = f.approve(f.submitted(template, dist_admin, customers[:2]), bd)
    for c in coupons_of(request):
        assert c.min_bill_amount == Decimal("200.00")
        assert c.all_products is False
        assert c.product_codes == ["cdn", "ecs"]
        assert c.amount == c.balance == Decimal("20.00")


@pytest.mark.parametrize(("days", "last_day_offset"), [(1, 0), (30, 29), (1095, 1094)])
def test_relative_validity_counts_from_the_release_day_as_day_one(
    days, last_day_offset, distributor, dist_admin, customers, bd,
):
    template = f.make_template(distributor, dist_admin, validity_type="relative",
                               valid_days=days)
    request = f.submitted(template, dist_admin, customers[:2])
    request = f.approve(request, bd)
    today = timezone.localdate()
    for c in coupons_of(request):
        assert c.valid_from == today
        assert c.valid_until == today + timedelta(days=last_day_offset)


def test_fixed_validity_window_is_copied_to_every_coupon(distributor, dist_admin, customers, bd):
    window = f.fixed_window(days_from_today=-3, length=45)
    template = f.make_template(distributor, dist_admin, **window)
    request = f.approve(f.submitted(template, dist_admin, customers[:2]), bd)
    for c in coupons_of(request):
        assert (c.valid_from, c.valid_until) == (window["valid_from"], window["valid_until"])


def test_release_run_again_in_a_row_makes_no_second_set_of_coupons(
    partner_template, dist_admin, customers, bd,
):
    request = f.approve(f.submitted(partner_template, dist_admin, customers[:3]), bd)
    codes = set(coupons_of(request).values_list("code", flat=True))
    with f.nothing_written(), f.committed():
        assert release_request.apply(args=[request.pk]).get() == Status.ISSUED
        assert release.issuance_request_release(request_id=request.pk).status == Status.ISSUED
    assert set(coupons_of(request).values_list("code", flat=True)) == codes


def test_large_request_is_released_by_the_task_enqueued_on_commit(
    settings, partner_template, dist_admin, customers, bd,
):
    settings.RELEASE_INLINE_MAX = 2
    request = f.submitted(partner_template, dist_admin, customers[:3])
    with f.deferred() as queued:
        services.approval_approve(request_id=request.pk, acting_user=bd)
    # Nothing runs inside the transaction: the task is sent only after the commit.
    assert not coupons_of(request).exists()
    f.run_callbacks(list(queued))
    request.refresh_from_db()
    assert request.status == Status.ISSUED
    assert coupons_of(request).count() == 3


def test_release_sweep_releases_an_approved_request_whose_release_was_lost(
    partner_template, dist_admin, customers, bd,
):
    request = f.request_in(Status.APPROVED, template=partner_template, partner_user=dist_admin,
                           bd=bd, accounts=customers[:2])
    with f.committed():
        assert release.release_sweep(older_than_seconds=0) == [request.pk]
    request.refresh_from_db()
    assert request.status == Status.ISSUED
    assert coupons_of(request).count() == 2


# ---------------------------------------------------------------------------------------
# Rules checked again at release


def test_template_disabled_after_approval_fails_to_issue_with_the_reason_and_no_coupons(
    distributor, platform_template, dist_admin, customers, bd,
):
    request = f.submitted(platform_template, dist_admin, customers[:3])
    request = f.approve_and_fail(request, bd, dist_admin)
    assert request.status == Status.FAILED
    assert "template is disabled" in request.reason
    assert not coupons_of(request).exists()
    template = CouponTemplate.objects.get(pk=platform_template.pk)
    assert (template.released_count, template.released_amount) == (0, Decimal("0.00"))
    budget = h.budget_of(distributor)
    assert (budget.reserved, budget.consumed) == (Decimal("150.00"), Decimal("0.00"))

    # The cause persists: a retry fails again, with the reason, still without coupons.
    request = f.retry(request, dist_admin)
    assert request.status == Status.FAILED
    assert "template is disabled" in request.reason
    assert not coupons_of(request).exists()


def test_template_disabled_while_pending_fails_at_release(
    partner_template, dist_admin, customers, bd,
):
    request = f.submitted(partner_template, dist_admin, customers[:2])
    coupon_template_disable(template=partner_template, acting_user=dist_admin)
    request = f.approve(request, bd)
    assert request.status == Status.FAILED
    assert not coupons_of(request).exists()


def test_coupon_function_switched_off_before_release_fails_and_retry_after_switching_on_issues(
    distributor, partner_template, dist_admin, customers, bd,
):
    request = f.submitted(partner_template, dist_admin, customers[:2])
    with f.deferred() as release:
        services.approval_approve(request_id=request.pk, acting_user=bd)
    partner_coupon_settings_update(partner=distributor, acting_user=bd, coupon_enabled=False,
                                   requires_bd_approval=True)
    f.run_callbacks(list(release))
    request.refresh_from_db()
    assert request.status == Status.FAILED
    assert request.reason == "Contact your BD to enable the Coupon Function"
    assert not coupons_of(request).exists()

    partner_coupon_settings_update(partner=distributor, acting_user=bd, coupon_enabled=True,
                                   requires_bd_approval=True)
    request = f.retry(request, dist_admin)
    assert request.status == Status.ISSUED
    assert coupons_of(request).count() == 2


def test_release_cap_used_up_at_release_fails_to_issue_with_the_reason_and_no_coupons(
    distributor, dist_admin, customers, bd,
):
    template = f.make_template(distributor, dist_admin, release_cap_count=3)
    request = f.submitted(template, dist_admin, customers[:2])
    # The submit counts pending holds against the cap, so services alone can not exhaust
    # it before this release: move the counter as a release outside this request would.
    CouponTemplate.objects.filter(pk=template.pk).update(released_count=2)
    request = f.approve(request, bd)
    assert request.status == Status.FAILED
    assert request.reason == (
        "The template's release cap of 3 coupons is reached: 1 left, 2 needed."
    )
    assert not coupons_of(request).exists()
    assert CouponTemplate.objects.get(pk=template.pk).released_count == 2


def test_release_amount_cap_used_up_at_release_fails_to_issue(
    distributor, dist_admin, customers, bd,
):
    template = f.make_template(distributor, dist_admin, release_cap_amount=Decimal("200.00"))
    request = f.submitted(template, dist_admin, customers[:2])
    CouponTemplate.objects.filter(pk=template.pk).update(released_amount=Decimal("150.00"))
    request = f.approve(request, bd)
    assert request.status == Status.FAILED
    assert "release cap of 200.00 USD is reached: 50.00 USD left, 100.00 USD needed" in (
        request.reason
    )
    assert not coupons_of(request).exists()


def test_budget_lowered_by_the_bd_below_the_need_fails_to_issue_and_retry_after_raising_issues(
    distributor, platform_template, dist_admin, customers, bd,
):
    request = f.submitted(platform_template, dist_admin, customers[:3])
    platform_budget_set(partner=distributor, acting_user=bd, currency="USD",
                        amount=Decimal("100.00"))
    request = f.approve(request, bd)
    assert request.status == Status.FAILED
    assert request.reason == (
        "The platform-borne budget is used up: 100.00 USD left, 150.00 USD needed."
    )
    assert not coupons_of(request).exists()
    budget = h.budget_of(distributor)
    assert (budget.amount, budget.reserved, budget.consumed) == (
        Decimal("100.00"), Decimal("150.00"), Decimal("0.00"),
    )

    platform_budget_set(partner=distributor, acting_user=bd, currency="USD",
                        amount=Decimal("150.00"))
    request = f.retry(request, dist_admin)
    assert request.status == Status.ISSUED
    assert request.reason == ""
    assert coupons_of(request).count() == 3
    budget = h.budget_of(distributor)
    assert (budget.amount, budget.reserved, budget.consumed) == (
        Decimal("150.00"), Decimal("0.00"), Decimal("150.00"),
    )


# ---------------------------------------------------------------------------------------
# Budget


def test_budget_is_reserved_on_submit_and_consumed_on_release(
    distributor, platform_template, dist_admin, customers, bd,
):
    request = f.submitted(platform_template, dist_admin, customers[:4])
    budget = h.budget_of(distributor)
    assert (budget.reserved, budget.consumed) == (Decimal("200.00"), Decimal("0.00"))
    assert budget.remaining == Decimal("9800.00")
    f.approve(request, bd)
    budget = h.budget_of(distributor)
    assert (budget.reserved, budget.consumed) == (Decimal("0.00"), Decimal("200.00"))
    assert budget.remaining == Decimal("9800.00")


def test_partner_borne_requests_never_touch_the_platform_budget(
    distributor, partner_template, dist_admin, customers, bd,
):
    before = h.budget_of(distributor)
    f.approve(f.submitted(partner_template, dist_admin, customers[:2]), bd)
    f.cancel(f.submitted(partner_template, dist_admin, customers[2:4]), dist_admin)
    after = h.budget_of(distributor)
    assert (after.amount, after.reserved, after.consumed) == (
        before.amount, before.reserved, before.consumed,
    )


# ---------------------------------------------------------------------------------------
# Audit


def _trail(request):
    return [(r.action, r.actor_id, r.before, r.after, r.reason) for r in h.audit_rows(request)]


def test_every_transition_of_a_request_writes_an_audit_row_with_who_before_after_and_why(
    distributor, platform_template, dist_admin, customers, bd,
):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    platform_budget_set(partner=distributor, acting_user=bd, currency="USD",
                        amount=Decimal("60.00"))
    f.approve(request, bd)
    platform_budget_set(partner=distributor, acting_user=bd, currency="USD",
                        amount=Decimal("100.00"))
    f.retry(request, dist_admin)
    trail = _trail(request)
    assert trail[0][:3] == ("request.submit", dist_admin.pk, None)
    assert trail[0][3]["status"] == "pending"
    failure = "The platform-borne budget is used up: 60.00 USD left, 100.00 USD needed."
    assert trail[1:] == [
        ("request.approved", bd.pk, {"status": "pending"}, {"status": "approved"}, ""),
        ("request.failed", None, {"status": "approved"}, {"status": "failed"}, failure),
        ("request.approved", dist_admin.pk, {"status": "failed"}, {"status": "approved"},
         "Retried by the partner."),
        ("request.issued", None, {"status": "approved"}, {"status": "issued"}, ""),
    ]
    assert all(r.partner_id == distributor.pk for r in h.audit_rows(request))


def test_reject_cancel_withdraw_and_auto_approval_write_their_audit_rows(
    distributor, partner_template, dist_admin, dist_operator, customers, bd,
):
    rejected = f.reject(f.submitted(partner_template, dist_admin, customers[:1]), bd,
                        reason="Wrong accounts.")
    cancelled = f.cancel(f.submitted(partner_template, dist_admin, customers[1:2]), dist_operator)
    failed = f.approve_and_fail(f.submitted(partner_template, dist_admin, customers[2:3]), bd,
                                dist_admin)
    f.withdraw(failed, dist_operator)
    assert _trail(rejected)[-1] == ("request.rejected", bd.pk, {"status": "pending"},
                                    {"status": "rejected"}, "Wrong accounts.")
    assert _trail(cancelled)[-1] == ("request.cancelled", dist_operator.pk,
                                     {"status": "pending"}, {"status": "cancelled"}, "")
    assert _trail(failed)[-1] == ("request.withdrawn", dist_operator.pk,
                                  {"status": "failed"}, {"status": "withdrawn"}, "")

    other = f.make_template(distributor, dist_admin)
    partner_coupon_settings_update(partner=distributor, acting_user=bd, coupon_enabled=True,
                                   requires_bd_approval=False)
    auto = f.submitted(other, dist_admin, customers[3:4])
    assert [row[0] for row in _trail(auto)] == [
        "request.submit", "request.approved", "request.issued",
    ]
    assert _trail(auto)[1][1] is None  # the system, not a person


def test_a_refused_transition_writes_no_audit_row(platform_template, dist_admin, customers, bd):
    request = f.reject(f.submitted(platform_template, dist_admin, customers[:1]), bd)
    rows = len(h.audit_rows(request))
    with pytest.raises(InvalidTransitionError):
        services.approval_approve(request_id=request.pk, acting_user=bd)
    assert len(h.audit_rows(request)) == rows


# ---------------------------------------------------------------------------------------
# Notifications


def test_bd_is_emailed_when_a_request_waits_for_them(
    platform_template, dist_admin, customers, bd_mail, partner_mail,
):
    mail.outbox.clear()
    request = f.submitted(platform_template, dist_admin, customers[:2])
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["bd@example.com"]
    assert f"asks for approval of request {request.number} (#{request.pk})" in message.subject
    assert "Dist One" in message.subject
    assert "50.00 × 2 = 100.00 USD" in message.body


def test_partner_users_are_emailed_when_approved_and_when_issued(
    platform_template, dist_admin, customers, bd_mail, partner_mail,
):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    mail.outbox.clear()
    f.approve(request, bd_mail)
    subjects = [m.subject for m in mail.outbox]
    assert subjects == [f"[Coupons] Request {request.number} is approved",
                        f"[Coupons] Request {request.number} is issued"]
    for message in mail.outbox:
        assert sorted(message.to) == sorted(partner_mail)


def test_partner_users_are_emailed_the_reason_when_rejected(
    platform_template, dist_admin, customers, bd_mail, partner_mail,
):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    mail.outbox.clear()
    f.reject(request, bd_mail, reason="Budget is for Q3.")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == f"[Coupons] Request {request.number} is rejected"
    assert "Reason: Budget is for Q3." in mail.outbox[0].body
    assert sorted(mail.outbox[0].to) == sorted(partner_mail)


def test_partner_users_are_emailed_the_reason_when_a_release_fails(
    platform_template, dist_admin, customers, bd_mail, partner_mail,
):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    mail.outbox.clear()
    request = f.approve_and_fail(request, bd_mail, dist_admin)
    assert [m.subject for m in mail.outbox] == [
        f"[Coupons] Request {request.number} is approved",
        f"[Coupons] Request {request.number} is approved but failed to issue",
    ]
    assert f"Reason: {request.reason}" in mail.outbox[1].body


def test_auto_approved_request_sends_no_bd_email_and_tells_the_partner_it_is_issued(
    distributor, partner_template, dist_admin, customers, bd_mail, partner_mail,
):
    partner_coupon_settings_update(partner=distributor, acting_user=bd_mail,
                                   coupon_enabled=True, requires_bd_approval=False)
    mail.outbox.clear()
    request = f.submitted(partner_template, dist_admin, customers[:2])
    assert [(m.subject, sorted(m.to)) for m in mail.outbox] == [
        (f"[Coupons] Request {request.number} is issued", sorted(partner_mail)),
    ]


def test_other_partners_users_get_no_email_about_a_request(
    platform_template, dist_admin, customers, bd_mail, partner_mail, other_admin,
):
    other_admin.email = "other@other.example"
    other_admin.save(update_fields=["email"])
    f.approve(f.submitted(platform_template, dist_admin, customers[:2]), bd_mail)
    assert all("other@other.example" not in m.to for m in mail.outbox)


def test_coupon_codes_draw_every_character_of_the_alphabet_evenly():
    """One random byte per character, mapped onto the 32 characters: 256 values divide
    evenly, so each character is equally likely (a skewed table fails the spread check)."""
    from collections import Counter

    from approvals.release import _CODE_TABLE, CODE_ALPHABET, new_coupon_code

    assert len(CODE_ALPHABET) == 32 and 256 % len(CODE_ALPHABET) == 0
    assert Counter(_CODE_TABLE) == {ord(ch): 256 // 32 for ch in CODE_ALPHABET}
    codes = [new_coupon_code() for _ in range(4000)]
    assert all(len(c) == 16 and c.startswith("CP") and set(c[2:]) <= set(CODE_ALPHABET)
               for c in codes)
    assert len(set(codes)) == len(codes)
    seen = Counter(ch for c in codes for ch in c[2:])
    expected = 4000 * 14 / 32  # 1,750 each; 6 standard deviations is about ±245
    assert all(abs(seen[ch] - expected) < 250 for ch in CODE_ALPHABET), seen
