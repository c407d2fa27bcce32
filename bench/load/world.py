"""The load test's world, written into the current database: partners with their BDs,
admins and operators, sub-accounts and their users, templates, a million coupons, posted
bill history with its deductions and closed months, the BDs' pending queue, and the two
jobs the load runs beside the pages (a 10,000-account release waiting for its BD, and a
day of usage of 10,000 accounts waiting for its billing run), each twice: once to time
alone, once under load.

Big tables go in by COPY (bench/data.py); everything whose consistency is a rule of the
product goes through the product's own services: the bills are made by `daily_bills_make`
and posted by `accounts_post_outstanding`, months are closed by `month_close`, coupons
past their validity expire through `coupons_expire`, requests are submitted by
`issuance_request_submit`. So `check_ledger` is clean on the result.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import random
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from accounts.models import (
    BD_GROUP,
    Partner,
    PartnerMembership,
    PlatformBudget,
    SubAccount,
    SubAccountMembership,
)
from bench import data
from bench.load.history import history_make
from bench.load.scale import Scale
from billing.models import DailyBill, DailyBillLine, Deduction, UsageRecord
from billing.usage_import import usage_import
from coupons.models import Coupon, CouponTemplate, IssuanceRecipient
from coupons.services import coupon_template_create, issuance_request_submit

# The password of every load user (they sign in by session in the load; this is for a
# person looking around the dataset).
PASSWORD = "load-test-password"  # noqa: S105
PRODUCTS = ["compute", "storage", "network", "database", "cdn"]
BILLING_USAGE = (("compute", Decimal("30.00")), ("storage", Decimal("40.00")))

# (name, kind, face value, extra terms, cost bearer, issue limit, share of the coupons,
#  first release as days ago): the distributor's, as bench/usage_pages.py has them.
BIG_TEMPLATES = [
    ("Welcome credit", "cash", "20.00", {}, "partner", "one", 0.04, 720),
    ("Monthly loyalty credit", "cash", "10.00", {}, "partner", "unlimited", 0.30, 700),
    ("Migration credit", "cash", "100.00", {}, "platform", "unlimited", 0.06, 650),
    ("Startup programme", "cash", "250.00", {}, "platform", "unlimited", 0.03, 500),
    ("Spend 100 get 15", "threshold", "15.00", {"min_bill_amount": Decimal("100.00")},
     "partner", "unlimited", 0.12, 600),
    ("Storage discount 20%", "discount", "5.00",
     {"discount_rate": Decimal("20"), "discount_uses": 6}, "partner", "unlimited", 0.10, 400),
    ("Compute discount 10%", "discount", "8.00",
     {"discount_rate": Decimal("10"), "discount_uses": 12}, "platform", "unlimited", 0.08, 300),
    ("Black Friday credit", "cash", "30.00", {}, "partner", "unlimited", 0.07, 370),
    ("Reseller incentive", "cash", "50.00", {}, "platform", "unlimited", 0.05, 450),
    ("Referral credit", "cash", "15.00", {}, "partner", "unlimited", 0.08, 680),
    ("Renewal thank-you", "cash", "25.00", {}, "partner", "unlimited", 0.05, 200),
    ("Network egress credit", "cash", "40.00", {}, "platform", "unlimited", 0.02, 120),
]
MID_TEMPLATES = [
    # "Limited to 1": at most one coupon per account, so its share stays within the accounts.
    ("Welcome credit", "cash", "20.00", {}, "partner", "one", 0.10, 500),
    ("Monthly credit", "cash", "10.00", {}, "partner", "unlimited", 0.55, 400),
    ("Spend 100 get 15", "threshold", "15.00", {"min_bill_amount": Decimal("100.00")},
     "partner", "unlimited", 0.20, 300),
    ("Migration credit", "cash", "100.00", {}, "platform", "unlimited", 0.15, 365),
]


class Users:
    """Users made in bulk with one password hash (hashing is the slow part of a user)."""

    def __init__(self):
        self.password = make_password(PASSWORD)
        self.bd_group = Group.objects.get_or_create(name=BD_GROUP)[0]

    def make(self, usernames: list[str], *, staff: bool = False) -> list:
        model = get_user_model()
        model.objects.bulk_create([
            model(username=u, email=f"{u}@example.com", password=self.password, is_staff=staff)
            for u in usernames
        ], batch_size=2000)
        users = list(model.objects.filter(username__in=usernames).order_by("pk"))
        return users

    def bd(self, username: str):
        (user,) = self.make([username], staff=True)
        user.groups.add(self.bd_group)
        return user

    def members(self, partner: Partner, usernames: list[str], role: str) -> list:
        users = self.make(usernames)
        PartnerMembership.objects.bulk_create(
            [PartnerMembership(user=u, partner=partner, role=role) for u in users])
        return users


def _templates(partner, admin, specs, products, today) -> list[CouponTemplate]:
    out = []
    for name, kind, value, extra, bearer, limit, _share, _first in specs:
        scoped = {}
        if "Storage" in name:
            scoped = {"all_products": False, "products": [products["storage"]]}
        elif "egress" in name:
            scoped = {"all_products": False, "products": [products["network"],
                                                          products["cdn"]]}
        out.append(coupon_template_create(
            partner=partner, acting_user=admin, name=name, kind=kind, currency="USD",
            face_value=Decimal(value), cost_bearer=bearer, issue_limit=limit,
            validity_type="relative", valid_days=365 if bearer == "platform" else 180,
            **extra, **scoped,
        ))
    return out


def _coupons(templates, specs, admin, accounts: list[int], total: int, *, rng, history: set,
             history_start: dt.date) -> None:
    """`total` coupons over the templates' shares, in requests of 1–10,000 accounts, each
    released at one moment of the template's life. Untouched but for what needs no
    deduction to be true: 3 % voided whole; past their validity, expired with their
    balance, unless the history's bills could have used them (those expire after the
    history is posted, through the expiry service)."""
    now = timezone.now()
    today = timezone.localdate()
    for template, spec in zip(templates, specs, strict=True):
        limit, share, first = spec[5], spec[6], spec[7]
        want = round(total * share)
        pool = rng.sample(accounts, min(want, len(accounts))) if limit == "one" else None
        made = 0
        while made < want:
            size = min(want - made, len(accounts),
                       rng.choice([1, 5, 20, 100, 500, 2_000, 5_000, 10_000]))
            if pool is not None:
                chosen, pool = pool[:size], pool[size:]
                if not chosen:
                    break
            else:
                chosen = rng.sample(accounts, size)
            released = now - dt.timedelta(days=rng.uniform(1, first), minutes=rng.randint(0, 600))
            valid_from = timezone.localdate(released)
            valid_until = valid_from + dt.timedelta(days=template.valid_days - 1)
            uses = template.discount_uses

            def state(i, amount, chosen=chosen, valid_until=valid_until, uses=uses):
                if rng.random() < 0.03:
                    return Coupon.Status.VOIDED, Decimal("0"), amount, uses
                if valid_until < today and (valid_until < history_start
                                            or chosen[i] not in history):
                    return Coupon.Status.EXPIRED, amount, Decimal("0"), uses
                return Coupon.Status.AVAILABLE, amount, Decimal("0"), uses

            data.issue_coupons(template, admin, chosen, released_at=released,
                               valid_from=valid_from, valid_until=valid_until, state=state)
            made += len(chosen)


def _counters_from_coupons() -> None:
    """The templates' released counters and the platform budgets' consumption, as the
    releases would have left them (COPY wrote the coupons without them)."""
    with connection.cursor() as cursor:
        cursor.execute("""
            UPDATE coupons_coupontemplate t SET released_count = s.n, released_amount = s.total
            FROM (SELECT template_id, COUNT(*) n, SUM(amount) total FROM coupons_coupon
                  GROUP BY template_id) s WHERE s.template_id = t.id""")
        cursor.execute("""
            UPDATE accounts_platformbudget b SET consumed = s.total
            FROM (SELECT partner_id, currency, SUM(amount) total FROM coupons_coupon
                  WHERE cost_bearer = 'platform' GROUP BY partner_id, currency) s
            WHERE s.partner_id = b.partner_id AND s.currency = b.currency""")


@dataclass
class Tenant:
    partner: Partner
    prefix: str
    admin: object
    accounts: list[tuple[int, str]]  # (pk, account_id)


def _tenant(users: Users, name: str, prefix: str, accounts: int, *, bd, operators: int,
            requires_bd_approval: bool, seed: int, tier2_every: int = 200) -> Tenant:
    partner = Partner.objects.create(
        name=name, kind=Partner.Kind.DISTRIBUTOR, tier=1, bd=bd, coupon_enabled=True,
        requires_bd_approval=requires_bd_approval,
    )
    PlatformBudget.objects.create(partner=partner, currency="USD",
                                  amount=Decimal("1000000000.00"))
    slug = prefix.lower()
    (admin,) = users.members(partner, [f"load-admin-{slug}"], PartnerMembership.Role.ADMIN)
    users.members(partner, [f"load-op-{slug}-{n}" for n in range(1, operators + 1)],
                  PartnerMembership.Role.OPERATOR)
    rows = data.make_sub_accounts(partner, accounts, prefix=prefix, tier2_every=tier2_every,
                                  seed=seed)
    return Tenant(partner, prefix, admin, rows)


def _pending(tenant: Tenant, template: CouponTemplate, count: int, rng) -> list[int]:
    """Small requests waiting in the BD's queue, submitted as the operators do."""
    ops = list(get_user_model().objects.filter(
        partner_membership__partner=tenant.partner,
        partner_membership__role=PartnerMembership.Role.OPERATOR).order_by("pk"))
    # Customers only: a platform-borne template may not go to a tier-2 reseller.
    ids = list(SubAccount.objects.filter(partner=tenant.partner, type=SubAccount.Type.CUSTOMER)
               .order_by("account_id").values_list("account_id", flat=True))
    made = []
    for n in range(count):
        chosen = rng.sample(ids, min(len(ids), rng.choice([1, 2, 3, 5, 10, 20])))
        made.append(issuance_request_submit(
            template=template, acting_user=ops[n % len(ops)], account_ids=chosen).pk)
    return made


