"""Adding a partner in the admin goes through partner_create: one partner, its audit row, and
the budget of the same form through platform_budget_set."""
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Partner, PlatformBudget
from accounts.services import partner_create
from audit.models import AuditLog
from couponplatform.exceptions import ApplicationError, PermissionDeniedError
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db):
    return f.make_user("root-admin", is_staff=True, is_superuser=True)


def test_a_platform_operator_adds_a_partner_with_its_budget_and_audit_rows(client, root, bd):
    client.force_login(root)
    response = client.post(reverse("admin:accounts_partner_add"), {
        "name": "  Harbor Cloud  ", "kind": "distributor", "tier": "1", "parent": "",
        "bd": str(bd.pk), "coupon_enabled": "on", "requires_bd_approval": "on",
        "budgets-TOTAL_FORMS": "1", "budgets-INITIAL_FORMS": "0",
        "budgets-MIN_NUM_FORMS": "0", "budgets-MAX_NUM_FORMS": "1000",
        "budgets-0-currency": "USD", "budgets-0-amount": "500.00",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    partner = Partner.objects.get(name="Harbor Cloud")
    assert (partner.bd, partner.coupon_enabled, partner.requires_bd_approval) == (bd, True, True)
    created = AuditLog.objects.get(action="partner.create")
    assert (created.actor, created.partner, created.object_id) == (root, partner, str(partner.pk))
    assert created.after == {"name": "Harbor Cloud", "kind": "distributor", "tier": 1,
                             "bd": bd.pk, "coupon_enabled": True, "requires_bd_approval": True}
    assert PlatformBudget.objects.get(partner=partner).amount == Decimal("500.00")
    assert AuditLog.objects.filter(action="partner.platform_budget", partner=partner).count() == 1


def test_partner_create_is_for_platform_operators_and_checks_what_it_is_given(bd):
    with pytest.raises(PermissionDeniedError, match="platform operator"):
        partner_create(acting_user=bd, name="X", kind="distributor")
    root = f.make_user("root2", is_staff=True, is_superuser=True)
    not_a_bd = f.make_user("plain")
    with pytest.raises(ApplicationError, match="Enter a name"):
        partner_create(acting_user=root, name="  ", kind="distributor")
    with pytest.raises(ApplicationError, match="is not a BD"):
        partner_create(acting_user=root, name="X", kind="distributor", bd=not_a_bd)
    assert not Partner.objects.filter(name="X").exists()
    assert not AuditLog.objects.filter(action="partner.create").exists()


def test_the_bds_partner_page_shows_the_budgets_figures_as_amounts_with_their_currency(
        client, bd, distributor):
    budget = PlatformBudget.objects.get(partner=distributor)
    PlatformBudget.objects.filter(pk=budget.pk).update(reserved=Decimal("1234.5"),
                                                       consumed=Decimal("250"))
    client.force_login(bd)
    html = client.get(reverse("admin:accounts_partner_change", args=[distributor.pk])).content
    html = html.decode()
    for figure in ("1,234.50 USD", "250.00 USD", "8,515.50 USD"):  # reserved, consumed, left
        assert f'<span class="amount">{figure}</span>' in html, figure
    assert "1234.50<" not in html and ">250.00<" not in html
