"""Crash points of the release (QUALITY "crash points", as tests/billing/test_crash_points.py
does for the posting): a failure injected after the locks, after the coupon COPY, after the
counters and budget, or just before the commit leaves nothing half-issued, queues no
follow-up work, and the re-run (the redelivered task) issues exactly once."""
from decimal import Decimal

import pytest
from django.test import TestCase

from accounts.models import PlatformBudget
from approvals import release as services
from audit.models import AuditLog
from coupons.models import Coupon, CouponTemplate, IssuanceRecipient, IssuanceRequest
from tests import factories as f

POINTS = ["locked", "coupons_copied", "counters_updated", "before_commit"]
Status = IssuanceRequest.Status


class Crash(Exception):
    """The injected fault: stands for a worker dying or the database going away."""


def crash_at(monkeypatch, point: str | None) -> list[str]:
    """Replace the release's crash-point hook: record each point reached, fail at `point`."""
    reached = []

    def fault(name: str) -> None:
        reached.append(name)
        if name == point:
            raise Crash(name)

    monkeypatch.setattr(services, "_fault", fault)
    return reached


@pytest.fixture
def approved(postgres_only, platform_template, dist_admin, bd, customers):
    """Platform-borne, approved, its release not yet run: 5 × 50.00 reserved."""
    return f.request_in(Status.APPROVED, template=platform_template, partner_user=dist_admin,
                        bd=bd, accounts=customers)


def release_state(request: IssuanceRequest) -> dict:
    """Everything a release writes, for this request, its template and its budget."""
    request = IssuanceRequest.objects.get(pk=request.pk)
    template = CouponTemplate.objects.get(pk=request.template_id)
    budget = PlatformBudget.objects.get(partner_id=request.partner_id, currency="USD")
    return {
        "request": (request.status, request.issued_at is not None, request.released_so_far,
                    request.reason, request.postings_pending),
        "coupons": sorted(Coupon.objects.filter(request=request).values_list(
            "recipient_id", "sub_account_id", "amount", "balance", "status")),
        "template": (template.released_count, template.released_amount),
        "budget": (budget.amount, budget.reserved, budget.consumed),
        "audit": list(AuditLog.objects.filter(
            object_type="coupons.IssuanceRequest", object_id=str(request.pk),
        ).order_by("pk").values_list("action", flat=True)),
    }


def release(request: IssuanceRequest) -> None:
    """The release task's one service call, its on-commit work run as after a commit."""
    with f.committed():
        services.issuance_request_release(request_id=request.pk)


def test_a_clean_release_passes_every_crash_point_in_order(approved, monkeypatch):
    reached = crash_at(monkeypatch, None)
    release(approved)
    assert reached == POINTS


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_in_the_release_leaves_nothing_half_issued_and_the_rerun_issues_once(
    approved, monkeypatch, point,
):
    before = release_state(approved)
    reached = crash_at(monkeypatch, point)
    with TestCase.captureOnCommitCallbacks() as queued, pytest.raises(Crash):
        services.issuance_request_release(request_id=approved.pk)
    assert reached[-1] == point
    assert release_state(approved) == before, f"half-issued after a crash at {point}"
    assert queued == [], "a crashed release queued follow-up work (emails, postings)"

    monkeypatch.undo()
    release(approved)  # the redelivered task
    issued = release_state(approved)
    recipients = sorted(IssuanceRecipient.objects.filter(request=approved)
                        .values_list("pk", "sub_account_id"))
    assert issued["request"] == (Status.ISSUED, True, 5, "", True)
    assert issued["coupons"] == [
        (recipient, account, Decimal("50.00"), Decimal("50.00"), Coupon.Status.AVAILABLE)
        for recipient, account in recipients
    ]
    assert issued["template"] == (5, Decimal("250.00"))
    assert issued["budget"] == (before["budget"][0], before["budget"][1] - Decimal("250.00"),
                                before["budget"][2] + Decimal("250.00"))
    assert issued["audit"] == [*before["audit"], "request.issued"]

    release(approved)  # and a redelivery on top changes nothing
    assert release_state(approved) == issued
