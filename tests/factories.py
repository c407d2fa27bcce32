"""Test data: tenancy through plain model creation, everything else through services."""
import itertools
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import TestCase
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
from coupons.services import coupon_template_create, issuance_request_submit

_seq = itertools.count(1)


def n() -> int:
    return next(_seq)


def make_user(username: str | None = None, **extra):
    username = username or f"user{n()}"
    user = get_user_model().objects.create_user(username=username, password="pw", **extra)
    return user


def make_bd(username: str | None = None):
    user = make_user(username or f"bd{n()}", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=BD_GROUP)[0])
    return user


def make_partner(*, name=None, kind=Partner.Kind.DISTRIBUTOR, tier=1, parent=None, bd=None,
                 coupon_enabled=True, requires_bd_approval=True, budget=None,
                 currency="USD") -> Partner:
    partner = Partner.objects.create(
        name=name or f"Partner {n()}", kind=kind, tier=tier, parent=parent, bd=bd,
        coupon_enabled=coupon_enabled, requires_bd_approval=requires_bd_approval,
    )
    if budget is not None:
        PlatformBudget.objects.create(partner=partner, currency=currency, amount=Decimal(budget))
    return partner


def make_tier2(distributor: Partner, **kwargs) -> tuple[Partner, SubAccount]:
    """A tier-2 reseller and its account under the distributor."""
    reseller = make_partner(kind=Partner.Kind.RESELLER, tier=2, parent=distributor, **kwargs)
    account = SubAccount.objects.create(
        partner=distributor, account_id=f"T2-{n():06d}", name=f"{reseller.name} account",
        type=SubAccount.Type.TIER2_RESELLER, reseller=reseller,
    )
    return reseller, account


def make_member(partner: Partner, role=PartnerMembership.Role.ADMIN, username=None):
    user = make_user(username)
    PartnerMembership.objects.create(user=user, partner=partner, role=role)
    return user


def make_accounts(partner: Partner, count: int, *, prefix: str | None = None,
                  currency="USD", name="Customer") -> list[SubAccount]:
    prefix = prefix or f"A{n()}-"
    rows = [
        SubAccount(partner=partner, account_id=f"{prefix}{i:06d}", name=f"{name} {i}",
                   currency=currency)
        for i in range(count)
    ]
    SubAccount.objects.bulk_create(rows)
    return list(SubAccount.objects.filter(partner=partner, account_id__startswith=prefix)
                .order_by("account_id"))


def make_subaccount_user(account: SubAccount, username=None):
    user = make_user(username)
    SubAccountMembership.objects.create(user=user, sub_account=account)
    return user


def make_product(code=None) -> Product:
    code = code or f"p{n()}"
    return Product.objects.get_or_create(code=code, defaults={"name": code.upper()})[0]


def template_fields(**overrides) -> dict:
    fields = dict(
        name=f"Template {n()}", kind="cash", currency="USD", face_value=Decimal("50.00"),
        cost_bearer="partner", issue_limit="one", validity_type="relative", valid_days=30,
    )
    fields.update(overrides)
    return fields


def make_template(partner: Partner, user, **overrides):
    return coupon_template_create(partner=partner, acting_user=user, **template_fields(**overrides))


def fixed_window(days_from_today=0, length=30) -> dict:
    start = timezone.localdate() + timedelta(days=days_from_today)
    return dict(validity_type="fixed", valid_from=start, valid_until=start + timedelta(days=length))


def submit(template, user, accounts):
    return issuance_request_submit(
        template=template, acting_user=user, account_ids=[a.account_id for a in accounts],
    )


# ---------------------------------------------------------------------------------------
# On-commit work, run the way a commit would


def run_callbacks(callbacks) -> None:
    """Run captured on-commit callbacks the way a commit would, and those they queue in
    turn (the release queues its emails and postings). Unlike a real commit, an error is
    raised, not logged, so a test sees it."""
    while callbacks:
        with TestCase.captureOnCommitCallbacks(execute=False) as queued:
            for callback in callbacks:
                callback()
        callbacks = list(queued)


@contextmanager
def committed():
    """The block's on-commit work (releases, postings, emails) runs at its end, as after a
    commit; the block gets the list of callbacks captured so far."""
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        yield callbacks
    run_callbacks(list(callbacks))


@contextmanager
def deferred():
    """The block's on-commit work is held back; the test runs it later with run_callbacks
    (e.g. to change something between an approval and its release)."""
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        yield callbacks
