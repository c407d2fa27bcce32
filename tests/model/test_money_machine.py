"""The randomised model test of QUALITY.md's "ledger invariants" bar.

A hypothesis state machine drives the real services on the test database — submit (any
template of cash/threshold/discount × platform/partner-borne × limited/unlimited × three
validities, to account sets that may hold tier-2, foreign-currency, unknown, duplicate or
already-holding accounts), approve, reject, cancel, release (and release again), the release
sweeper, retry, withdraw, disable a template, the BD's budget and approval settings, import
usage, make a day's bills, post them (and again), the posting sweeper, post an account's
outstanding bills, void, expire, close a month, and let days pass — beside a small model:
each request's status and accounts, the "Limited to 1" holds, the budget's reserved and
consumed sums, which usage is billed and which bills wait for their posting. The model
predicts every refusal; a refused call must write nothing.

After every step (`invariants_hold`): `ledger_check() == []` (PRODUCT §7, to the cent), and
independent checks of the same and more — statuses and recipients as modelled; at most one
holding recipient per (limited template, sub-account); coupons exist iff their request is
issued, exactly one per recipient, with the template's amount and validity; budget consumed
= issued platform-borne totals, reserved = open platform-borne totals, consumed ≤ amount;
released counters; balances and voided amounts within 0…amount; every deduction > 0, within
its line, inside its coupon's validity, products, minimum and discount cap, one per
(coupon, line); a line's deductions sum to its deduction amount, a coupon's to amount −
balance − voided; statuses agree with balances; bills and unbilled usage as modelled; and
posting is complete: on an account with no posting outstanding, no available coupon could
still pay a line of a posted bill of an open month.

How it runs:
- One pytest test on the test database. The world (partner with a BD and a platform
  budget, 5 customers, 2 tier-2 accounts, a EUR account, another partner's account, 36
  templates) is made once; each example runs in a savepoint its teardown rolls back, so
  every example starts from that world. An initialize step issues up to 3 requests.
- `transaction.on_commit` callbacks never run inside the test's transaction, so the rules
  do their work themselves: the release after an approval (`issuance_request_release`,
  now or in a later release/sweeper step), the posting of a day's bills
  (`bills_enqueue_posting`, Celery being eager in the tests, or later
  `bill_post_deductions`/`daily_bills_post_pending`), and the posting of the accounts of
  released coupons (`accounts_enqueue_posting`, or later `account_post_outstanding`).
- Time is simulated: `django.utils.timezone.now` is patched for the whole test to noon of
  the machine's "today" (so `timezone.localdate()`, which submit and release read for a
  template's window and release for relative validity, follows it; fixed-window templates
  are dated around the start), and services that take a date get it explicitly:
  `daily_bills_make(bill_date=)`, `coupons_expire(today=)`, `month_close(month=, today=)`.
- A check is re-run only when what it reads may have changed: the database's per-transaction
  write counters for its tables (or the model) moved since it last passed. Set
  MODEL_LEDGER_ALWAYS=1 to re-run every check after every step regardless.

Examples: 120 of 50 steps when CI is set (four shards of 30, which keeps the suite inside
its 15 minutes), 20 otherwise; MODEL_EXAMPLES and MODEL_STEPS override. `pytest -s`
prints what the run did (which paths, how often).
"""
import io
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, note, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.models import PlatformBudget
from accounts.services import (
    partner_coupon_settings_update,
    platform_budget_set,
)
from approvals.models import Approval
from approvals.release import issuance_request_release, release_sweep
from approvals.services import (
    approval_approve,
    approval_reject,
    issuance_request_cancel,
    issuance_request_retry,
    issuance_request_withdraw,
)
from audit.models import AuditLog
from billing.coupon_status import coupon_void, coupons_expire
from billing.daily_bills import daily_bills_make
from billing.ledger import ledger_check
from billing.models import (
    ClosedMonth,
    DailyBill,
    DailyBillLine,
    Deduction,
    MonthlyBill,
    MonthlyBillLine,
    MonthlyCouponDeduction,
    UsageImport,
    UsageRecord,
)
from billing.month_close import month_close
from billing.periods import month_end, month_start
from billing.posting import (
    account_post_outstanding,
    accounts_enqueue_posting,
    accounts_post_outstanding,
    bill_post_deductions,
    bills_enqueue_posting,
    bills_post,
)
from billing.sweeps import daily_bills_post_pending
from billing.usage_import import usage_import
from couponplatform.exceptions import ApplicationError, InvalidTransitionError
from couponplatform.money import ZERO, quantize
from coupons.models import Coupon, CouponTemplate, IssuanceRecipient, IssuanceRequest
from coupons.services import (
    coupon_template_create,
    coupon_template_disable,
    issuance_request_submit,
)
from tests import factories as f

IN_CI = bool(os.environ.get("CI"))
EXAMPLES = int(os.environ.get("MODEL_EXAMPLES") or (120 if IN_CI else 20))
STEPS = int(os.environ.get("MODEL_STEPS") or 50)
SHARDS = int(os.environ.get("MODEL_SHARDS") or (4 if IN_CI else 1))

# The machine's first "today" in every example. February is just behind it (closable at
# once), and the fixed windows below open and end within a run's reach.
START = date(2025, 3, 10)
BUDGET = Decimal("500.00")
CURRENCY = "USD"
PRODUCTS = ("mdl-cpu", "mdl-net")
USAGE_AMOUNTS = ("0.00", "0.01", "4.99", "12.50", "20.00", "37.13", "90.00")

S = IssuanceRequest.Status
OPEN = {S.PENDING, S.APPROVED, S.FAILED}
HOLDING = OPEN | {S.ISSUED}
# action → (the one status it starts from, the status it leaves)
MOVES = {
    "approve": (S.PENDING, S.APPROVED),
    "reject": (S.PENDING, S.REJECTED),
    "cancel": (S.PENDING, S.CANCELLED),
    "retry": (S.FAILED, S.APPROVED),
    "withdraw": (S.FAILED, S.WITHDRAWN),
}

KINDS = ("cash", "threshold", "discount")
BEARERS = ("platform", "partner")
LIMITS = ("one", "unlimited")
# days7: 7 days from release. window: a fixed window around START for one product, whose
# end the run passes. later: a fixed window opening after START, with a release cap.
VALIDITIES = ("days7", "window", "later")
TEMPLATE_KEYS = [
    (kind, bearer, limit, validity)
    for kind in KINDS for bearer in BEARERS for limit in LIMITS for validity in VALIDITIES
]
KIND_TERMS = {
    "cash": dict(face_value=Decimal("40.00")),
    "threshold": dict(face_value=Decimal("25.00"), min_bill_amount=Decimal("15.00")),
    "discount": dict(face_value=Decimal("8.00"), discount_rate=Decimal("30"), discount_uses=3),
}
# What a submit may add to its customers: tier-2 accounts (refused when platform-borne),
# an account in another currency, another partner's account, an unknown ID, an ID twice,
# or nothing at all; most submits add nothing.
EXTRAS = ("t2a", "t2b", "eur", "foreign", "unknown", "dup", "none")

