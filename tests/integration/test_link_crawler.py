"""Our own links never lead to an error: signed in as each demo role of PRODUCT §11, a
crawler follows every link and every GET form the role's pages render, from its home page
(and the admin's index for staff), and no answer is a 4xx or 5xx.

The world is the security tests' (tests/security/world.py: the demo with its requests in
every state, coupons, deductions, daily bills of open and closed months, a second tenant),
with a voided coupon added. One exception is the product's own: a partner whose coupon
function is off gets 403 with "Contact your BD to enable the Coupon Function" on every
coupon URL (PRODUCT §2), its home page included.
"""
import pytest
from django.db import transaction
from django.test import Client

from accounts.permissions import COUPON_FUNCTION_OFF
from billing.coupon_status import coupon_void
from coupons.models import Coupon
from tests import factories as f
from tests.integration.crawl import Crawl
from tests.security.world import DEMO_ROLES, build_world

pytestmark = pytest.mark.django_db  # the package's world is built outside each test's

LIMIT = 400  # requests per role


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            with f.fast_passwords():
                built = build_world()
                distributor = built.users["distributor"]
                coupon = (Coupon.objects.filter(partner=distributor.partner_membership.partner,
                                                status=Coupon.Status.AVAILABLE)
                          .order_by("pk").first())
                with f.committed():
                    coupon_void(coupon=coupon, acting_user=distributor,
                                reason="Crawler's voided coupon")
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield built
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


def function_off(visit) -> bool:
    return visit.status == 403 and COUPON_FUNCTION_OFF in visit.body


@pytest.mark.parametrize("role", DEMO_ROLES)
def test_every_link_and_get_form_of_the_roles_pages_answers_without_error(world, role):
    user = world.users[role]
    client = Client(raise_request_exception=False)
    client.force_login(user)
    starts = ["/"] + (["/admin/"] if user.is_staff else [])
    crawl = Crawl(client, limit=LIMIT).run(*starts)
    allowed = function_off if role == "nocoupons" else (lambda visit: False)
    assert crawl.failures(allowed) == [], role
    pages = {v.link.url for v in crawl.visits if v.status == 200}
    # The walk reached the role's pages, not just its home.
    assert len(pages) >= MIN_PAGES[role], (role, len(pages), sorted(pages))
    print(f"{role}: {len(crawl.visits)} requests, {len(pages)} pages, "
          f"{crawl.capped} links past the bound")


MIN_PAGES = {"distributor": 30, "operator": 25, "viewer": 20, "reseller": 15, "tier2": 15,
             "nocoupons": 0, "customer": 12, "bd": 30, "bd2": 20, "root": 60}
