"""Fixtures of the approvals tests: a partner with its BD, users who read mail, templates."""
import pytest
from django.contrib.auth import get_user_model

from approvals.permissions import ensure_bd_group
from tests import factories as f


@pytest.fixture
def bd_group(db):
    return ensure_bd_group()


@pytest.fixture
def bd_mail(bd):
    """The distributor's BD, with an address to receive the "waits for you" email."""
    get_user_model().objects.filter(pk=bd.pk).update(email="bd@example.com")
    bd.refresh_from_db()
    return bd


@pytest.fixture
def partner_mail(dist_admin, dist_operator):
    """The distributor's admin and operator, with addresses for the decision emails."""
    User = get_user_model()
    User.objects.filter(pk=dist_admin.pk).update(email="admin@dist.example")
    User.objects.filter(pk=dist_operator.pk).update(email="operator@dist.example")
    return ["admin@dist.example", "operator@dist.example"]


@pytest.fixture
def bd2(db):
    """A BD with a partner of their own, and none of the distributor's."""
    user = f.make_bd("bd2-fixture")
    f.make_partner(name="Bd2 Partner", bd=user, budget="1000.00")
    return user


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(
        username="root-fixture", password="pw", email="root@example.com",
    )


@pytest.fixture
def platform_template(distributor, dist_admin):
    """Platform-borne, "Limited to 1", 50.00 USD cash, valid 30 days from release."""
    return f.make_template(distributor, dist_admin, cost_bearer="platform", name="Platform cash")


@pytest.fixture
def partner_template(distributor, dist_admin):
    """Partner-borne, "Limited to 1", 50.00 USD cash, valid 30 days from release."""
    return f.make_template(distributor, dist_admin, cost_bearer="partner", name="Partner cash")
