"""Building the benchmarks' data fast: tenancy rows by COPY, the rest through services."""
from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
from contextlib import contextmanager
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import (
    BD_GROUP,
    Partner,
    PartnerMembership,
    PlatformBudget,
    Product,
    SubAccount,
)
from couponplatform.db import bulk_insert
from coupons.models import Coupon, CouponKind, CouponTemplate, IssuanceRecipient, IssuanceRequest

# Names as partners' customers look: "<word> <business> <legal form>", some with a city.
FIRST = [
    "Acme", "Alpine", "Apex", "Aurora", "Beacon", "Blue", "Bright", "Canyon", "Cedar", "Cobalt",
    "Coral", "Crest", "Delta", "Eagle", "Ember", "Evergreen", "Falcon", "Fusion", "Granite",
    "Harbor", "Horizon", "Iris", "Ivory", "Jade", "Juniper", "Kestrel", "Keystone", "Lumen",
    "Maple", "Meridian", "Nimbus", "Nova", "Oak", "Orchid", "Pacific", "Pioneer", "Prism",
    "Quartz", "Radiant", "Raven", "Redwood", "Sable", "Sierra", "Silver", "Solace", "Summit",
    "Tidal", "Titan", "Umbra", "Unity", "Vertex", "Vista", "Willow", "Wren", "Xenon", "Yarrow",
    "Zenith", "Zephyr", "Golden", "Northern",
]
BUSINESS = [
    "Labs", "Retail", "Logistics", "Games", "Media", "Health", "Foods", "Systems", "Studios",
    "Analytics", "Travel", "Robotics", "Software", "Networks", "Consulting", "Fintech",
    "Education", "Energy", "Security", "Design", "Commerce", "Biotech", "Hosting", "Mobility",
    "Manufacturing",
]
LEGAL = ["Pte Ltd", "Ltd", "Inc", "LLC", "GmbH", "Sdn Bhd", "Co", "Group", "Holdings", "K.K."]
CITY = ["Singapore", "Jakarta", "Manila", "Bangkok", "Kuala Lumpur", "Ho Chi Minh", "Tokyo",
        "Seoul", "Sydney", "Dubai"]

_seq = itertools.count(1)


def company_name(rng: random.Random) -> str:
    name = f"{rng.choice(FIRST)} {rng.choice(BUSINESS)} {rng.choice(LEGAL)}"
    if rng.random() < 0.3:
        name += f" ({rng.choice(CITY)})"
    return name


def make_partner(name: str, *, requires_bd_approval: bool = True,
                 budget: Decimal | None = None) -> tuple[Partner, object]:
    """A tier-1 distributor with the coupon function on, its BD and its admin user."""
    n = next(_seq)
    bd = get_user_model().objects.create_user(
        username=f"bench-bd-{n}", email=f"bench-bd-{n}@example.com", is_staff=True,
    )
    bd.groups.add(Group.objects.get_or_create(name=BD_GROUP)[0])
    partner = Partner.objects.create(
        name=name, kind=Partner.Kind.DISTRIBUTOR, tier=1, bd=bd, coupon_enabled=True,
        requires_bd_approval=requires_bd_approval,
    )
    if budget is not None:
        PlatformBudget.objects.create(partner=partner, currency="USD", amount=budget)
    user = get_user_model().objects.create_user(username=f"bench-admin-{n}")
    PartnerMembership.objects.create(user=user, partner=partner,
                                     role=PartnerMembership.Role.ADMIN)
    return partner, user


