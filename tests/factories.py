"""Test data: tenancy through plain model creation, everything else through services.

One home for what several test packages build: users, partners, shops (a distributor with
its BD, users, customers and a template), templates, requests brought through their
statuses with their on-commit work run, released coupons made directly, usage imported and
billed, and the database state a refused action must leave as it was.
"""
import csv
import io
import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import mail
from django.test import TestCase, override_settings
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
from approvals import services as approvals
from approvals.models import Approval
from audit.models import AuditLog
from billing.daily_bills import daily_bills_make
from billing.models import UsageImport
from billing.usage_import import usage_import
from coupons.models import (
    CostBearer,
    Coupon,
    CouponTemplate,
    IssuanceRecipient,
    IssuanceRequest,
)
from coupons.services import (
    coupon_template_create,
    coupon_template_disable,
    issuance_request_submit,
)

# The default hasher costs about a second per user here. The root conftest sets this one
# for every test; a world built outside a test (a class, module or package fixture) wraps
# its build in fast_passwords().
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Status = IssuanceRequest.Status

_seq = itertools.count(1)


def n() -> int:
    return next(_seq)


def fast_passwords():
    """Users made in the block get the fast hasher (for worlds built outside a test)."""
    return override_settings(PASSWORD_HASHERS=FAST_HASHERS)


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


def make_tier2(distributor: Partner, *, account_id: str | None = None,
               account_name: str | None = None, **kwargs) -> tuple[Partner, SubAccount]:
    """A tier-2 reseller and its account under the distributor."""
    reseller = make_partner(kind=Partner.Kind.RESELLER, tier=2, parent=distributor, **kwargs)
    account = SubAccount.objects.create(
        partner=distributor, account_id=account_id or f"T2-{n():06d}",
        name=account_name or f"{reseller.name} account",
        type=SubAccount.Type.TIER2_RESELLER, reseller=reseller,
    )
    return reseller, account


def make_member(partner: Partner, role=PartnerMembership.Role.ADMIN, username=None, **extra):
    user = make_user(username, **extra)
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


def ended(template: CouponTemplate, *, days: int) -> CouponTemplate:
    """A fixed-window template as it is once its window ended `days` ago: its dates moved
    back (no service makes a window that has already ended, coupons/rules.py)."""
    shift = timedelta(days=(timezone.localdate() - template.valid_until).days + days)
    CouponTemplate.objects.filter(pk=template.pk).update(
        valid_from=template.valid_from - shift, valid_until=template.valid_until - shift)
    template.refresh_from_db()
    return template


# ---------------------------------------------------------------------------------------
# Requests through their statuses


def submit(template, user, accounts):
    """The request, its on-commit work (the BD's email, an auto-approved release) not run:
    the caller runs it (committed(), deferred()) or lets a real commit do it."""
    return issuance_request_submit(
        template=template, acting_user=user, account_ids=[a.account_id for a in accounts],
    )


def submitted(template, user, accounts) -> IssuanceRequest:
    """submit() with its on-commit work run as a commit would; the request re-read."""
    with committed():
        request = submit(template, user, accounts)
    request.refresh_from_db()
    return request


def approve(request, user) -> IssuanceRequest:
    """The BD approves; the release and what it queues run as after the commit."""
    with committed():
        approvals.approval_approve(request_id=request.pk, acting_user=user)
    return IssuanceRequest.objects.get(pk=request.pk)


def reject(request, user, reason="Not this quarter.") -> IssuanceRequest:
    with committed():
        approvals.approval_reject(request_id=request.pk, acting_user=user, reason=reason)
    return IssuanceRequest.objects.get(pk=request.pk)


def cancel(request, user) -> IssuanceRequest:
    with committed():
        approvals.issuance_request_cancel(request_id=request.pk, acting_user=user)
    return IssuanceRequest.objects.get(pk=request.pk)


def retry(request, user) -> IssuanceRequest:
    with committed():
        approvals.issuance_request_retry(request_id=request.pk, acting_user=user)
    return IssuanceRequest.objects.get(pk=request.pk)


def withdraw(request, user) -> IssuanceRequest:
    with committed():
        approvals.issuance_request_withdraw(request_id=request.pk, acting_user=user)
    return IssuanceRequest.objects.get(pk=request.pk)


def approve_and_fail(request, bd, partner_user) -> IssuanceRequest:
    """Approved, then the template is disabled before the release runs: failed to issue."""
    with deferred() as callbacks:
        approvals.approval_approve(request_id=request.pk, acting_user=bd)
    coupon_template_disable(template=request.template, acting_user=partner_user)
    run_callbacks(list(callbacks))
    return IssuanceRequest.objects.get(pk=request.pk)


