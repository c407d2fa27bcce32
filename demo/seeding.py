"""Idempotent demo data: partners of every kind, users of every role,
thousands of sub-accounts, products and templates. Safe to run again: it creates only what
is missing."""
import os
import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from accounts.models import (
    BD_GROUP,
    Partner,
    PartnerMembership,
    PlatformBudget,
    Product,
    SubAccount,
    SubAccountMembership,
)
from coupons.models import CouponTemplate
from coupons.services import coupon_template_create, issuance_request_submit

PRODUCTS = [
    ("ecs", "Elastic Compute Service"),
    ("oss", "Object Storage Service"),
    ("rds", "ApsaraDB RDS"),
    ("cdn", "Content Delivery Network"),
    ("slb", "Server Load Balancer"),
    ("eip", "Elastic IP Address"),
    ("redis", "ApsaraDB for Redis"),
    ("waf", "Web Application Firewall"),
]

COMPANY_WORDS = [
    "Acme", "Blue", "Cedar", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Iris", "Juniper",
    "Kestrel", "Lumen", "Maple", "Nimbus", "Orchid", "Pioneer", "Quartz", "Raven", "Summit",
    "Tidal", "Umbra", "Vertex", "Willow", "Xenon", "Yarrow", "Zephyr",
]
COMPANY_KINDS = ["Labs", "Retail", "Logistics", "Games", "Media", "Health", "Foods", "Systems",
                 "Studios", "Analytics", "Travel", "Robotics"]



@dataclass(frozen=True)
class DemoFigures:
    """What seed_demo makes, in one place: the seeding reads it, and the README's figures
    are checked against it (tests/test_readme.py)."""

    customers: int = 2400  # Northwind's own customers (seed_demo --accounts)
    tier2_resellers: tuple[str, ...] = ("Harbor IT", "Cedar Cloud Services", "Summit Networks",
                                        "Lumen Hosting", "Raven Digital")
    tier2_customers: int = 40  # each tier-2 reseller's own customers
    bluebird_customers: int = 300
    quiet_customers: int = 20
    usage_northwind: int = 60  # Northwind customers with usage (NW000001 …)
    usage_bluebird: int = 10
    usage_days: int = 60
    seconds: int = 10  # about how long seeding takes, the first time

    def northwind_accounts(self, customers: int | None = None) -> int:
        """Northwind's selectable sub-accounts: its customers and its tier-2 resellers'
        own accounts (never those resellers' customers)."""
        return (self.customers if customers is None else customers) + len(self.tier2_resellers)

    def sub_accounts(self, customers: int | None = None) -> int:
        """Every sub-account of the demo, all partners together."""
        return (self.northwind_accounts(customers)
                + len(self.tier2_resellers) * self.tier2_customers
                + self.bluebird_customers + self.quiet_customers)

    @property
    def usage_accounts(self) -> int:
        return self.usage_northwind + self.usage_bluebird


DEMO = DemoFigures()

LOGINS = [
    ("distributor", "admin of Northwind Distribution (distributor, coupon function on)"),
    ("operator", "operator of Northwind Distribution"),
    ("viewer", "viewer of Northwind Distribution"),
    ("reseller", "admin of Bluebird Cloud (tier-1 reseller, no BD approval for partner-borne)"),
    ("tier2", "admin of Harbor IT (tier-2 reseller under Northwind)"),
    ("nocoupons", "admin of Quiet Partners (coupon function off)"),
    ("customer", "user of Acme Labs, a sub-account of Northwind (Billing Management)"),
    ("bd", "BD of Northwind Distribution and Bluebird Cloud (Django admin)"),
    ("bd2", "BD of Quiet Partners and Southgate Distribution, not of Northwind or Bluebird "
            "(Django admin)"),
    ("root", "platform operator (superuser)"),
]


def _user(username: str, password: str, **extra):
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults=extra)
    if created:
        user.set_password(password)
        user.save()
    return user


def _partner(name: str, **fields) -> Partner:
    partner, _ = Partner.objects.get_or_create(name=name, defaults=fields)
    return partner


def _member(user, partner, role):
    PartnerMembership.objects.get_or_create(user=user, defaults={"partner": partner, "role": role})


def _company(rng: random.Random, i: int) -> str:
    return f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {i:04d}"


def _sub_accounts(partner: Partner, prefix: str, count: int, seed: int, currency="USD"):
    rng = random.Random(seed)
    existing = set(
        SubAccount.objects.filter(partner=partner).values_list("account_id", flat=True),
    )
    rows = []
    for i in range(1, count + 1):
        account_id = f"{prefix}{i:06d}"
        name = _company(rng, i)
        if account_id not in existing:
            rows.append(SubAccount(partner=partner, account_id=account_id, name=name,
                                   currency=currency))
    SubAccount.objects.bulk_create(rows, batch_size=1000)


