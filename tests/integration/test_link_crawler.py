"""Our own links never lead to an error: signed in as each demo role of PRODUCT §11, a
crawler follows every link and every GET form the role's pages render, from its home page
(and the admin's index for staff), and no answer is a 4xx or 5xx.

The world is the security tests' (tests/security/world.py: the demo with its requests in
every state, coupons, deductions, daily bills of open and closed months, a second tenant),
with a voided coupon added. One exception is the product's own: a partner whose coupon
function is off gets 403 with "Contact your BD to enable the Coupon Function" on every
coupon URL (PRODUCT §2), its home page included.

The same walk in Chinese (QUALITY "Languages", pages in Chinese): every page each role
reaches with `zh-hans` shows none of the catalogs' English phrases (the world's own names,
codes and reasons aside), and has the language switch in its header.
"""
import pytest
from django.db import transaction
from django.test import Client

from accounts.permissions import COUPON_FUNCTION_OFF
from billing.coupon_status import coupon_void
from coupons.models import Coupon
from tests import factories as f
from tests.i18n.catalogs import EnglishCheck, english_phrases
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


def world_data() -> set[str]:
    """What the world's rows say in English of their own: names, codes, descriptions,
    reasons. Data, not the product's words: a page in Chinese still shows them."""
    from django.contrib.auth.models import Permission

    from accounts.models import Partner, Product, SubAccount, User
    from api.models import ApiKey, WebhookEndpoint
    from audit.models import AuditLog
    from coupons.models import CouponTemplate, IssuanceRequest

    values = set()
    for model, fields in ((Partner, ["name"]), (SubAccount, ["name", "account_id"]),
                          (Product, ["name", "code"]), (CouponTemplate, ["name", "description"]),
                          (IssuanceRequest, ["reason"]), (Coupon, ["void_reason", "code"]),
                          (User, ["username", "first_name", "last_name"]), (ApiKey, ["name"]),
                          (WebhookEndpoint, ["url", "description"])):
        for row in model.objects.values_list(*fields):
            values.update(str(v) for v in row if v)
    # Django's permission rows, named in English when their models were migrated.
    values.update(Permission.objects.values_list("name", flat=True))
    # The audit log's codes: its actions ("coupon.used_up") and the field names and status
    # codes of its before/after snapshots ("voided_amount", "used_up"), shown as recorded.
    for action, before, after in AuditLog.objects.values_list("action", "before", "after"):
        values.add(action)
        values.update(code for code in _codes(before) | _codes(after) if "_" in code)
    return values


def _codes(snapshot) -> set[str]:
    """A snapshot's keys and text values, at every depth."""
    if isinstance(snapshot, dict):
        return set(map(str, snapshot)).union(*map(_codes, snapshot.values()))
    if isinstance(snapshot, list):
        return set().union(*map(_codes, snapshot))
    return {snapshot} if isinstance(snapshot, str) else set()


LIMIT_CHINESE = 200  # requests per role: every kind of page, fewer repeats of each


@pytest.mark.parametrize("role", DEMO_ROLES)
def test_every_page_of_the_role_in_chinese_shows_no_english_and_has_the_switch(world, role):
    user = world.users[role]
    client = Client(raise_request_exception=False, headers={"accept-language": "zh-hans"})
    client.force_login(user)
    starts = ["/"] + (["/admin/"] if user.is_staff else [])
    crawl = Crawl(client, limit=LIMIT_CHINESE, keep_pages=True).run(*starts)
    # The API's reference page (/api/v1/docs) is the API's, in English as its JSON is.
    pages = [v for v in crawl.visits if v.body and v.content_type.startswith("text/html")
             and not v.link.url.startswith("/api/")]
    assert len(pages) >= min(MIN_PAGES[role], LIMIT_CHINESE // 10) or role == "nocoupons"
    check = EnglishCheck(english_phrases(), world_data())
    english = {v.link.url: found for v in pages if (found := check.left(v.body))}
    where = {}  # each phrase left, and a page that shows it
    for url, found in english.items():
        for phrase in found:
            where.setdefault(phrase, url)
    assert not where, (f"{role}: English left on {len(english)} of {len(pages)} pages: "
                       + "; ".join(f"{phrase!r} on {url}" for phrase, url in sorted(where.items())))
    without_switch = [v.link.url for v in pages if 'action="/i18n/setlang/"' not in v.body]
    assert without_switch == [], role
    not_chinese = [v.link.url for v in pages if 'lang="zh-hans"' not in v.body]
    assert not_chinese == [], role


MIN_PAGES = {"distributor": 30, "operator": 25, "viewer": 20, "reseller": 15, "tier2": 15,
             "nocoupons": 0, "customer": 12, "bd": 30, "bd2": 20, "root": 60}