def request_in(status: str, *, template, partner_user, bd, accounts) -> IssuanceRequest:
    """A request of `template` for `accounts`, brought to `status` through the services.

    "approved" is the moment between the approval's commit and its release: the release
    queued on commit is dropped.
    """
    request = submitted(template, partner_user, accounts)
    if status == Status.PENDING:
        return request
    if status == Status.APPROVED:
        with deferred():
            approvals.approval_approve(request_id=request.pk, acting_user=bd)
        return IssuanceRequest.objects.get(pk=request.pk)
    if status == Status.ISSUED:
        return approve(request, bd)
    if status == Status.REJECTED:
        return reject(request, bd)
    if status == Status.CANCELLED:
        return cancel(request, partner_user)
    failed = approve_and_fail(request, bd, partner_user)
    if status == Status.FAILED:
        return failed
    assert status == Status.WITHDRAWN, status
    return withdraw(failed, partner_user)


def issue(template, partner_user, bd, accounts) -> list[Coupon]:
    """Submit a request for `accounts`, have the BD approve it (unless it was auto-approved)
    and let the release and the postings it triggers run: the accounts' new coupons."""
    request = submitted(template, partner_user, accounts)
    if request.status == Status.PENDING:
        request = approve(request, bd)
    assert request.status == Status.ISSUED, (request.status, request.reason)
    return list(Coupon.objects.filter(request=request).order_by("sub_account__account_id"))


# ---------------------------------------------------------------------------------------
# A shop: a distributor with its BD, users, customers and a template


@dataclass
class Shop:
    partner: Partner
    bd: object
    admin: object
    accounts: list[SubAccount]
    template: CouponTemplate | None = None
    operator: object | None = None
    viewer: object | None = None

    def submit(self, accounts: list[SubAccount] | None = None) -> IssuanceRequest:
        """The admin's request of the shop's template for `accounts` (all by default), its
        on-commit work not run. A platform-borne request waits for the BD."""
        request = submit(self.template, self.admin, accounts or self.accounts)
        if self.template.cost_bearer == CostBearer.PLATFORM:
            assert request.status == Status.PENDING
        return request

    def approve(self, request: IssuanceRequest) -> IssuanceRequest:
        return approve(request, self.bd)


SHOP_FACE_VALUE = Decimal("50.00")


def make_shop(accounts: int = 0, *, prefix: str = "W-", name: str | None = None, bd=None,
              budget=None, currency: str = "USD", requires_bd_approval: bool = True,
              admin: str | None = None, operator: str | None = None,
              viewer: str | None = None, template: bool = True) -> Shop:
    """A distributor with a BD (made unless given), an admin (and an operator and a viewer
    when their usernames are given) and `accounts` sub-accounts.

    The platform budget is `budget`, by default twice the shop's template for every account.
    With `template`, a platform-borne 50.00 cash template valid from 5 days ago for 30 days
    (so yesterday's bills are inside it)."""
    bd = bd or make_bd()
    if budget is None:
        budget = SHOP_FACE_VALUE * accounts * 2
    partner = make_partner(name=name, bd=bd, budget=str(budget), currency=currency,
                           requires_bd_approval=requires_bd_approval)
    shop = Shop(partner=partner, bd=bd, admin=make_member(partner, "admin", username=admin),
                accounts=[])
    if operator:
        shop.operator = make_member(partner, "operator", username=operator)
    if viewer:
        shop.viewer = make_member(partner, "viewer", username=viewer)
    if template:
        shop.template = make_template(
            partner, shop.admin, cost_bearer="platform", face_value=SHOP_FACE_VALUE,
            **fixed_window(days_from_today=-5, length=30),
        )
    if accounts:
        shop.accounts = make_accounts(partner, accounts, prefix=prefix, currency=currency)
    return shop


# ---------------------------------------------------------------------------------------
# Coupons made directly (without a request's release), usage imported and billed

_codes = itertools.count(1)
YEAR_START = date(2025, 1, 1)
YEAR_END = date(2025, 12, 31)


def _coupon_template(partner, kind: str, currency: str) -> CouponTemplate:
    user, _ = get_user_model().objects.get_or_create(username="billing-tests")
    name = f"billing-tests {kind} {currency}"
    template = CouponTemplate.objects.filter(partner=partner, name=name).first()
    if template is None:
        template = CouponTemplate.objects.create(
            partner=partner, name=name, kind=kind, currency=currency,
            face_value=Decimal("1.00"), validity_type="relative", valid_days=365,
            discount_rate=Decimal("10") if kind == "discount" else None,
            discount_uses=1 if kind == "discount" else None,
            min_bill_amount=Decimal("1.00") if kind == "threshold" else None,
            cost_bearer="partner", issue_limit="unlimited", created_by=user,
        )
    return template