@transaction.atomic
def make_sub_accounts(partner: Partner, count: int, *, prefix: str, tier2_every: int = 0,
                      seed: int = 1) -> list[tuple[int, str]]:
    """`count` accounts with IDs `<prefix><7 digits>` and realistic names, by COPY.

    Every `tier2_every`-th account is a tier-2 reseller's account, with its reseller partner
    as the model wants. Returns (pk, account_id) in account ID order.
    """
    rng = random.Random(seed)
    now = timezone.now()
    tier2_at = set(range(tier2_every - 1, count, tier2_every)) if tier2_every else set()
    resellers = iter(Partner.objects.bulk_create([
        Partner(name=f"{company_name(rng)} reseller", kind=Partner.Kind.RESELLER, tier=2,
                parent=partner, coupon_enabled=True)
        for _ in tier2_at
    ]))
    rows = []
    for i in range(count):
        tier2 = i in tier2_at
        rows.append((
            partner.pk, f"{prefix}{i + 1:07d}", company_name(rng),
            SubAccount.Type.TIER2_RESELLER if tier2 else SubAccount.Type.CUSTOMER,
            next(resellers).pk if tier2 else None, "USD", now,
        ))
    bulk_insert(
        SubAccount, ["partner", "account_id", "name", "type", "reseller", "currency",
                     "created_at"], rows,
    )
    return list(
        SubAccount.objects.filter(partner=partner, account_id__startswith=prefix)
        .order_by("account_id").values_list("pk", "account_id"),
    )


def analyze() -> None:
    """Vacuum and fresh planner statistics, as autovacuum would leave a live database after
    bulk loads (the visibility map lets counts use index-only scans)."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def copy_rows(model, fields: list[str], rows, *, table: str | None = None) -> int:
    """Stream rows into the model's table (or `table`, of the same columns) with psycopg
    COPY, without building a list.

    `rows` may be any iterable of tuples in the order of `fields` (JSON columns as their
    text). Runs in the caller's transaction, if any. Returns the number of rows written.
    """
    meta = model._meta
    columns = ", ".join(connection.ops.quote_name(meta.get_field(f).column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(table or meta.db_table)} ({columns}) FROM STDIN"
    count = 0
    connection.ensure_connection()
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def bare_table(model, name: str) -> str:
    """A table of the model's columns and defaults and nothing else: no index, primary key,
    constraint (NOT NULL aside), foreign key or trigger. What writing the same rows costs
    there is the physical limit the benchmarks compare with."""
    quoted = connection.ops.quote_name(name)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {quoted}")
        cursor.execute(f"CREATE TABLE {quoted} (LIKE "
                       f"{connection.ops.quote_name(model._meta.db_table)} INCLUDING DEFAULTS "
                       "INCLUDING IDENTITY)")
    return name


def make_products(codes: list[str]) -> list[Product]:
    Product.objects.bulk_create([Product(code=c, name=c.upper()) for c in codes],
                                ignore_conflicts=True)
    return list(Product.objects.filter(code__in=codes).order_by("code"))


def next_ids(model, count: int) -> list[int]:
    """Reserve `count` primary keys from the table's sequence, so rows written by COPY can
    be referred to without reading them back."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [r[0] for r in cursor.fetchall()]


