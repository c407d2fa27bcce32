"""Helpers of the coupons tests: proving nothing was written, and form data for the pages."""
from contextlib import contextmanager

from accounts.models import PlatformBudget
from approvals.models import Approval
from audit.models import AuditLog
from coupons.models import Coupon, CouponTemplate, IssuanceRecipient, IssuanceRequest


def db_state() -> dict:
    """Every row a template or issuing action could write or change, in comparable form."""
    return {
        "templates": list(
            CouponTemplate.objects.order_by("pk").values_list(
                "pk", "name", "status", "face_value", "cost_bearer", "valid_days",
            )
        ),
        "template_products": list(
            CouponTemplate.products.through.objects.order_by("pk").values_list("pk", flat=True)
        ),
        "requests": IssuanceRequest.objects.count(),
        "recipients": IssuanceRecipient.objects.count(),
        "coupons": Coupon.objects.count(),
        "approvals": Approval.objects.count(),
        "audit": AuditLog.objects.count(),
        "budgets": list(
            PlatformBudget.objects.order_by("pk").values_list("pk", "amount", "reserved",
                                                               "consumed")
        ),
    }


@contextmanager
def nothing_written():
    """Asserts the block leaves every coupon, request, budget and audit row as it was."""
    before = db_state()
    yield
    after = db_state()
    assert after == before, "the refused action wrote to the database"


def template_form_data(**overrides) -> dict:
    """A valid POST of the create form (a relative 30-day cash template); None drops a key."""
    data = {
        "name": "Spring cash",
        "description": "",
        "kind": "cash",
        "currency": "USD",
        "face_value": "50.00",
        "validity_type": "relative",
        "valid_days": "30",
        "all_products": "on",
        "cost_bearer": "partner",
        "issue_limit": "one",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