PICK = st.integers(min_value=0, max_value=31)
# Release right after approval (what the on-commit callback does), mostly.
MOSTLY = st.sampled_from([True, True, False])
# How many days back from today usage and bills land: mostly recent, sometimes weeks.
BACK = st.sampled_from([0, 0, 1, 1, 2, 3, 5, 8, 12, 20])

# What the runs did, printed at the end (pytest -s) to show the machine reaches the paths.
STATS: Counter = Counter()


def event(what: str) -> None:
    STATS[what] += 1
    hypothesis_event(what)


# ---------------------------------------------------------------------------------------
# Simulated time


class Clock:
    """Noon of `today` in the platform's time zone, a microsecond later at each call."""

    def __init__(self):
        self.today = START
        self._tick = 0

    def now(self) -> datetime:
        self._tick += 1
        moment = datetime.combine(self.today, time(12), tzinfo=ZoneInfo(django_settings.TIME_ZONE))
        return (moment + timedelta(microseconds=self._tick)).astimezone(UTC)


CLOCK = Clock()


# ---------------------------------------------------------------------------------------
# The world every example starts from


@dataclass
class TemplateSpec:
    key: tuple
    pk: int
    kind: str
    platform: bool
    limited: bool
    unit: Decimal
    valid_days: int | None
    valid_from: date | None
    valid_until: date | None
    products: tuple[str, ...] | None  # None: all products
    cap_count: int | None
    obj: CouponTemplate  # as created; the services re-read it under their locks


@dataclass
class World:
    partner: object
    admin: object
    bd: object
    budget_pk: int
    customers: list
    t2a: object
    t2b: object
    eur: object
    foreign: object
    products: dict
    templates: dict = field(default_factory=dict)

    @property
    def usage_accounts(self) -> list:
        return [*self.customers, self.t2a, self.t2b, self.eur, self.foreign]


def build_world() -> World:
    # Partner-borne requests are auto-approved until a step turns BD approval on.
    shop = f.make_shop(5, prefix="MDL-C", name="Model Dist", bd=f.make_bd("model-bd"),
                       budget=BUDGET, currency=CURRENCY, requires_bd_approval=False,
                       admin="model-admin", template=False)
    partner, admin, bd, customers = shop.partner, shop.admin, shop.bd, shop.accounts
    _, t2a = f.make_tier2(partner)
    _, t2b = f.make_tier2(partner)
    [eur] = f.make_accounts(partner, 1, prefix="MDL-E", currency="EUR")
    foreign_partner = f.make_partner(name="Model Foreign")
    [foreign] = f.make_accounts(foreign_partner, 1, prefix="MDL-F")
    products = {code: f.make_product(code) for code in PRODUCTS}
    world = World(
        partner=partner, admin=admin, bd=bd,
        budget_pk=PlatformBudget.objects.get(partner=partner, currency=CURRENCY).pk,
        customers=customers, t2a=t2a, t2b=t2b, eur=eur, foreign=foreign, products=products,
    )
    for key in TEMPLATE_KEYS:
        kind, bearer, limit, validity = key
        terms = dict(KIND_TERMS[kind])
        scope = None
        cap = None
        if validity == "days7":
            terms.update(validity_type="relative", valid_days=7)
        elif validity == "window":
            terms.update(validity_type="fixed", valid_from=START - timedelta(days=5),
                         valid_until=START + timedelta(days=12),
                         all_products=False, products=[products["mdl-cpu"]])
            scope = ("mdl-cpu",)
        else:
            cap = 4
            terms.update(validity_type="fixed", valid_from=START + timedelta(days=4),
                         valid_until=START + timedelta(days=40), release_cap_count=cap)
        template = coupon_template_create(
            partner=partner, acting_user=admin, name=f"model {'/'.join(key)}", currency=CURRENCY,
            kind=kind, cost_bearer=bearer, issue_limit=limit, **terms,
        )
        world.templates[key] = TemplateSpec(
            key=key, pk=template.pk, kind=kind, platform=bearer == "platform",
            limited=limit == "one", unit=template.unit_value, valid_days=template.valid_days,
            valid_from=template.valid_from, valid_until=template.valid_until, products=scope,
            cap_count=cap, obj=template,
        )
    return world


# ---------------------------------------------------------------------------------------
# The model


@dataclass
class Req:
    pk: int
    key: tuple
    accounts: tuple[int, ...]  # sub-account pks
    total: Decimal
    status: str
    released_on: date | None = None


def _pick(items, index: int):
    items = sorted(items)
    return items[index % len(items)]


def _discount_take(original: Decimal, rate: Decimal, cap: Decimal) -> Decimal:
    return min(quantize(original * rate / Decimal("100")), cap)


SNAPSHOT_MODELS = (
    IssuanceRequest, IssuanceRecipient, Coupon, Approval, AuditLog, UsageImport, UsageRecord,
    DailyBill, DailyBillLine, Deduction, MonthlyBill, ClosedMonth, CouponTemplate,
)


def db_snapshot() -> tuple:
    """Row counts and money sums in one round trip: what a refusal must leave unchanged."""
    qn = connection.ops.quote_name
    coupon, line, budget, bill = (qn(m._meta.db_table) for m in (
        Coupon, DailyBillLine, PlatformBudget, DailyBill))
    parts = [f"(SELECT COUNT(*) FROM {qn(m._meta.db_table)})" for m in SNAPSHOT_MODELS]
    parts += [
        f"(SELECT SUM(balance) FROM {coupon})",
        f"(SELECT SUM(voided_amount) FROM {coupon})",
        f"(SELECT COUNT(*) FROM {coupon} WHERE status = 'available')",
        f"(SELECT SUM(deduction_amount) FROM {line})",
        f"(SELECT COUNT(*) FROM {bill} WHERE posted_at IS NULL)",
        f"(SELECT SUM(amount) FROM {budget})", f"(SELECT SUM(reserved) FROM {budget})",
        f"(SELECT SUM(consumed) FROM {budget})",
        f"(SELECT COUNT(*) FROM {qn(CouponTemplate._meta.db_table)} WHERE status = 'active')",
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts))
        return tuple(cursor.fetchone())