def seed(*, password: str, accounts: int = DEMO.customers, log=print) -> None:
    _seed_core(password=password, accounts=accounts, log=log)
    # Outside the transaction above: each day's postings run when that day's bills commit,
    # so the months can be closed after them.
    from demo.usage import seed_usage

    seed_usage(account_ids=[f"NW{i:06d}" for i in range(1, DEMO.usage_northwind + 1)]
               + [f"BB{i:06d}" for i in range(1, DEMO.usage_bluebird + 1)],
               days=DEMO.usage_days, log=log)
    log(f"Demo data ready: {SubAccount.objects.count():,} sub-accounts, "
        f"{CouponTemplate.objects.count()} templates, {Product.objects.count()} products.")


@transaction.atomic
def _seed_core(*, password: str, accounts: int, log) -> None:
    for code, name in PRODUCTS:
        Product.objects.get_or_create(code=code, defaults={"name": name})

    root = _user("root", password, is_staff=True, is_superuser=True, email="root@example.com",
                 first_name="Robin", last_name="Ops")
    bd_group, _ = Group.objects.get_or_create(name=BD_GROUP)
    bd = _user("bd", password, is_staff=True, email="bd@example.com", first_name="Bea",
               last_name="Dalton")
    bd2 = _user("bd2", password, is_staff=True, email="bd2@example.com", first_name="Ben",
                last_name="Dutta")
    bd.groups.add(bd_group)
    bd2.groups.add(bd_group)

    northwind = _partner("Northwind Distribution", kind=Partner.Kind.DISTRIBUTOR, tier=1, bd=bd,
                         coupon_enabled=True, requires_bd_approval=True)
    bluebird = _partner("Bluebird Cloud", kind=Partner.Kind.RESELLER, tier=1, bd=bd,
                        coupon_enabled=True, requires_bd_approval=False)
    quiet = _partner("Quiet Partners", kind=Partner.Kind.RESELLER, tier=1, bd=bd2,
                     coupon_enabled=False)
    _partner("Southgate Distribution", kind=Partner.Kind.DISTRIBUTOR, tier=1, bd=bd2,
             coupon_enabled=True)
    PlatformBudget.objects.get_or_create(partner=northwind, currency="USD",
                                         defaults={"amount": Decimal("250000.00")})
    PlatformBudget.objects.get_or_create(partner=bluebird, currency="USD",
                                         defaults={"amount": Decimal("20000.00")})

    # Tier-2 resellers under Northwind: each is a partner and an account of Northwind.
    tier2_partners = []
    for i, name in enumerate(DEMO.tier2_resellers, start=1):
        t2 = _partner(name, kind=Partner.Kind.RESELLER, tier=2, parent=northwind, bd=bd,
                      coupon_enabled=True, requires_bd_approval=True)
        tier2_partners.append(t2)
        SubAccount.objects.get_or_create(
            account_id=f"T2{i:06d}",
            defaults={"partner": northwind, "name": name, "type": SubAccount.Type.TIER2_RESELLER,
                      "reseller": t2},
        )
        _sub_accounts(t2, f"T{i}C", DEMO.tier2_customers, seed=100 + i)

    _sub_accounts(northwind, "NW", accounts, seed=1)
    _sub_accounts(bluebird, "BB", DEMO.bluebird_customers, seed=2)
    _sub_accounts(quiet, "QP", DEMO.quiet_customers, seed=3)

    _member(_user("distributor", password, email="distributor@example.com"), northwind,
            PartnerMembership.Role.ADMIN)
    _member(_user("operator", password, email="operator@example.com"), northwind,
            PartnerMembership.Role.OPERATOR)
    _member(_user("viewer", password, email="viewer@example.com"), northwind,
            PartnerMembership.Role.VIEWER)
    _member(_user("reseller", password, email="reseller@example.com"), bluebird,
            PartnerMembership.Role.ADMIN)
    _member(_user("tier2", password, email="tier2@example.com"), tier2_partners[0],
            PartnerMembership.Role.ADMIN)
    _member(_user("nocoupons", password, email="nocoupons@example.com"), quiet,
            PartnerMembership.Role.ADMIN)
    acme = SubAccount.objects.get(account_id="NW000001")
    if acme.name != "Acme Labs":
        acme.name = "Acme Labs"
        acme.save(update_fields=["name"])
    customer = _user("customer", password, email="customer@example.com")
    SubAccountMembership.objects.get_or_create(user=customer, defaults={"sub_account": acme})

    distributor = get_user_model().objects.get(username="distributor")
    reseller_user = get_user_model().objects.get(username="reseller")
    today = timezone.localdate()
    ecs, oss = Product.objects.get(code="ecs"), Product.objects.get(code="oss")
    demo_templates = [
        (northwind, distributor, dict(
            name="Autumn promo 100", kind="cash", currency="USD", face_value=Decimal("100.00"),
            cost_bearer="partner", issue_limit="one", validity_type="fixed",
            valid_from=today - timedelta(days=75), valid_until=today + timedelta(days=30),
            description="A seasonal credit; issued in the demo so bills show deductions.")),
        (northwind, distributor, dict(
            name="Welcome cash 50", kind="cash", currency="USD", face_value=Decimal("50.00"),
            cost_bearer="partner", issue_limit="one", validity_type="relative", valid_days=90,
            description="A welcome credit for new customers.")),
        (northwind, distributor, dict(
            name="POC credit 500 (platform)", kind="cash", currency="USD",
            face_value=Decimal("500.00"), cost_bearer="platform", issue_limit="one",
            validity_type="fixed", valid_from=today, valid_until=today + timedelta(days=180),
            description="Proof-of-concept credit funded by the platform.")),
        (northwind, distributor, dict(
            name="Spend 200 save 20 on ECS", kind="threshold", currency="USD",
            face_value=Decimal("20.00"), min_bill_amount=Decimal("200.00"),
            cost_bearer="partner", issue_limit="unlimited", validity_type="relative",
            valid_days=30, all_products=False, products=[ecs])),
        (northwind, distributor, dict(
            name="15% off storage", kind="discount", currency="USD", face_value=Decimal("30.00"),
            discount_rate=Decimal("15"), discount_uses=5, cost_bearer="partner",
            issue_limit="one", validity_type="relative", valid_days=60, all_products=False,
            products=[oss])),
        (bluebird, reseller_user, dict(
            name="Bluebird loyalty 25", kind="cash", currency="USD", face_value=Decimal("25.00"),
            cost_bearer="partner", issue_limit="unlimited", validity_type="relative",
            valid_days=365)),
    ]
    for partner, user, fields in demo_templates:
        if not CouponTemplate.objects.filter(partner=partner, name=fields["name"]).exists():
            coupon_template_create(partner=partner, acting_user=user, **fields)
    _seed_requests(distributor=distributor, bd=bd, reseller_user=reseller_user)
    _ = root