def make_coupon(
    account: SubAccount,
    *,
    kind: str = "cash",
    amount="100.00",
    currency: str | None = None,
    valid_from: date = YEAR_START,
    valid_until: date = YEAR_END,
    products: list[str] | None = None,
    min_amount=None,
    rate=None,
    cap=None,
    uses: int | None = None,
    released_at: datetime | None = None,
) -> Coupon:
    """A released coupon of `account`, written directly (for the billing tests, whose
    coupons need no request's story). A discount's amount is cap × uses, as at release."""
    currency = currency or account.currency
    template = _coupon_template(account.partner, kind, currency)
    if kind == "discount":
        amount = Decimal(str(cap)) * uses
    amount = Decimal(str(amount))
    user = template.created_by
    request = IssuanceRequest.objects.create(
        partner=account.partner, template=template, status=Status.ISSUED,
        route=IssuanceRequest.Route.AUTO, cost_bearer="partner", currency=currency,
        unit_value=amount, recipient_count=1, total_amount=amount, submitted_by=user,
    )
    recipient = IssuanceRecipient.objects.create(
        request=request, template=template, sub_account=account, limited=False,
    )
    return Coupon.objects.create(
        code=f"BT{next(_codes):08d}", template=template, request=request, recipient=recipient,
        partner=account.partner, sub_account=account, kind=kind, cost_bearer="partner",
        currency=currency, amount=amount, balance=amount,
        discount_rate=Decimal(str(rate)) if rate is not None else None,
        uses_total=uses, uses_left=uses,
        min_bill_amount=Decimal(str(min_amount)) if min_amount is not None else None,
        all_products=products is None, product_codes=sorted(products or []),
        valid_from=valid_from, valid_until=valid_until,
        released_at=released_at or timezone.now(),
    )


def usage_csv(rows, *, header: str = "account_id,date,product_code,amount") -> io.BytesIO:
    """rows: (account or account_id, date or text, product code, amount, and any further
    columns the header names)."""
    out = io.StringIO()
    out.write(header + "\n")
    writer = csv.writer(out, lineterminator="\n")
    for account, *rest in rows:
        account_id = account.account_id if isinstance(account, SubAccount) else account
        writer.writerow([account_id, *rest])
    return io.BytesIO(out.getvalue().encode())


def import_usage(rows, **kwargs) -> UsageImport:
    return usage_import(file=usage_csv(rows), file_name="test.csv", **kwargs)


_files = itertools.count(1)


def bill_usage(rows, days=None, *, header: str = "account_id,date,product_code,amount",
               file_name: str = "test.csv") -> None:
    """Import usage rows (account, day, product, amount, …) and make the days' bills (the
    rows' days unless given), each day's on-commit work (its postings) run as a commit
    would."""
    data = usage_csv(rows, header=header)
    # Blank trailing lines (skipped by the parser) keep two calls with the same rows apart:
    # the import refuses a file it has seen.
    data = io.BytesIO(data.getvalue() + b"\n" * next(_files))
    usage_import(file=data, file_name=file_name)
    for day in sorted(days or {row[1] for row in rows}):
        with committed():
            daily_bills_make(bill_date=day)


def demo_log(message: str = "", *args, **kwargs) -> None:
    """demo.seeding's log, for a test whose commits are real (a live server): silent, but
    a month close the demo refuses (the demo only logs it) fails the test's setup."""
    if " not closed: " in message:
        raise AssertionError(f"the demo's setup was refused: {message.strip()}")


# ---------------------------------------------------------------------------------------
# What a refused action must leave as it was


def db_state() -> dict:
    """Every row a template, issuing, approval or settings action could write or change,
    in comparable form (and the mail outbox)."""
    return {
        "templates": list(
            CouponTemplate.objects.order_by("pk").values_list(
                "pk", "name", "status", "face_value", "cost_bearer", "valid_days",
                "released_count", "released_amount",
            )
        ),
        "template_products": list(
            CouponTemplate.products.through.objects.order_by("pk").values_list("pk", flat=True)
        ),
        "requests": list(
            IssuanceRequest.objects.order_by("pk").values_list(
                "pk", "status", "decided_by", "decided_at", "reason", "issued_at",
                "released_so_far",
            )
        ),
        "approvals": list(
            Approval.objects.order_by("pk").values_list("pk", "status", "decided_by", "reason")
        ),
        "recipients": list(
            IssuanceRecipient.objects.order_by("pk").values_list("pk", "holds")
        ),
        "coupons": list(
            Coupon.objects.order_by("pk").values_list("pk", "status", "balance", "void_reason")
        ),
        "budgets": list(
            PlatformBudget.objects.order_by("pk").values_list(
                "pk", "amount", "reserved", "consumed",
            )
        ),
        "partners": list(
            Partner.objects.order_by("pk").values_list(
                "pk", "coupon_enabled", "requires_bd_approval", "bd_id",
            )
        ),
        "audit": AuditLog.objects.count(),
        "imports": UsageImport.objects.count(),
        "mails": len(mail.outbox),
    }


@contextmanager
def nothing_written():
    """Asserts the block leaves every template, request, approval, coupon, budget, partner
    setting, audit row, usage import and the outbox as they were."""
    before = db_state()
    yield
    assert db_state() == before, "the refused action wrote something"


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