# Coupon codes as the release makes them (CP + 14 of 32 unambiguous characters), drawn fast:
# 32 divides 256, so `byte & 31` is uniform.
_CODE_TABLE = bytes(b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789"[b & 31] for b in range(256))


def coupon_code() -> str:
    return "CP" + os.urandom(14).translate(_CODE_TABLE).decode()


COUPON_COLUMNS = [
    "code", "template", "request", "recipient", "partner", "sub_account", "kind",
    "cost_bearer", "currency", "amount", "balance", "voided_amount", "discount_rate",
    "uses_total", "uses_left", "min_bill_amount", "all_products", "product_codes",
    "valid_from", "valid_until", "status", "released_at", "void_reason",
]


def issue_coupons(
    template: CouponTemplate,
    user,
    accounts: list[int],
    *,
    released_at,
    valid_from=None,
    valid_until=None,
    state=None,
    request_size: int = 10_000,
) -> int:
    """Coupons of `template` for the given sub-account pks, as issued requests would leave
    them, written by COPY: requests of at most `request_size` recipients (status issued),
    their recipients, and one coupon per recipient.

    `released_at` is a datetime or a callable (i) -> datetime; the validity defaults to the
    template's. `state(i, amount)` may return (status, balance, voided_amount, uses_left)
    for the i-th coupon; by default it is available and untouched. Returns the count.
    """
    amount = template.unit_value
    is_discount = template.kind == CouponKind.DISCOUNT
    uses = template.discount_uses if is_discount else None
    rate = template.discount_rate if is_discount else None
    codes = ("[]" if template.all_products
             else json.dumps(sorted(template.products.values_list("code", flat=True))))
    written = 0
    for start in range(0, len(accounts), request_size):
        chunk = accounts[start:start + request_size]
        with transaction.atomic():
            request = IssuanceRequest.objects.create(
                partner_id=template.partner_id, template=template,
                status=IssuanceRequest.Status.ISSUED, route=IssuanceRequest.Route.AUTO,
                cost_bearer=template.cost_bearer, currency=template.currency,
                unit_value=amount, recipient_count=len(chunk), total_amount=amount * len(chunk),
                submitted_by=user, released_so_far=len(chunk),
            )
            ids = next_ids(IssuanceRecipient, len(chunk))
            copy_rows(IssuanceRecipient, ["id", "request", "template", "sub_account", "limited",
                                          "holds"],
                      ((rid, request.pk, template.pk, pk, template.is_limited, True)
                       for rid, pk in zip(ids, chunk, strict=True)))
            recipient_of = dict(zip(chunk, ids, strict=True))

            def rows(chunk=chunk, request=request, recipient_of=recipient_of, start=start):
                for j, pk in enumerate(chunk):
                    i = start + j
                    released = released_at(i) if callable(released_at) else released_at
                    vf = valid_from or template.valid_from or timezone.localdate(released)
                    vu = valid_until or template.valid_until or (
                        vf + dt.timedelta(days=template.valid_days - 1))
                    status, balance, voided, uses_left = (
                        state(i, amount) if state else
                        (Coupon.Status.AVAILABLE, amount, Decimal("0"), uses)
                    )
                    yield (
                        coupon_code(), template.pk, request.pk, recipient_of[pk],
                        template.partner_id, pk, template.kind, template.cost_bearer,
                        template.currency, amount, balance, voided, rate, uses, uses_left,
                        template.min_bill_amount, template.all_products, codes, vf, vu,
                        status, released, "Withdrawn" if status == "voided" else "",
                    )

            written += copy_rows(Coupon, COUPON_COLUMNS, rows())
    return written


@contextmanager
def bulk_load(*models):
    """Load large tables the way pg_restore does: the models' secondary indexes (those no
    constraint needs) dropped during the load and rebuilt after it from their own
    definitions, foreign-key triggers off (`session_replication_role = replica`; the
    generated rows are consistent by construction) and no wait for the WAL flush at each
    commit. Only for the benchmarks' throwaway database."""
    tables = [m._meta.db_table for m in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            [tables],
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET synchronous_commit = off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")
            cursor.execute("SET synchronous_commit = DEFAULT")
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for _name, definition in indexes:
                cursor.execute(definition)
            cursor.execute("RESET maintenance_work_mem")


# The Coupon Usage statistics' triggers (billing/migrations/0003_usage_stats.py).
STATS_TRIGGERS = [
    ("coupons_coupon", "billing_stats_coupon_insert"),
    ("coupons_coupon", "billing_stats_coupon_update"),
    ("coupons_coupon", "billing_stats_coupon_delete"),
    ("billing_deduction", "billing_stats_deduction_insert"),
    ("billing_deduction", "billing_stats_deduction_update"),
    ("billing_deduction", "billing_stats_deduction_delete"),
]


@contextmanager
def stats_triggers_fire():
    """bulk_load sets `session_replication_role = replica`, which skips every ordinary
    trigger (as pg_restore wants for the foreign keys), the statistics' too. ENABLE ALWAYS
    makes those fire in replica mode as well, for the load only: the statistics are built by
    the triggers themselves, from the same COPY statements (requests of up to 10,000
    coupons; the deductions in one), as the release writes them."""
    with connection.cursor() as cursor:
        for table, trigger in STATS_TRIGGERS:
            cursor.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {trigger}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for table, trigger in STATS_TRIGGERS:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
