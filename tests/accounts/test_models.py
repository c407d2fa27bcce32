"""What the database itself refuses on a platform budget: released coupons never exceed it
(`budget_consumed_within_amount`, CHECK amount >= consumed), whatever a service forgets."""
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from accounts import services as accounts
from accounts.models import PlatformBudget
from audit.models import AuditLog
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def released(distributor, dist_admin, bd, customers):
    """The distributor's 10,000.00 USD budget with 100.00 of it released (two 50.00
    platform-borne coupons) and nothing reserved."""
    template = f.make_template(distributor, dist_admin, cost_bearer="platform")
    f.issue(template, dist_admin, bd, customers[:2])
    budget = PlatformBudget.objects.get(partner=distributor, currency="USD")
    assert (budget.amount, budget.reserved, budget.consumed) == (
        Decimal("10000.00"), Decimal("0.00"), Decimal("100.00"))
    return budget


def refused(budget: PlatformBudget, **update) -> None:
    with pytest.raises(IntegrityError, match="budget_consumed_within_amount"), \
            transaction.atomic():
        PlatformBudget.objects.filter(pk=budget.pk).update(**update)


def test_consuming_past_the_amount_is_refused_by_the_database(released):
    refused(released, consumed=F("amount") + Decimal("0.01"))
    # Up to the amount, exactly, is allowed.
    PlatformBudget.objects.filter(pk=released.pk).update(consumed=F("amount"))


def test_lowering_the_amount_below_what_was_released_is_refused_by_the_database(released):
    refused(released, amount=Decimal("99.99"))
    PlatformBudget.objects.filter(pk=released.pk).update(amount=Decimal("100.00"))


def test_reservations_may_exceed_the_amount(released):
    """The rule is about released coupons only: a BD may lower a budget below what pending
    requests reserved, and their release then fails to issue instead of overspending."""
    PlatformBudget.objects.filter(pk=released.pk).update(
        amount=Decimal("100.00"), reserved=Decimal("5000.00"))


def test_the_budget_service_without_its_own_check_is_stopped_by_the_database(
    released, distributor, bd, monkeypatch,
):
    """The BD lowers the budget below what was released: the service refuses it with a
    message; were that check ever lost, the database still refuses it and nothing moves."""
    with pytest.raises(accounts.ApplicationError, match="already released"):
        accounts.platform_budget_set(partner=distributor, acting_user=bd, currency="USD",
                                     amount=Decimal("99.99"))

    monkeypatch.setattr(accounts, "platform_budget_amount_problem", lambda *a, **k: None)
    audit = AuditLog.objects.count()
    with pytest.raises(IntegrityError, match="budget_consumed_within_amount"), \
            transaction.atomic():
        accounts.platform_budget_set(partner=distributor, acting_user=bd, currency="USD",
                                     amount=Decimal("99.99"))
    released.refresh_from_db()
    assert (released.amount, released.consumed) == (Decimal("10000.00"), Decimal("100.00"))
    assert AuditLog.objects.count() == audit