COUPON_COLUMNS = (
    "pk", "request_id", "recipient_id", "sub_account_id", "template_id", "kind", "currency",
    "amount", "balance", "voided_amount", "status", "valid_from", "valid_until",
    "all_products", "product_codes", "min_bill_amount", "discount_rate", "uses_total",
    "uses_left",
)
# The tables ledger_check reads, and those the issuing checks read.
LEDGER_MODELS = (
    Coupon, Deduction, DailyBillLine, DailyBill, UsageRecord, ClosedMonth, MonthlyBill,
    MonthlyBillLine, MonthlyCouponDeduction,
)
ISSUING_MODELS = (IssuanceRequest, IssuanceRecipient, Coupon, CouponTemplate, PlatformBudget)
# MODEL_LEDGER_ALWAYS=1 re-runs every check after every step, changed or not.
ALWAYS = bool(os.environ.get("MODEL_LEDGER_ALWAYS"))


def write_counters() -> tuple[int, int]:
    """How many rows this transaction has inserted, updated or deleted so far in the ledger
    tables and in the issuing tables. The counters only grow (a rolled-back write still
    counts), so an unchanged counter means unchanged tables.

    PostgreSQL keeps them per table in pg_stat_xact_user_tables; SQLite has one counter
    for the connection, total_changes(), used for both.
    """
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute("SELECT total_changes()")
            n = cursor.fetchone()[0]
            return n, n
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables "
            "WHERE schemaname = current_schema() AND relname = ANY(%s)",
            [sorted({m._meta.db_table for m in LEDGER_MODELS + ISSUING_MODELS})],
        )
        counts = dict(cursor.fetchall())
    ledger = sum(counts.get(m._meta.db_table, 0) for m in LEDGER_MODELS)
    issuing = sum(counts.get(m._meta.db_table, 0) for m in ISSUING_MODELS)
    return ledger, issuing