def _billing_usage(tenant: Tenant, days: list[dt.date]) -> None:
    """The billing runs' usage: each account, each day, 30.00 of compute and 40.00 of
    storage, imported as a partner's usage file is."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["account_id", "date", "product_code", "amount"])
    for day in days:
        for _pk, account_id in tenant.accounts:
            for code, amount in BILLING_USAGE:
                writer.writerow([account_id, day.isoformat(), code, amount])
    usage_import(file=io.BytesIO(out.getvalue().encode()), file_name="load-billing.csv")


def world_make(scale: Scale, *, seed: int = 14, log=print) -> dict:
    """Write the world; return its manifest (what the runner and the load need to find)."""
    rng = random.Random(seed)
    today = timezone.localdate()
    # The billing runs bill these days (alone, then under load): the last two before today.
    billing_days = [today - dt.timedelta(days=2), today - dt.timedelta(days=1)]
    history_days = [today - dt.timedelta(days=d)
                    for d in range(scale.history_days + 2, 2, -1)]
    history_start = history_days[0]
    users = Users()
    products = {p.code: p for p in data.make_products(PRODUCTS)}
    bds = [users.bd(f"load-bd-{n}") for n in range(1, 7)]
    release_bd = users.bd("load-bd-release")

    log(f"partners and {scale.sub_accounts:,} sub-accounts")
    big = _tenant(users, "Load Distribution Asia", "LB", scale.big_accounts, bd=bds[0],
                  operators=scale.operators_big, requires_bd_approval=False, seed=seed)
    mids = [_tenant(users, f"Load Partner {n:02d}", f"M{n:02d}", scale.mid_accounts,
                    bd=bds[1 + n % (len(bds) - 1)], operators=scale.operators_mid,
                    requires_bd_approval=n % 2 == 1, seed=seed + n)
            for n in range(1, scale.mid_partners + 1)]
    billing = _tenant(users, "Load Billing Run Co", "LBR", scale.billing_accounts, bd=bds[0],
                      operators=1, requires_bd_approval=False, seed=seed + 100, tier2_every=0)
    release = _tenant(users, "Load Release Co", "LRL", scale.release_accounts, bd=release_bd,
                      operators=1, requires_bd_approval=True, seed=seed + 200, tier2_every=0)

    # History: accounts whose bills of the last days are made and posted.
    hist_big = rng.sample([pk for pk, _a in big.accounts], scale.history_big)
    hist_mid = [pk for t in mids for pk in rng.sample([pk for pk, _a in t.accounts],
                                                      scale.history_mid)]
    history = set(hist_big) | set(hist_mid)

    log(f"templates and {scale.coupons:,} coupons (COPY)")
    big_templates = _templates(big.partner, big.admin, BIG_TEMPLATES, products, today)
    mid_templates = [_templates(t.partner, t.admin, MID_TEMPLATES, products, today)
                     for t in mids]
    credit = coupon_template_create(
        partner=billing.partner, acting_user=billing.admin, name="Billing run credit",
        kind="cash", currency="USD", face_value=Decimal("1000.00"), cost_bearer="partner",
        issue_limit="unlimited", validity_type="fixed",
        valid_from=billing_days[0] - dt.timedelta(days=30),
        valid_until=today + dt.timedelta(days=365),
    )
    release_template = coupon_template_create(
        partner=release.partner, acting_user=release.admin, name="Release load credit",
        kind="cash", currency="USD", face_value=Decimal("5.00"), cost_bearer="partner",
        issue_limit="unlimited", validity_type="relative", valid_days=90,
    )
    with data.bulk_load(Coupon, IssuanceRecipient, DailyBill, DailyBillLine, Deduction,
                        UsageRecord), data.stats_triggers_fire():
        _coupons(big_templates, BIG_TEMPLATES, big.admin, [pk for pk, _a in big.accounts],
                 scale.big_coupons, rng=rng, history=history, history_start=history_start)
        for tenant, templates in zip(mids, mid_templates, strict=True):
            _coupons(templates, MID_TEMPLATES, tenant.admin, [pk for pk, _a in tenant.accounts],
                     scale.mid_coupons, rng=rng, history=history, history_start=history_start)
        data.issue_coupons(credit, billing.admin, [pk for pk, _a in billing.accounts],
                           released_at=timezone.now() - dt.timedelta(days=40))
    _counters_from_coupons()

    log(f"history: {len(history):,} accounts × {len(history_days)} days of bills, "
        "made and posted by the billing services")
    past = history_make(accounts=sorted(history), days=history_days, products=products,
                        rng=rng, keep_open=billing_days, log=log)

    log("the BDs' queue and the jobs of the run")
    pending = _pending(big, big_templates[2], scale.pending_per_partner, rng)
    for tenant, templates in zip(mids, mid_templates, strict=True):
        template = templates[1] if tenant.partner.requires_bd_approval else templates[3]
        pending += _pending(tenant, template, scale.pending_per_partner, rng)
    releases = [issuance_request_submit(
        template=release_template, acting_user=release.admin,
        account_ids=[a for _pk, a in release.accounts]).pk for _ in range(2)]
    _billing_usage(billing, billing_days)

    subs = rng.sample(sorted(history), min(scale.sub_users, len(history)))
    sub_users = users.make([f"load-sub-{pk}" for pk in subs])
    by_name = {f"load-sub-{pk}": pk for pk in subs}
    SubAccountMembership.objects.bulk_create([
        SubAccountMembership(user=u, sub_account_id=by_name[u.username]) for u in sub_users])

    return {
        "built_on": today.isoformat(),
        "scale": scale.as_dict(),
        "partners": {"big": big.partner.pk, "mids": [t.partner.pk for t in mids],
                     "billing": billing.partner.pk, "release": release.partner.pk},
        "prefixes": {str(t.partner.pk): t.prefix for t in [big, *mids]},
        "billing_days": [d.isoformat() for d in billing_days],
        "history_days": [history_days[0].isoformat(), history_days[-1].isoformat()],
        "closed_months": past["closed"],
        "release_requests": releases,
        "release_bd": release_bd.username,
        "pending_at_build": len(pending),
        "coupons": Coupon.objects.count(),
        "sub_accounts": SubAccount.objects.count(),
    }
