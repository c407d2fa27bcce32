"""Races of the approval workflow on PostgreSQL: threads on their own connections, released
together by a barrier (QUALITY "approve vs cancel", PRODUCT §5)."""
import logging
from decimal import Decimal

import pytest

from accounts.services import platform_budget_set
from approvals import release, services
from approvals.models import Approval
from approvals.tasks import release_request
from audit.models import AuditLog
from couponplatform.exceptions import InvalidTransitionError
from coupons.models import Coupon, CouponTemplate, IssuanceRequest
from tests import factories as f
from tests.approvals import helpers as h

Status = IssuanceRequest.Status
pytestmark = [pytest.mark.race, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def no_errors_logged(caplog):
    """A release runs in a robust on-commit callback, which logs an error instead of raising
    it: any error logged by any thread fails the test (an IntegrityError from a CHECK, a
    deadlock...)."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def coupons_of(request_id):
    return Coupon.objects.filter(request_id=request_id)


def issued_audit_rows(request_id):
    return AuditLog.objects.filter(object_type="coupons.IssuanceRequest",
                                   object_id=str(request_id), action="request.issued").count()


def test_approve_and_cancel_at_once_50_times_exactly_one_wins_and_coupons_exist_iff_approved(
    postgres_only, no_errors_logged, distributor, dist_admin, customers, bd_mail,
):
    template = f.make_template(distributor, dist_admin, cost_bearer="platform",
                               issue_limit="unlimited")
    accounts = customers[:2]
    wins = {"approve": 0, "cancel": 0}
    for _ in range(50):
        request = f.submit(template, dist_admin, accounts)
        approved, cancelled = h.at_once(
            lambda r=request: services.approval_approve(request_id=r.pk, acting_user=bd_mail),
            lambda r=request: services.issuance_request_cancel(request_id=r.pk,
                                                               acting_user=dist_admin),
        )
        outcomes = (approved, cancelled)
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(losers) == 1, f"request #{request.pk}: {outcomes!r}"
        assert type(losers[0]) is InvalidTransitionError, repr(losers[0])
        request.refresh_from_db()
        coupons = coupons_of(request.pk).count()
        if isinstance(approved, IssuanceRequest):
            wins["approve"] += 1
            assert request.status == Status.ISSUED
            assert coupons == 2
            assert "it can not be cancelled" in losers[0].message
        else:
            wins["cancel"] += 1
            assert request.status == Status.CANCELLED
            assert coupons == 0
            assert "it can not be approved" in losers[0].message
            assert not request.recipients.filter(holds=True).exists()
        assert not Approval.objects.filter(request=request, status=Approval.Status.OPEN).exists()
    assert sum(wins.values()) == 50
    budget = h.budget_of(distributor)
    assert budget.reserved == Decimal("0.00")
    assert budget.consumed == Decimal("100.00") * wins["approve"]
    print(f"approve vs cancel, 50 rounds: {wins}")


def test_two_approvals_of_the_same_request_at_once_release_it_once(
    postgres_only, no_errors_logged, distributor, dist_admin, customers, bd_mail, superuser,
):
    template = f.make_template(distributor, dist_admin, cost_bearer="platform",
                               issue_limit="unlimited")
    for _ in range(10):
        request = f.submit(template, dist_admin, customers)
        outcomes = h.at_once(
            lambda r=request: services.approval_approve(request_id=r.pk, acting_user=superuser),
            lambda r=request: services.approval_approve(request_id=r.pk, acting_user=bd_mail),
        )
        winners = [o for o in outcomes if isinstance(o, IssuanceRequest)]
        losers = [o for o in outcomes if not isinstance(o, IssuanceRequest)]
        assert len(winners) == 1 and len(losers) == 1, outcomes
        assert type(losers[0]) is InvalidTransitionError, repr(losers[0])
        request.refresh_from_db()
        assert request.status == Status.ISSUED
        assert request.decided_by_id == winners[0].decided_by_id
        assert coupons_of(request.pk).count() == request.recipient_count == 5
        assert issued_audit_rows(request.pk) == 1
    template.refresh_from_db()
    assert template.released_count == 50
    assert h.budget_of(distributor).consumed == Decimal("2500.00")


def _two_requests_over_the_budget_together(round_no):
    """Two pending platform-borne requests of 600.00 each under a 10,000.00 budget, which the
    BD then lowers to 1,000.00: each fits alone, not both."""
    bd = f.make_bd()
    partner = f.make_partner(name=f"Race {round_no}", bd=bd, budget="10000.00")
    admin = f.make_member(partner, "admin")
    accounts = f.make_accounts(partner, 40)
    requests = []
    for chunk in (accounts[:20], accounts[20:]):
        # A template each, so only the budget row (not a template row) orders the releases.
        template = f.make_template(partner, admin, cost_bearer="platform",
                                   face_value=Decimal("30.00"))
        requests.append(f.submit(template, admin, chunk))
    assert [r.total_amount for r in requests] == [Decimal("600.00")] * 2
    assert h.budget_of(partner).reserved == Decimal("1200.00")
    platform_budget_set(partner=partner, acting_user=bd, currency="USD",
                        amount=Decimal("1000.00"))
    return partner, bd, requests


def _assert_one_issued_one_failed_on_the_budget(partner, requests):
    done = list(IssuanceRequest.objects.filter(pk__in=[r.pk for r in requests]))
    assert sorted(r.status for r in done) == [Status.FAILED, Status.ISSUED]
    failed = next(r for r in done if r.status == Status.FAILED)
    issued = next(r for r in done if r.status == Status.ISSUED)
    assert failed.reason == (
        "The platform-borne budget is used up: 400.00 USD left, 600.00 USD needed."
    )
    assert coupons_of(failed.pk).count() == 0
    assert coupons_of(issued.pk).count() == 20
    budget = h.budget_of(partner)
    assert budget.consumed == Decimal("600.00") <= budget.amount == Decimal("1000.00")
    assert budget.reserved == Decimal("600.00")  # the failed one keeps its reservation


def test_two_requests_that_fit_the_budget_alone_but_not_together_approved_at_once_one_issues(
    postgres_only, no_errors_logged, db,
):
    for round_no in range(5):
        partner, bd, (first, second) = _two_requests_over_the_budget_together(round_no)
        outcomes = h.at_once(
            lambda r=first, u=bd: services.approval_approve(request_id=r.pk, acting_user=u),
            lambda r=second, u=bd: services.approval_approve(request_id=r.pk, acting_user=u),
        )
        assert all(isinstance(o, IssuanceRequest) for o in outcomes), outcomes
        _assert_one_issued_one_failed_on_the_budget(partner, [first, second])


def test_two_approved_requests_over_the_budget_together_released_at_once_one_issues(
    postgres_only, no_errors_logged, monkeypatch, db,
):
    # The releases themselves start together here, which makes the budget window widest.
    for round_no in range(5):
        partner, bd, (first, second) = _two_requests_over_the_budget_together(round_no)
        with monkeypatch.context() as m:
            m.setattr(services, "release_schedule", lambda *, request: None)
            for request in (first, second):
                services.approval_approve(request_id=request.pk, acting_user=bd)
        outcomes = h.at_once(
            lambda r=first: release.issuance_request_release(request_id=r.pk).status,
            lambda r=second: release.issuance_request_release(request_id=r.pk).status,
        )
        assert sorted(outcomes) == [Status.FAILED, Status.ISSUED], outcomes
        _assert_one_issued_one_failed_on_the_budget(partner, [first, second])


def deliver(request_id):
    """One delivery of the release task, run as a worker would; its error is raised."""
    result = release_request.apply(args=[request_id])
    if result.failed():
        raise result.result
    return result.result


def _approved_with_its_release_lost(monkeypatch, template, user, accounts, bd):
    request = f.submit(template, user, accounts)
    with monkeypatch.context() as m:
        m.setattr(services, "release_schedule", lambda *, request: None)
        services.approval_approve(request_id=request.pk, acting_user=bd)
    request.refresh_from_db()
    assert request.status == Status.APPROVED
    return request


def test_release_task_delivered_twice_in_a_row_and_twice_at_once_makes_one_set_of_coupons(
    postgres_only, no_errors_logged, monkeypatch, distributor, dist_admin, customers, bd_mail,
):
    bd = bd_mail
    template = f.make_template(distributor, dist_admin, cost_bearer="platform",
                               issue_limit="unlimited")

    in_a_row = _approved_with_its_release_lost(monkeypatch, template, dist_admin, customers, bd)
    assert deliver(in_a_row.pk) == Status.ISSUED
    codes = set(coupons_of(in_a_row.pk).values_list("code", flat=True))
    assert deliver(in_a_row.pk) == Status.ISSUED
    assert release_request(in_a_row.pk) == Status.ISSUED
    assert set(coupons_of(in_a_row.pk).values_list("code", flat=True)) == codes
    assert len(codes) == 5

    at_once = _approved_with_its_release_lost(monkeypatch, template, dist_admin, customers, bd)
    outcomes = h.at_once(
        lambda: deliver(at_once.pk),
        lambda: deliver(at_once.pk),
        lambda: release.issuance_request_release(request_id=at_once.pk).status,
    )
    assert outcomes == [Status.ISSUED] * 3, outcomes
    assert coupons_of(at_once.pk).count() == 5
    assert issued_audit_rows(at_once.pk) == 1

    template.refresh_from_db()
    assert template.released_count == 10
    budget = h.budget_of(distributor)
    assert (budget.reserved, budget.consumed) == (Decimal("0.00"), Decimal("500.00"))
    assert CouponTemplate.objects.get(pk=template.pk).released_amount == Decimal("500.00")