class MoneyMachine(RuleBasedStateMachine):
    world: World  # set by the test before the run

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        CLOCK.today = START
        self.requests: dict[int, Req] = {}
        self.disabled: set[tuple] = set()
        self.budget_amount = BUDGET
        self.requires_bd = False
        self.unbilled: set[tuple[int, date]] = set()  # (account pk, day) with unbilled usage
        self.bills: dict[tuple[int, date], int] = {}  # (account pk, day) → bill pk
        self.pending: set[int] = set()  # bills made but not posted yet
        self.dirty: set[int] = set()  # accounts whose coupons arrived after their last posting
        self.imported: list[str] = []  # CSV texts imported
        self.closed: set[date] = set()
        self.voided: set[int] = set()
        self.expired: dict[int, Decimal] = {}  # coupon → its balance when it expired
        self._ledger_mark = self._issuing_mark = self._money_mark = None

    def teardown(self):
        try:
            STATS[f"examples ending with issued requests: "
                  f"{min(len(self._statuses(S.ISSUED)), 3)}"] += 1
            STATS[f"examples ending with deductions: {Deduction.objects.exists()}"] += 1
        except DatabaseError:
            pass  # the step that failed left the transaction broken; its error is reported
        finally:
            transaction.set_rollback(True)
            self._atomic.__exit__(None, None, None)

    # -- helpers --------------------------------------------------------------------------

    @property
    def today(self) -> date:
        return CLOCK.today

    def _statuses(self, *statuses) -> list[int]:
        return [pk for pk, r in self.requests.items() if r.status in statuses]

    def _spec(self, req: Req) -> TemplateSpec:
        return self.world.templates[req.key]

    def _held(self, key: tuple) -> set[int]:
        return {
            account for r in self.requests.values()
            if r.key == key and r.status in HOLDING for account in r.accounts
        }

    def _committed(self, key: tuple) -> int:
        return sum(len(r.accounts) for r in self.requests.values()
                   if r.key == key and r.status in HOLDING)

    def _released(self, key: tuple) -> int:
        return sum(len(r.accounts) for r in self.requests.values()
                   if r.key == key and r.status == S.ISSUED)

    def _platform_sum(self, statuses) -> Decimal:
        return sum((r.total for r in self.requests.values()
                    if self._spec(r).platform and r.status in statuses), ZERO)

    def _window_ended(self, spec: TemplateSpec) -> bool:
        return spec.valid_until is not None and spec.valid_until < self.today

    def _refused(self, call, exc=ApplicationError, why: str = ""):
        before = db_snapshot()
        with pytest.raises(exc):
            call()
        assert db_snapshot() == before, f"a refused call wrote something ({why})"

    def _last_month(self) -> date:
        return month_start(month_start(self.today) - timedelta(days=1))

    def _posted(self, account_pk: int) -> None:
        """account_post_outstanding ran for the account: every bill posted, nothing owed
        that its coupons could pay."""
        self.dirty.discard(account_pk)
        self.pending -= {pk for (acct, _), pk in self.bills.items() if acct == account_pk}

    # -- issuing --------------------------------------------------------------------------

    @initialize(seed=st.lists(
        st.tuples(st.sampled_from(TEMPLATE_KEYS),
                  st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True)),
        max_size=3,
    ))
    def some_coupons_first(self, seed):
        """Each example starts with up to three requests submitted, approved and released,
        so that its 50 steps have coupons to bill, void, expire and hold."""
        for key, picks in seed:
            pk = self._submit(key, picks, None, release_now=True, post_now=False)
            if pk is not None and self.requests[pk].status == S.PENDING:
                self._move("approve", pk, release_now=True)

    @rule(
        key=st.sampled_from(TEMPLATE_KEYS),
        picks=st.lists(st.integers(0, 4), min_size=1, max_size=5, unique=True),
        extra=st.sampled_from([None] * 8 + list(EXTRAS)),
        release_now=MOSTLY, post_now=st.booleans(),
    )
    def submit(self, key, picks, extra, release_now, post_now):
        self._submit(key, picks, extra, release_now, post_now)

    @rule(
        key=st.sampled_from([k for k in TEMPLATE_KEYS if k[1] == "platform"]),
        picks=st.lists(st.integers(0, 4), min_size=1, max_size=5, unique=True),
        extra=st.sampled_from([None] * 8 + list(EXTRAS)),
        release_now=MOSTLY, post_now=st.booleans(),
    )
    def submit_platform_borne(self, key, picks, extra, release_now, post_now):
        """Platform-borne only: its budget and its tier-2 rule get their share of runs."""
        self._submit(key, picks, extra, release_now, post_now)

    def _submit(self, key, picks, extra, release_now, post_now):
        w = self.world
        if extra == "none":
            picks = []
        extras = [extra] if extra and extra != "none" else []
        spec = w.templates[key]
        accounts = [w.customers[i] for i in picks]
        ids = [a.account_id for a in accounts]
        named = {"t2a": w.t2a, "t2b": w.t2b, "eur": w.eur, "foreign": w.foreign}
        problems = []
        for extra in extras:
            if extra in named:
                account = named[extra]
                ids.append(account.account_id)
                if extra == "foreign":
                    problems.append("not the partner's")
                    continue
                accounts.append(account)
                if extra == "eur":
                    problems.append("currency")
                if extra.startswith("t2") and spec.platform:
                    problems.append("tier-2")
            elif extra == "unknown":
                ids.append("NO-SUCH-ACCOUNT")
                problems.append("unknown")
            elif extra == "dup" and ids:
                ids.append(ids[0])
                problems.append("duplicate")
        count = len(accounts)
        total = spec.unit * count
        if not ids:
            problems.append("empty")
        if key in self.disabled:
            problems.append("disabled")
        if self._window_ended(spec):
            problems.append("window ended")
        if spec.limited and self._held(key) & {a.pk for a in accounts}:
            problems.append("holding")
        if spec.platform:
            consumed = self._platform_sum({S.ISSUED})
            reserved = self._platform_sum(OPEN)
            if total > max(self.budget_amount - reserved - consumed, ZERO):
                problems.append("budget")
        if spec.cap_count is not None and self._committed(key) + count > spec.cap_count:
            problems.append("release cap")
        call = lambda: issuance_request_submit(  # noqa: E731
            template=spec.obj, acting_user=w.admin, account_ids=ids,
        )
        note(f"submit {key} {ids} today={self.today} expect problems={problems}")
        if problems:
            event(f"submit refused: {problems[0]}")
            self._refused(call, why=", ".join(problems))
            return
        request = call()
        event("submit accepted")
        route_bd = spec.platform or self.requires_bd
        expected = S.PENDING if route_bd else S.APPROVED
        assert request.status == expected, (request.status, expected)
        assert request.total_amount == total and request.recipient_count == count
        self.requests[request.pk] = Req(
            pk=request.pk, key=key, accounts=tuple(a.pk for a in accounts), total=total,
            status=expected,
        )
        note(f"  → request #{request.pk} {expected}")
        if expected == S.APPROVED and release_now:
            self._release(request.pk, post_now)
        return request.pk

    def _move(self, action: str, pk: int, release_now=False, post_now=False):
        req = self.requests[pk]
        start, end = MOVES[action]
        w = self.world
        calls = {
            "approve": lambda: approval_approve(request_id=pk, acting_user=w.bd),
            "reject": lambda: approval_reject(request_id=pk, acting_user=w.bd,
                                              reason="The model says no."),
            "cancel": lambda: issuance_request_cancel(request_id=pk, acting_user=w.admin),
            "retry": lambda: issuance_request_retry(request_id=pk, acting_user=w.admin),
            "withdraw": lambda: issuance_request_withdraw(request_id=pk, acting_user=w.admin),
        }
        note(f"{action} #{pk} ({req.status})")
        event(f"{action} {'done' if req.status == start else 'refused'}")
        if req.status != start:
            self._refused(calls[action], InvalidTransitionError, f"{action} from {req.status}")
            return
        request = calls[action]()
        assert request.status == end
        req.status = end
        if end == S.APPROVED and release_now:
            self._release(pk, post_now)

    def _release(self, pk: int, post_now: bool):
        req = self.requests[pk]
        note(f"release #{pk} ({req.status}) today={self.today}")
        if req.status != S.APPROVED:
            event(f"release of a {req.status} request: nothing moves")
            # A redelivery, or a release of a request that is not approved: nothing moves.
            before = db_snapshot()
            request = issuance_request_release(request_id=pk)
            assert request.status == req.status
            assert db_snapshot() == before, "a release of a non-approved request wrote"
            return
        expected = self._release_outcome(req)
        request = issuance_request_release(request_id=pk)
        assert request.status == expected, (request.status, expected, request.reason)
        self._released_as(req, expected, post_now)

    def _release_outcome(self, req: Req) -> str:
        """Issued, or failed when a rule that held at submit no longer holds (PRODUCT §5)."""
        spec = self._spec(req)
        fails = (
            req.key in self.disabled
            or self._window_ended(spec)
            or (spec.cap_count is not None
                and self._released(req.key) + len(req.accounts) > spec.cap_count)
            or (spec.platform
                and self._platform_sum({S.ISSUED}) + req.total > self.budget_amount)
        )
        return S.FAILED if fails else S.ISSUED

    def _released_as(self, req: Req, status: str, post_now: bool):
        req.status = status
        event(f"release → {status}")
        if status == S.FAILED:
            return
        req.released_on = self.today
        # What the coupons_released signal does after commit: post the accounts' bills.
        if post_now:
            # The coupons_released receiver's on-commit callback, run here: one posting task
            # per account (Celery is eager in the tests).
            accounts_enqueue_posting(sub_account_ids=sorted(set(req.accounts)))
            for account in req.accounts:
                self._posted(account)
        else:
            self.dirty.update(req.accounts)

    @precondition(lambda self: self._statuses(S.PENDING))
    @rule(pick=PICK, release_now=MOSTLY, post_now=st.booleans())
    def approve(self, pick, release_now, post_now):
        self._move("approve", _pick(self._statuses(S.PENDING), pick), release_now, post_now)

    @precondition(lambda self: self._statuses(S.PENDING))
    @rule(pick=PICK)
    def reject(self, pick):
        self._move("reject", _pick(self._statuses(S.PENDING), pick))

    @precondition(lambda self: self._statuses(S.PENDING))
    @rule(pick=PICK)
    def cancel(self, pick):
        self._move("cancel", _pick(self._statuses(S.PENDING), pick))

    @precondition(lambda self: self._statuses(S.FAILED))
    @rule(pick=PICK, release_now=MOSTLY, post_now=st.booleans())
    def retry(self, pick, release_now, post_now):
        self._move("retry", _pick(self._statuses(S.FAILED), pick), release_now, post_now)

    @precondition(lambda self: self._statuses(S.FAILED))
    @rule(pick=PICK)
    def withdraw(self, pick):
        self._move("withdraw", _pick(self._statuses(S.FAILED), pick))

    @precondition(lambda self: self.requests)
    @rule(pick=PICK, action=st.sampled_from(sorted(MOVES)))
    def any_move(self, pick, action):
        """Any action on any request: refused unless the status allows it."""
        self._move(action, _pick(self.requests, pick))

    @precondition(lambda self: self._statuses(S.APPROVED))
    @rule(pick=PICK, post_now=st.booleans(), twice=st.booleans())
    def release(self, pick, post_now, twice):
        pk = _pick(self._statuses(S.APPROVED), pick)
        self._release(pk, post_now)
        if twice:  # the task delivered again
            self._release(pk, post_now)

    @precondition(lambda self: self.requests)
    @rule(pick=PICK)
    def release_again(self, pick):
        """A redelivered release task, of any request."""
        self._release(_pick(self.requests, pick), post_now=False)

    @precondition(lambda self: self._statuses(S.APPROVED))
    @rule()
    def sweep_releases(self):
        """The sweeper (release_sweep) releases every approved request whose release was
        lost, in request order; each one's outcome depends on those before it."""
        approved = sorted(self._statuses(S.APPROVED))
        note(f"release_sweep: {approved}")
        outcomes = {}
        # Predicted one by one, in the sweeper's order, before it runs.
        statuses = {pk: r.status for pk, r in self.requests.items()}
        for pk in approved:
            outcomes[pk] = self._release_outcome(self.requests[pk])
            self.requests[pk].status = outcomes[pk]
        for pk, status in statuses.items():
            self.requests[pk].status = status
        assert release_sweep(older_than_seconds=0) == approved
        for pk in approved:
            self._released_as(self.requests[pk], outcomes[pk], post_now=False)

    @rule(pick=st.one_of(PICK, st.sampled_from(TEMPLATE_KEYS)))
    def disable_template(self, pick):
        """Disable the template of an open request (its release then fails), or any."""
        if isinstance(pick, int):
            open_requests = self._statuses(*OPEN)
            if not open_requests:
                return
            key = self.requests[_pick(open_requests, pick)].key
        else:
            key = pick
        spec = self.world.templates[key]
        call = lambda: coupon_template_disable(  # noqa: E731
            template=spec.obj, acting_user=self.world.admin,
        )
        note(f"disable {key}")
        event(f"disable template: {'refused' if key in self.disabled else 'done'}")
        if key in self.disabled:
            self._refused(call, why="already disabled")
            return
        call()
        self.disabled.add(key)

    @rule(change=st.sampled_from(
        ["squeeze", "raise", "consumed", "zero", "below_consumed", "toggle approval"]))
    def settings_changed_by_bd(self, change):
        """The BD turns the partner's BD approval on or off, or sets the platform budget:
        below what was released (refused), to exactly that, to squeeze the open requests
        (their releases then fail), to zero, or higher."""
        if change == "toggle approval":
            self.requires_bd = not self.requires_bd
            event("toggle BD approval")
            partner_coupon_settings_update(
                partner=self.world.partner, acting_user=self.world.bd, coupon_enabled=True,
                requires_bd_approval=self.requires_bd,
            )
            return
        consumed = self._platform_sum({S.ISSUED})
        reserved = self._platform_sum(OPEN)
        amount = {
            "below_consumed": consumed - Decimal("0.01"),
            "consumed": consumed,
            "squeeze": consumed + (reserved / 2).quantize(Decimal("0.01")),
            "zero": ZERO,
            "raise": self.budget_amount + Decimal("200.00"),
        }[change]
        call = lambda: platform_budget_set(  # noqa: E731
            partner=self.world.partner, acting_user=self.world.bd, currency=CURRENCY,
            amount=amount,
        )
        note(f"budget → {amount} ({change}; consumed {consumed}, reserved {reserved})")
        event(f"budget {change}: {'refused' if amount < consumed else 'set'}")
        if amount < consumed:
            self._refused(call, why="below what was released")
            return
        budget = call()
        assert budget.amount == amount
        self.budget_amount = amount

    # -- billing --------------------------------------------------------------------------

    @rule(
        back=BACK,
        rows=st.lists(
            st.tuples(st.integers(0, 8), st.sampled_from(PRODUCTS),
                      st.sampled_from(USAGE_AMOUNTS)),
            min_size=1, max_size=5,
        ),
        replay=st.sampled_from([None, None, None, None, None, 0]),
        then=st.sampled_from([None, "bill", "bill eagerly"]),
    )
    def import_usage(self, back, rows, replay, then):
        """A small CSV of usage for one day (now and then a file imported before, again);
        `then` makes that day's bills in the same step."""
        accounts = self.world.usage_accounts
        day = self.today - timedelta(days=back)
        if replay is not None and self.imported:
            self._import(None, [], again=self.imported[replay % len(self.imported)])
        elif self._import(day, [(accounts[i], p, a) for i, p, a in rows]) and then:
            self._make_bills(day, eager=then == "bill eagerly")

    @precondition(lambda self: self._statuses(S.ISSUED))
    @rule(plan=st.tuples(PICK, st.integers(0, 6), st.sampled_from(USAGE_AMOUNTS[3:]),
                         st.booleans()))
    def bill_a_coupon_day(self, plan):
        """Usage of an available coupon's account on a day inside its validity, for a
        product it covers, then that day's bills (posted at once, or left for a posting
        step): so that within 50 steps coupons meet bills often. plan = (which coupon,
        days back from the end of its window or today, amount, eager)."""
        pick, back, amount, eager = plan
        coupons = self._available_coupons()
        if not coupons:
            event("coupon day: no coupon available")
            return
        _, account_pk, start, end, codes = _pick(coupons, pick)
        last = min(end, self.today)
        if last < start:
            event("coupon day: its window has not opened")
            return
        day = max(start, last - timedelta(days=back))
        account = next(a for a in self.world.usage_accounts if a.pk == account_pk)
        product = codes[0] if codes else PRODUCTS[pick % len(PRODUCTS)]
        if self._import(day, [(account, product, amount)]):
            self._make_bills(day, eager)

    def _available_coupons(self) -> list[tuple]:
        return list(Coupon.objects.filter(status=Coupon.Status.AVAILABLE).values_list(
            "pk", "sub_account_id", "valid_from", "valid_until", "product_codes"))

    def _import(self, day, rows, again: str | None = None) -> bool:
        if again is not None:
            text, problems, pairs = again, ["imported already"], set()
        else:
            lines = ["account_id,date,product_code,amount"]
            lines += [f"{a.account_id},{day:%Y-%m-%d},{p},{amount}" for a, p, amount in rows]
            text = "\n".join(lines) + "\n"
            pairs = {(a.pk, day) for a, _, _ in rows}
            problems = []
            if text in self.imported:
                problems.append("imported already")
            if month_start(day) in self.closed:
                problems.append("month closed")
            if pairs & self.bills.keys():
                problems.append("day billed")
        call = lambda: usage_import(  # noqa: E731
            file=io.BytesIO(text.encode()), file_name="model.csv",
        )
        note(f"import {text!r}, expect problems={problems}")
        if problems:
            event(f"usage refused: {problems[0]}")
            self._refused(call, why=", ".join(problems))
            return False
        batch = call()
        event("usage imported")
        assert batch.record_count == len(rows)
        self.imported.append(text)
        self.unbilled |= pairs
        return True

    @rule(back=BACK, pick=st.one_of(PICK, st.none()), eager=st.booleans())
    def make_bills(self, back, pick, eager):
        """The day's bills: of a day with unbilled usage (pick), or of any recent day."""
        day = self.today - timedelta(days=back)
        if pick is not None and self.unbilled:
            day = _pick({d for _, d in self.unbilled}, pick)
        self._make_bills(day, eager)

    def _make_bills(self, day: date, eager: bool):
        call = lambda: daily_bills_make(bill_date=day, enqueue_posting=eager)  # noqa: E731
        note(f"bills of {day} eager={eager}")
        if month_start(day) in self.closed:
            self._refused(call, why="month closed")
            return
        due = {acct for acct, d in self.unbilled if d == day}
        result = call()
        made = dict(DailyBill.objects.filter(pk__in=result.bill_ids)
                    .values_list("sub_account_id", "pk"))
        assert set(made) == due, f"bills made for {sorted(made)}, usage of {sorted(due)}"
        assert len(result.bill_ids) == len(due)
        for acct, pk in made.items():
            assert (acct, day) not in self.bills, "a second bill for one account and day"
            self.bills[(acct, day)] = pk
            self.unbilled.discard((acct, day))
        event(f"bills made: {min(len(made), 3)}")
        if eager:
            # daily_bills_make's on-commit callback, run here: one posting task per bill
            # (Celery is eager in the tests).
            bills_enqueue_posting(bill_ids=sorted(made.values()))
        else:
            self.pending.update(made.values())

    @precondition(lambda self: self.pending)
    @rule(pick=PICK)
    def post_bill(self, pick):
        pk = _pick(self.pending, pick)
        note(f"post bill #{pk}")
        event(f"posting deducted: {bill_post_deductions(bill_id=pk).deductions > 0}")
        self.pending.discard(pk)

    @precondition(lambda self: self.pending)
    @rule()
    def posting_sweeper(self):
        """daily_bills_post_pending: every bill whose posting task was lost is posted again
        through the task."""
        assert daily_bills_post_pending(older_than=timedelta(0)) == len(self.pending)
        self.pending.clear()

    @precondition(lambda self: self.bills)
    @rule(pick=PICK)
    def post_bill_again(self, pick):
        """A posting task delivered again (or late), for any bill."""
        pk = _pick(self.bills.values(), pick)
        account = next(acct for (acct, _), b in self.bills.items() if b == pk)
        settled = pk not in self.pending and account not in self.dirty
        note(f"post bill #{pk} again (settled={settled})")
        result = bill_post_deductions(bill_id=pk)
        event(f"posting again: settled={settled} deducted={result.deductions > 0}")
        self.pending.discard(pk)
        if settled:
            assert result.deductions == 0, "a redelivered posting deducted again"

    @rule(index=st.integers(0, 8))
    def post_outstanding(self, index):
        account = self.world.usage_accounts[index].pk
        settled = account not in self.dirty and not any(
            self.bills[k] in self.pending for k in self.bills if k[0] == account
        )
        note(f"post outstanding of account #{account} (settled={settled})")
        result = account_post_outstanding(sub_account_id=account)
        self._posted(account)
        event(f"outstanding posting deducted: {result.deductions > 0}")
        if settled:
            assert result.deductions == 0, "posting a settled account deducted again"

    @precondition(lambda self: len(self.pending) > 1)
    @rule(picks=st.lists(PICK, min_size=2, max_size=6))
    def post_bills_in_one_batch(self, picks):
        """One batch task over several bills, of one or several accounts, as the bill run
        publishes them."""
        chosen = sorted({_pick(self.pending, pick) for pick in picks})
        note(f"post bills {chosen} in one batch")
        result = bills_post(bill_ids=chosen)
        event(f"batch posting: {len(chosen)} bills, deducted={result.deductions > 0}")
        self.pending.difference_update(chosen)

    @rule(indexes=st.lists(st.integers(0, 8), min_size=2, max_size=5, unique=True))
    def post_outstanding_in_one_batch(self, indexes):
        """One batch task posting several accounts' outstanding bills (released coupons)."""
        accounts = [self.world.usage_accounts[i].pk for i in indexes]
        settled = not any(
            account in self.dirty
            or any(self.bills[k] in self.pending for k in self.bills if k[0] == account)
            for account in accounts
        )
        note(f"post outstanding of accounts {accounts} in one batch (settled={settled})")
        result = accounts_post_outstanding(sub_account_ids=accounts)
        for account in accounts:
            self._posted(account)
        event(f"batch outstanding posting deducted: {result.deductions > 0}")
        if settled:
            assert result.deductions == 0, "posting settled accounts deducted again"

    # -- coupon statuses and time ----------------------------------------------------------

    @precondition(lambda self: self._statuses(S.ISSUED))
    @rule(pick=PICK)
    def void(self, pick):
        coupons = list(Coupon.objects.order_by("pk").values_list("pk", "status"))
        if not coupons:
            event("void: no coupons yet")
            return
        pk, status = coupons[pick % len(coupons)]
        call = lambda: coupon_void(  # noqa: E731
            coupon=Coupon.objects.get(pk=pk), acting_user=self.world.admin,
            reason="Withdrawn by the model.",
        )
        note(f"void coupon #{pk} ({status})")
        if status != Coupon.Status.AVAILABLE:
            event(f"void refused: {status}")
            self._refused(call, InvalidTransitionError, f"void a {status} coupon")
            return
        call()
        event("coupon voided")
        self.voided.add(pk)

    @rule(days=st.integers(0, 10), expire=st.booleans())
    def time_passes(self, days, expire):
        """`days` pass (0: the same day); then, if `expire`, the expiry job runs for today."""
        CLOCK.today = self.today + timedelta(days=days)
        note(f"today → {self.today}")
        if expire:
            self._expire()

    def _expire(self):
        unposted = defaultdict(list)
        for account, day in DailyBill.objects.filter(posted_at__isnull=True).values_list(
            "sub_account_id", "date",
        ):
            unposted[account].append(day)
        due = set()
        waiting = set()
        for pk, account, start, end in Coupon.objects.filter(
            status=Coupon.Status.AVAILABLE, valid_until__lt=self.today,
        ).values_list("pk", "sub_account_id", "valid_from", "valid_until"):
            if any(start <= day <= end for day in unposted[account]):
                waiting.add(pk)
            else:
                due.add(pk)
        expired = coupons_expire(today=self.today)
        note(f"expire on {self.today}: {expired}")
        assert expired == len(due), (
            f"coupons_expire expired {expired} coupons; due {sorted(due)}, waiting for an "
            f"unposted bill {sorted(waiting)}"
        )
        event(f"expired {min(expired, 2)}, waiting {min(len(waiting), 1)}")
        now_expired = set(Coupon.objects.filter(pk__in=due | waiting, status="expired")
                          .values_list("pk", flat=True))
        assert now_expired == due, "expiry took the wrong coupons"
        self.expired.update(Coupon.objects.filter(pk__in=due).values_list("pk", "balance"))

    @precondition(lambda self: self._last_month() not in self.closed)
    @rule(back=st.sampled_from([1, 0, 2]))
    def close_month(self, back):
        """Close last month (0: this month, not ended; 2: the one before). Enabled until
        last month is closed."""
        first = month_start(self.today)
        for _ in range(back):
            first = month_start(first - timedelta(days=1))
        last = month_end(first)
        call = lambda: month_close(month=first, today=self.today)  # noqa: E731
        problems = []
        if last >= self.today:
            problems.append("not ended")
        elif first not in self.closed:
            if any(first <= d <= last for _, d in self.unbilled):
                problems.append("unbilled usage")
            if any(first <= d <= last and pk in self.pending
                   for (_, d), pk in self.bills.items()):
                problems.append("unposted bills")
        note(f"close {first:%Y-%m} on {self.today}, expect problems={problems}")
        event(f"close month: {problems[0] if problems else 'closed'}")
        if problems:
            self._refused(call, why=", ".join(problems))
            return
        result = month_close(month=first, today=self.today)
        accounts = {acct for acct, d in self.bills if first <= d <= last}
        assert result.already_closed == (first in self.closed)
        assert result.bill_count == len(accounts)
        self.closed.add(first)

    # -- the invariants ---------------------------------------------------------------------

    @invariant()
    def invariants_hold(self):
        """Every check after every step. Each check is a function of the tables it reads
        and of the model; when the database's per-transaction write counters show that no
        row of those tables was inserted, updated or deleted since the check last passed,
        and its part of the model is unchanged, its answer can not have changed, and it is
        not re-run (MODEL_LEDGER_ALWAYS=1 re-runs everything anyway)."""
        ledger_rows, issuing_rows = write_counters()
        ledger_mark = ledger_rows
        issuing_mark = (
            issuing_rows, self.budget_amount, frozenset(self.disabled),
            tuple((pk, r.status) for pk, r in sorted(self.requests.items())),
        )
        money_mark = (
            ledger_rows, frozenset(self.unbilled), frozenset(self.bills.items()),
            frozenset(self.pending), frozenset(self.dirty), frozenset(self.closed),
            frozenset(self.voided), frozenset(self.expired.items()),
        )
        run_ledger = ALWAYS or ledger_mark != self._ledger_mark
        run_issuing = ALWAYS or issuing_mark != self._issuing_mark
        run_money = ALWAYS or money_mark != self._money_mark
        STATS[f"checks run: ledger={run_ledger:d} issuing={run_issuing:d} "
              f"money={run_money:d}"] += 1
        if run_ledger:
            found = ledger_check()
            assert found == [], "ledger discrepancies:\n" + "\n".join(map(str, found))
        coupons = None
        if run_issuing or run_money:
            coupons = {c.pk: c for c in Coupon.objects.values_list(*COUPON_COLUMNS, named=True)}
        if run_issuing:
            self.issuing_matches_the_model(coupons)
        if run_money:
            self.money_matches_the_model(coupons)
        self._ledger_mark, self._issuing_mark, self._money_mark = (
            ledger_mark, issuing_mark, money_mark)

    def issuing_matches_the_model(self, coupons: dict):
        """Requests, "Limited to 1" holds, coupons per request, release counters, budget."""
        w = self.world
        recipients = defaultdict(dict)  # request → sub-account → recipient row
        statuses = {}
        limited_holds = defaultdict(int)
        holds = defaultdict(int)  # template → recipients holding or waiting
        for r in IssuanceRecipient.objects.values_list(
            "pk", "request_id", "request__status", "template_id", "sub_account_id", "limited",
            "holds", named=True,
        ):
            recipients[r.request_id][r.sub_account_id] = r
            statuses[r.request_id] = r.request__status
            holds[r.template_id] += r.holds
            if r.limited and r.holds:
                limited_holds[(r.template_id, r.sub_account_id)] += 1
        # A request has at least one recipient (a database check), so this sees them all.
        assert statuses == {pk: r.status for pk, r in self.requests.items()}, (
            "request statuses differ from the model"
        )
        assert all(n == 1 for n in limited_holds.values()), (
            "a sub-account holds a Limited to 1 template twice"
        )
        per_request = defaultdict(list)
        for c in coupons.values():
            per_request[c.request_id].append(c)
        assert set(per_request) <= set(self.requests), "a coupon of no request of the model"
        for pk, req in self.requests.items():
            spec = self._spec(req)
            got = recipients[pk]
            assert set(got) == set(req.accounts), f"request #{pk}: other recipients"
            for r in got.values():
                assert r.limited == spec.limited
                assert r.holds == (req.status in HOLDING), f"request #{pk} holds={r.holds}"
            made = per_request.get(pk, [])
            if req.status != S.ISSUED:
                assert not made, f"request #{pk} is {req.status} and has coupons"
                continue
            assert sorted(c.recipient_id for c in made) == sorted(r.pk for r in got.values()), (
                f"request #{pk}: not exactly one coupon per recipient"
            )
            if spec.valid_days is not None:
                window = (req.released_on, req.released_on + timedelta(days=spec.valid_days - 1))
            else:
                window = (spec.valid_from, spec.valid_until)
            for c in made:
                assert got[c.sub_account_id].pk == c.recipient_id, "coupon of another account"
                assert (c.template_id, c.amount, c.kind) == (spec.pk, spec.unit, spec.kind)
                assert (c.valid_from, c.valid_until) == window, (
                    f"coupon #{c.pk} valid {c.valid_from}–{c.valid_until}, not {window}"
                )
        templates = {
            pk: rest for pk, *rest in CouponTemplate.objects.filter(partner=w.partner)
            .values_list("pk", "released_count", "released_amount", "status")
        }
        for key, spec in w.templates.items():
            count, amount, status = templates[spec.pk]
            assert count == self._released(key), f"template {key} released {count}"
            assert amount == spec.unit * count
            assert (status == CouponTemplate.Status.DISABLED) == (key in self.disabled)
            if spec.cap_count is not None:  # the release cap: released and committed
                assert count <= spec.cap_count and holds[spec.pk] <= spec.cap_count, (
                    f"template {key} past its release cap of {spec.cap_count}"
                )
        amount, reserved, consumed = PlatformBudget.objects.filter(pk=w.budget_pk).values_list(
            "amount", "reserved", "consumed").get()
        assert amount == self.budget_amount
        assert consumed == self._platform_sum({S.ISSUED}), (
            f"budget consumed {consumed} ≠ issued platform-borne requests"
        )
        assert reserved == self._platform_sum(OPEN), (
            f"budget reserved {reserved} ≠ open platform-borne requests"
        )
        assert consumed <= amount

    def money_matches_the_model(self, coupons: dict):
        """PRODUCT §7 checked on its own, not through ledger_check."""
        lines = {
            row.pk: row for row in DailyBillLine.objects.values_list(
                "pk", "bill_id", "product__code", "original_amount", "deduction_amount",
                "payable_amount", "bill__sub_account_id", "bill__date", "bill__currency",
                "bill__posted_at", "bill__original_amount", "bill__deduction_amount",
                "bill__payable_amount", named=True,
            )
        }
        per_coupon = defaultdict(lambda: [ZERO, 0])
        per_line = defaultdict(lambda: ZERO)
        paid_by = defaultdict(set)
        for d in Deduction.objects.values_list(
            "pk", "coupon_id", "line_id", "amount", "bill_date", "sub_account_id", named=True,
        ):
            c, line = coupons[d.coupon_id], lines[d.line_id]
            assert ZERO < d.amount <= line.original_amount, f"deduction #{d.pk} exceeds its line"
            assert c.sub_account_id == line.bill__sub_account_id == d.sub_account_id
            assert c.currency == line.bill__currency and d.bill_date == line.bill__date
            assert c.valid_from <= d.bill_date <= c.valid_until, (
                f"deduction #{d.pk} outside its coupon's validity"
            )
            assert c.all_products or line.product__code in c.product_codes, (
                f"deduction #{d.pk} on a product its coupon does not cover"
            )
            assert c.min_bill_amount is None or line.original_amount >= c.min_bill_amount, (
                f"deduction #{d.pk} on a line below its coupon's minimum"
            )
            if c.kind == "discount":
                most = _discount_take(line.original_amount, c.discount_rate,
                                      quantize(c.amount / c.uses_total))
                assert d.amount <= most, f"discount deduction #{d.pk} above rate or cap"
            assert d.coupon_id not in paid_by[d.line_id], "a coupon paid one line twice"
            paid_by[d.line_id].add(d.coupon_id)
            per_coupon[d.coupon_id][0] += d.amount
            per_coupon[d.coupon_id][1] += 1
            per_line[d.line_id] += d.amount

        for c in coupons.values():
            assert ZERO <= c.balance <= c.amount and ZERO <= c.voided_amount <= c.amount
            deducted, count = per_coupon[c.pk]
            assert deducted == c.amount - c.balance - c.voided_amount, (
                f"coupon #{c.pk}: deductions {deducted} ≠ amount − balance − voided"
            )
            spent = c.kind == "discount" and c.uses_left == 0
            if c.kind == "discount":
                assert count == c.uses_total - c.uses_left, f"coupon #{c.pk}: uses"
            assert (c.status == Coupon.Status.VOIDED) == (c.pk in self.voided)
            assert (c.status == Coupon.Status.EXPIRED) == (c.pk in self.expired)
            if c.status == Coupon.Status.VOIDED:
                assert c.balance == ZERO
            elif c.status == Coupon.Status.EXPIRED:
                assert c.valid_until < self.today and c.balance > ZERO and not spent
                # Final: the breakage stays, nothing is deducted after expiry.
                assert c.balance == self.expired.get(c.pk), f"expired coupon #{c.pk} moved"
            elif c.status == Coupon.Status.USED_UP:
                assert c.balance == ZERO or spent
            else:
                assert c.balance > ZERO and not spent, f"coupon #{c.pk} available, nothing left"

        bill_sums = defaultdict(lambda: [ZERO, ZERO, ZERO])
        bills = {}
        for line in lines.values():
            assert per_line[line.pk] == line.deduction_amount, (
                f"line #{line.pk}: deductions {per_line[line.pk]} ≠ {line.deduction_amount}"
            )
            assert ZERO <= line.deduction_amount <= line.original_amount
            assert line.payable_amount == line.original_amount - line.deduction_amount
            sums = bill_sums[line.bill_id]
            sums[0] += line.original_amount
            sums[1] += line.deduction_amount
            sums[2] += line.payable_amount
            bills[line.bill_id] = line
        for pk, line in bills.items():
            assert [line.bill__original_amount, line.bill__deduction_amount,
                    line.bill__payable_amount] == bill_sums[pk], f"bill #{pk} ≠ its lines"
            assert (line.bill__posted_at is None) == (pk in self.pending), (
                f"bill #{pk}: posted_at {line.bill__posted_at}, model pending "
                f"{pk in self.pending}"
            )
        # Every bill has a line (a bill is made from usage), so this sees them all.
        assert {(b.bill__sub_account_id, b.bill__date): pk for pk, b in bills.items()} == (
            self.bills
        ), "daily bills differ from the model"
        unbilled = set(UsageRecord.objects.filter(line__isnull=True).values_list(
            "sub_account_id", "usage_date"))
        assert unbilled == self.unbilled, "unbilled usage differs from the model"
        assert set(ClosedMonth.objects.values_list("month", flat=True)) == self.closed

        # Posting is complete: on a settled account, no available coupon could still pay a
        # line of a posted bill of an open month.
        available = defaultdict(list)
        for c in coupons.values():
            if c.status == Coupon.Status.AVAILABLE:
                available[c.sub_account_id].append(c)
        for line in lines.values():
            account, day = line.bill__sub_account_id, line.bill__date
            if (line.payable_amount <= ZERO or line.bill__posted_at is None
                    or account in self.dirty or month_start(day) in self.closed):
                continue
            for c in available[account]:
                if (c.currency != line.bill__currency or not c.valid_from <= day <= c.valid_until
                        or not (c.all_products or line.product__code in c.product_codes)
                        or (c.min_bill_amount is not None
                            and line.original_amount < c.min_bill_amount)
                        or c.pk in paid_by[line.pk]):
                    continue
                take = min(c.balance, line.payable_amount)
                if c.kind == "discount":
                    take = min(take, _discount_take(line.original_amount, c.discount_rate,
                                                    quantize(c.amount / c.uses_total)))
                assert take <= ZERO, (
                    f"line #{line.pk} owes {line.payable_amount} on {day} and coupon #{c.pk} "
                    f"could pay {take}: a posting was incomplete"
                )


@pytest.mark.django_db
@pytest.mark.money
# CI's 200 × 50 takes about 3 minutes on PostgreSQL on 2 cores, up to 7 on a loaded machine;
# a failure's shrinking adds at most 5 more. In SHARDS tests of EXAMPLES / SHARDS examples
# each (hypothesis draws each shard's examples afresh), so xdist's workers share the run.
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("shard", range(SHARDS))
def test_money_paths_hold_under_random_operations(shard):
    """The state machine above, on the test database (QUALITY.md "ledger invariants")."""
    examples = -(-EXAMPLES // SHARDS)
    with mock.patch.object(timezone, "now", CLOCK.now):
        CLOCK.today = START
        MoneyMachine.world = build_world()
        STATS.clear()
        run_state_machine_as_test(
            MoneyMachine,
            settings=settings(
                max_examples=examples, stateful_step_count=STEPS, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    print(f"\nmodel run, shard {shard + 1}/{SHARDS} ({examples} examples × {STEPS} steps):")
    for what, n in sorted(STATS.items()):
        print(f"  {what}: {n}")