def _seed_requests(*, distributor, bd, reseller_user) -> None:
    """A few requests in each state, so the BD's queue and the coupons pages have rows."""
    from approvals.permissions import ensure_bd_group
    from approvals.services import approval_approve
    from coupons.models import IssuanceRequest

    ensure_bd_group()
    if IssuanceRequest.objects.filter(partner__name="Northwind Distribution").exists():
        return
    autumn = CouponTemplate.objects.get(name="Autumn promo 100")
    autumn_request = issuance_request_submit(
        template=autumn, acting_user=distributor, account_ids=[f"NW{i:06d}" for i in range(1, 41)],
    )
    approval_approve(request_id=autumn_request.pk, acting_user=bd)
    welcome = CouponTemplate.objects.get(name="Welcome cash 50")
    poc = CouponTemplate.objects.get(name="POC credit 500 (platform)")
    storage = CouponTemplate.objects.get(name="15% off storage")
    loyalty = CouponTemplate.objects.get(name="Bluebird loyalty 25")
    ids = [f"NW{i:06d}" for i in range(1, 21)]
    issued = issuance_request_submit(template=welcome, acting_user=distributor, account_ids=ids)
    approval_approve(request_id=issued.pk, acting_user=bd)
    storage_request = issuance_request_submit(template=storage, acting_user=distributor,
                                              account_ids=ids[:10])
    approval_approve(request_id=storage_request.pk, acting_user=bd)
    issuance_request_submit(template=poc, acting_user=distributor,
                            account_ids=[f"NW{i:06d}" for i in range(21, 26)])
    issuance_request_submit(template=welcome, acting_user=distributor,
                            account_ids=[f"NW{i:06d}" for i in range(30, 60)])
    issuance_request_submit(template=loyalty, acting_user=reseller_user,
                            account_ids=[f"BB{i:06d}" for i in range(1, 11)])


def print_logins(password_hint: str, log=print) -> None:
    log("")
    log(f"Demo logins (password: {password_hint}):")
    for username, what in LOGINS:
        log(f"  {username:<12} {what}")


def demo_password() -> str:
    return os.environ.get("DEMO_PASSWORD", "demo")
