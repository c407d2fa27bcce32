"""The billing run's two set-based SQL baselines: the same deductions and balances written
by one SQL transaction, into the real tables and into bare copies of them (no index,
constraint, foreign key or trigger: the physical limit)."""
from __future__ import annotations

from django.db import connection, transaction

from audit.models import AuditLog
from bench import data
from billing.models import DailyBill, DailyBillLine, Deduction
from coupons.models import Coupon

REAL = {"coupon": "coupons_coupon", "deduction": "billing_deduction",
        "line": "billing_dailybillline", "bill": "billing_dailybill", "audit": "audit_auditlog"}
MODELS = {"coupon": Coupon, "deduction": Deduction, "line": DailyBillLine, "bill": DailyBill,
          "audit": AuditLog}

# Each statement names its tables as {coupon}, {deduction}, {line}, {bill}, {audit}.
BASELINE_SQL = [
    # 1. The allocation, set-based: within an account, lines in (bill date, product code,
    #    id) order and coupons in the platform's order (valid until, release, id) each
    #    cover an interval of the running sums; a deduction is the overlap of a line's
    #    interval with a coupon's. This is the rule of billing.allocation for cash coupons
    #    for all products valid on the bill's date in its currency, which is what the
    #    data holds.
    """
    CREATE TEMPORARY TABLE bench_alloc ON COMMIT DROP AS
    WITH l AS (
        SELECT l.id AS line_id, l.bill_id, b.sub_account_id, b.date, l.payable_amount AS owed,
               SUM(l.payable_amount) OVER (PARTITION BY b.sub_account_id
                                           ORDER BY b.date, p.code, l.id) AS hi
        FROM {line} l
        JOIN {bill} b ON b.id = l.bill_id
        JOIN accounts_product p ON p.id = l.product_id
        WHERE b.posted_at IS NULL AND b.sub_account_id = ANY(%(accounts)s)
          AND l.payable_amount > 0
    ), c AS (
        SELECT c.id AS coupon_id, c.sub_account_id, c.partner_id, c.balance,
               SUM(c.balance) OVER (PARTITION BY c.sub_account_id
                                    ORDER BY c.valid_until, c.released_at, c.id) AS hi
        FROM {coupon} c
        WHERE c.status = 'available' AND c.balance > 0
          AND c.sub_account_id = ANY(%(accounts)s)
    )
    SELECT c.coupon_id, l.line_id, l.bill_id, l.sub_account_id, c.partner_id, l.date,
           LEAST(l.hi, c.hi) - GREATEST(l.hi - l.owed, c.hi - c.balance) AS amount
    FROM l JOIN c ON c.sub_account_id = l.sub_account_id
     AND l.hi - l.owed < c.hi AND c.hi - c.balance < l.hi
    """,
    # 2. The deduction rows.
    """
    INSERT INTO {deduction} (coupon_id, line_id, sub_account_id, partner_id, bill_date,
                                   amount, created_at)
    SELECT coupon_id, line_id, sub_account_id, partner_id, date, amount, now()
    FROM bench_alloc
    """,
    # 3. Balances, used-up coupons, and their audit rows as the service writes them.
    """
    WITH taken AS (
        SELECT coupon_id, SUM(amount) AS amount FROM bench_alloc GROUP BY coupon_id
    ), moved AS (
        UPDATE {coupon} c
        SET balance = c.balance - t.amount,
            status = CASE WHEN c.balance - t.amount <= 0 THEN 'used_up' ELSE c.status END
        FROM taken t WHERE c.id = t.coupon_id
        RETURNING c.id, c.partner_id, c.balance, c.uses_left, t.amount
    )
    INSERT INTO {audit} (created_at, actor_id, partner_id, action, object_type,
                                object_id, before, after, reason)
    SELECT now(), NULL, partner_id, 'coupon.used_up', 'coupons.Coupon', id::text,
           jsonb_build_object('status', 'available', 'balance', (balance + amount)::text,
                              'uses_left', uses_left),
           jsonb_build_object('status', 'used_up', 'balance', balance::text,
                              'uses_left', uses_left),
           ''
    FROM moved WHERE balance <= 0
    """,
    # 4. The lines.
    """
    UPDATE {line} l
    SET deduction_amount = l.deduction_amount + a.amount,
        payable_amount = l.payable_amount - a.amount
    FROM (SELECT line_id, SUM(amount) AS amount FROM bench_alloc GROUP BY line_id) a
    WHERE l.id = a.line_id
    """,
    # 5. The bills: their totals, and every bill of the run marked posted.
    """
    UPDATE {bill} b
    SET deduction_amount = b.deduction_amount + COALESCE(a.amount, 0),
        payable_amount = b.payable_amount - COALESCE(a.amount, 0),
        posted_at = now()
    FROM {bill} b2
    LEFT JOIN (SELECT bill_id, SUM(amount) AS amount FROM bench_alloc GROUP BY bill_id) a
      ON a.bill_id = b2.id
    WHERE b.id = b2.id AND b2.posted_at IS NULL AND b2.sub_account_id = ANY(%(accounts)s)
    """,
]




def bare_tables(accounts: list[int], tag: str) -> dict[str, str]:
    """Bare copies of the tables the baseline writes (`data.bare_table`), holding the
    accounts' coupons, bills and lines (same ids and values); deductions and audit empty."""
    names = {}
    for key, model in MODELS.items():
        names[key] = data.bare_table(model, f"bench_bare_{key}_{tag}")
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {names['coupon']} SELECT * FROM coupons_coupon "
                       "WHERE sub_account_id = ANY(%s)", [accounts])
        cursor.execute(f"INSERT INTO {names['bill']} SELECT * FROM billing_dailybill "
                       "WHERE sub_account_id = ANY(%s)", [accounts])
        cursor.execute(f"INSERT INTO {names['line']} SELECT l.* FROM billing_dailybillline l "
                       "JOIN billing_dailybill b ON b.id = l.bill_id "
                       "WHERE b.sub_account_id = ANY(%s)", [accounts])
    return names


def baseline(accounts: list[int], tables: dict[str, str] = REAL) -> None:
    """The set-based SQL of the accounts' unposted bills, in one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in BASELINE_SQL:
            cursor.execute(sql.format(**tables), {"accounts": accounts})


def bare_outcome(tables: dict[str, str]) -> dict:
    """The totals the bare baseline left, to compare with the real one's."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), coalesce(sum(amount), 0) FROM {tables['deduction']}")
        count, total = cursor.fetchone()
        cursor.execute(f"SELECT sum(balance), count(*) FILTER (WHERE status = 'used_up') "
                       f"FROM {tables['coupon']}")
        balance, used_up = cursor.fetchone()
        cursor.execute(f"SELECT sum(payable_amount), sum(deduction_amount), "
                       f"count(*) FILTER (WHERE posted_at IS NULL) FROM {tables['bill']}")
        payable, deducted, unposted = cursor.fetchone()
        cursor.execute(f"SELECT sum(deduction_amount) FROM {tables['line']}")
        line_deducted = cursor.fetchone()[0]
    return {"count": count, "sum": total, "balance": balance, "used_up": used_up,
            "bill_payable": payable, "bill_deducted": deducted,
            "line_deducted": line_deducted, "unposted": unposted}
