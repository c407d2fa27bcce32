"""Coupon Usage statistics: two append-only delta tables, kept by triggers on coupons and
deductions, and filled from the existing rows (docs/ARCHITECTURE.md "Usage statistics").

The SQL is frozen here, as a migration's must be; billing/stats.py repeats the backfill for
`coupon_stats_rebuild` and keeps `couponplatform_tz()` equal to settings.TIME_ZONE.

PostgreSQL: statement-level triggers with transition tables, one grouped INSERT per key per
statement (the release's COPY of 10,000 coupons inserts a handful of rows). The deduction
triggers take the coupons FOR SHARE before reading their key, so a status change of a coupon
and a deduction of it never interleave (the posting already holds them FOR UPDATE).
SQLite (development only): row-level triggers doing the same; the release day is computed
with the function Django's SQLite backend registers on every connection for `__date`.
"""
from django.conf import settings
from django.db import migrations, models

KEY = "partner_id, template_id, status, cost_bearer, currency, released_on, valid_until"
COUPON_STAT = f"billing_couponstat ({KEY}, coupons, amount, balance, voided, compacted)"
DEDUCTION_STAT = f"billing_deductionstat ({KEY}, bill_date, amount, compacted)"


def _pg_key(alias: str) -> str:
    """A coupon's statistics key; the release day in the platform's time zone."""
    a = f"{alias}." if alias else ""
    return (f"{a}partner_id, {a}template_id, {a}status, {a}cost_bearer, {a}currency, "
            f"({a}released_at AT TIME ZONE couponplatform_tz())::date, {a}valid_until")


GROUP_7 = "GROUP BY 1, 2, 3, 4, 5, 6, 7"
GROUP_8 = "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
# The columns a key is made of, as they are on the coupon row.
KEY_COLUMNS = "partner_id, template_id, status, cost_bearer, currency, released_at, valid_until"

# PL/pgSQL keeps each statement's plan for the session, planned with the sizes of the
# transition tables of its first call: a plan that joins a 3-row transition table to the
# coupons by hash (a scan of the whole table) would run again for a 10,000-row one, and the
# other way round. So a transition table never meets coupons_coupon or billing_deduction in
# a plain join: each of its rows reaches them through a LATERAL subquery the planner can
# not flatten (OFFSET 0, or FOR SHARE), that is one index lookup per row whatever the size.
# And no JIT: a statement of a few thousand rows can pass jit_above_cost, and compiling it
# costs a few hundred milliseconds, far more than running it (`SET jit = off` on each
# function).


def _lock_coupons(ids: str) -> str:
    """Share-lock the coupons `ids` (a query of coupon ids) in id order, the order every
    coupon locker uses; the posting already holds them FOR UPDATE, which this leaves be."""
    return f"""PERFORM 1
    FROM (SELECT DISTINCT coupon_id FROM ({ids}) AS ids (coupon_id) ORDER BY 1) AS l,
         LATERAL (SELECT 1 FROM coupons_coupon c WHERE c.id = l.coupon_id FOR SHARE) AS x;"""


def _coupon_of(row: str) -> str:
    """The key of the coupon of `row`.coupon_id: one index lookup."""
    return f"""LATERAL (SELECT {_pg_key("c")} FROM coupons_coupon c
                 WHERE c.id = {row}.coupon_id OFFSET 0) AS k (k1, k2, k3, k4, k5, k6, k7)"""


def _deductions_of(row: str) -> str:
    """The deductions of the coupon `row`.id: one index range (deduction_coupon)."""
    return f"""LATERAL (SELECT d.bill_date, d.amount FROM billing_deduction d
                 WHERE d.coupon_id = {row}.id OFFSET 0) AS d"""


PG_FORWARDS = f"""
CREATE OR REPLACE FUNCTION billing_stats_coupon_insert() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    INSERT INTO {COUPON_STAT}
    SELECT {_pg_key("")}, count(*), sum(amount), sum(balance), sum(voided_amount), false
    FROM new_coupons {GROUP_7};
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION billing_stats_coupon_update() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    INSERT INTO {COUPON_STAT}
    SELECT k1, k2, k3, k4, k5, k6, k7, sum(n), sum(amount), sum(balance), sum(voided), false
    FROM (
        SELECT {_pg_key("")}, 1, amount, balance, voided_amount FROM new_coupons
        UNION ALL
        SELECT {_pg_key("")}, -1, -amount, -balance, -voided_amount FROM old_coupons
    ) AS delta (k1, k2, k3, k4, k5, k6, k7, n, amount, balance, voided)
    {GROUP_7}
    HAVING sum(n) <> 0 OR sum(amount) <> 0 OR sum(balance) <> 0 OR sum(voided) <> 0;

    -- Only when a key column changed (a set difference, not a join of the two tables):
    -- the coupons' deductions leave their old key for the new one.
    IF EXISTS (SELECT id, {KEY_COLUMNS} FROM new_coupons
               EXCEPT SELECT id, {KEY_COLUMNS} FROM old_coupons) THEN
        INSERT INTO {DEDUCTION_STAT}
        SELECT k1, k2, k3, k4, k5, k6, k7, d.bill_date, sum(m.sign * d.amount), false
        FROM (
            SELECT id, {_pg_key("")}, -1 FROM (
                SELECT id, {KEY_COLUMNS} FROM old_coupons
                EXCEPT ALL SELECT id, {KEY_COLUMNS} FROM new_coupons) AS gone
            UNION ALL
            SELECT id, {_pg_key("")}, 1 FROM (
                SELECT id, {KEY_COLUMNS} FROM new_coupons
                EXCEPT ALL SELECT id, {KEY_COLUMNS} FROM old_coupons) AS came
        ) AS m (id, k1, k2, k3, k4, k5, k6, k7, sign),
        {_deductions_of("m")}
        {GROUP_8}
        HAVING sum(m.sign * d.amount) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION billing_stats_coupon_delete() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    INSERT INTO {COUPON_STAT}
    SELECT {_pg_key("")}, -count(*), -sum(amount), -sum(balance), -sum(voided_amount), false
    FROM old_coupons {GROUP_7};
    -- Deductions still there (the foreign key is checked at commit) leave with their coupon;
    -- deleting them afterwards finds no coupon and counts nothing twice.
    INSERT INTO {DEDUCTION_STAT}
    SELECT {_pg_key("o")}, d.bill_date, -sum(d.amount), false
    FROM old_coupons o, {_deductions_of("o")} {GROUP_8};
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION billing_stats_deduction_insert() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    {_lock_coupons("SELECT coupon_id FROM new_deductions")}
    INSERT INTO {DEDUCTION_STAT}
    SELECT k1, k2, k3, k4, k5, k6, k7, d.bill_date, sum(d.amount), false
    FROM new_deductions d, {_coupon_of("d")} {GROUP_8};
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION billing_stats_deduction_update() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    {_lock_coupons("SELECT coupon_id FROM new_deductions UNION ALL "
                   "SELECT coupon_id FROM old_deductions")}
    INSERT INTO {DEDUCTION_STAT}
    SELECT k1, k2, k3, k4, k5, k6, k7, d.bill_date, sum(d.amount), false
    FROM (SELECT coupon_id, bill_date, amount FROM new_deductions
          UNION ALL
          SELECT coupon_id, bill_date, -amount FROM old_deductions) AS d,
         {_coupon_of("d")}
    {GROUP_8}
    HAVING sum(d.amount) <> 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION billing_stats_deduction_delete() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    {_lock_coupons("SELECT coupon_id FROM old_deductions")}
    INSERT INTO {DEDUCTION_STAT}
    SELECT k1, k2, k3, k4, k5, k6, k7, d.bill_date, -sum(d.amount), false
    FROM old_deductions d, {_coupon_of("d")} {GROUP_8};
    RETURN NULL;
END $$;

CREATE TRIGGER billing_stats_coupon_insert AFTER INSERT ON coupons_coupon
    REFERENCING NEW TABLE AS new_coupons
    FOR EACH STATEMENT EXECUTE FUNCTION billing_stats_coupon_insert();
CREATE TRIGGER billing_stats_coupon_update AFTER UPDATE ON coupons_coupon
    REFERENCING NEW TABLE AS new_coupons OLD TABLE AS old_coupons
    FOR EACH STATEMENT EXECUTE FUNCTION billing_stats_coupon_update();
CREATE TRIGGER billing_stats_coupon_delete AFTER DELETE ON coupons_coupon
    REFERENCING OLD TABLE AS old_coupons
    FOR EACH STATEMENT EXECUTE FUNCTION billing_stats_coupon_delete();
CREATE TRIGGER billing_stats_deduction_insert AFTER INSERT ON billing_deduction
    REFERENCING NEW TABLE AS new_deductions
    FOR EACH STATEMENT EXECUTE FUNCTION billing_stats_deduction_insert();
CREATE TRIGGER billing_stats_deduction_update AFTER UPDATE ON billing_deduction
    REFERENCING NEW TABLE AS new_deductions OLD TABLE AS old_deductions
    FOR EACH STATEMENT EXECUTE FUNCTION billing_stats_deduction_update();
CREATE TRIGGER billing_stats_deduction_delete AFTER DELETE ON billing_deduction
    REFERENCING OLD TABLE AS old_deductions
    FOR EACH STATEMENT EXECUTE FUNCTION billing_stats_deduction_delete();
"""

PG_BACKWARDS = """
DROP TRIGGER IF EXISTS billing_stats_coupon_insert ON coupons_coupon;
DROP TRIGGER IF EXISTS billing_stats_coupon_update ON coupons_coupon;
DROP TRIGGER IF EXISTS billing_stats_coupon_delete ON coupons_coupon;
DROP TRIGGER IF EXISTS billing_stats_deduction_insert ON billing_deduction;
DROP TRIGGER IF EXISTS billing_stats_deduction_update ON billing_deduction;
DROP TRIGGER IF EXISTS billing_stats_deduction_delete ON billing_deduction;
DROP FUNCTION IF EXISTS billing_stats_coupon_insert();
DROP FUNCTION IF EXISTS billing_stats_coupon_update();
DROP FUNCTION IF EXISTS billing_stats_coupon_delete();
DROP FUNCTION IF EXISTS billing_stats_deduction_insert();
DROP FUNCTION IF EXISTS billing_stats_deduction_update();
DROP FUNCTION IF EXISTS billing_stats_deduction_delete();
DROP FUNCTION IF EXISTS couponplatform_tz();
"""

PG_BACKFILL = [
    f"""INSERT INTO {COUPON_STAT}
    SELECT {_pg_key("c")}, count(*), sum(c.amount), sum(c.balance), sum(c.voided_amount), true
    FROM coupons_coupon c {GROUP_7}""",
    f"""INSERT INTO {DEDUCTION_STAT}
    SELECT {_pg_key("c")}, d.bill_date, sum(d.amount), true
    FROM billing_deduction d JOIN coupons_coupon c ON c.id = d.coupon_id {GROUP_8}""",
]


def _lite_key(row: str) -> str:
    """The key from NEW or OLD; the release day as Django's SQLite backend computes
    `released_at__date` (its django_datetime_cast_date, registered on every connection),
    in the time zone the view couponplatform_tz names."""
    return (f"{row}.partner_id, {row}.template_id, {row}.status, {row}.cost_bearer, "
            f"{row}.currency, django_datetime_cast_date({row}.released_at, "
            "(SELECT name FROM couponplatform_tz), (SELECT conn FROM couponplatform_tz)), "
            f"{row}.valid_until")


def _lite_changed(columns: str) -> str:
    return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns.split())


LITE_KEY_CHANGED = _lite_changed(
    "partner_id template_id status cost_bearer currency released_at valid_until")
LITE_FORWARDS = [
    f"""CREATE TRIGGER billing_stats_coupon_insert AFTER INSERT ON coupons_coupon BEGIN
    INSERT INTO {COUPON_STAT}
    VALUES ({_lite_key("NEW")}, 1, NEW.amount, NEW.balance, NEW.voided_amount, 0);
    END""",
    f"""CREATE TRIGGER billing_stats_coupon_update AFTER UPDATE ON coupons_coupon
    WHEN {LITE_KEY_CHANGED} OR {_lite_changed("amount balance voided_amount")} BEGIN
    INSERT INTO {COUPON_STAT}
    VALUES ({_lite_key("OLD")}, -1, -OLD.amount, -OLD.balance, -OLD.voided_amount, 0);
    INSERT INTO {COUPON_STAT}
    VALUES ({_lite_key("NEW")}, 1, NEW.amount, NEW.balance, NEW.voided_amount, 0);
    END""",
    f"""CREATE TRIGGER billing_stats_coupon_move AFTER UPDATE ON coupons_coupon
    WHEN {LITE_KEY_CHANGED} BEGIN
    INSERT INTO {DEDUCTION_STAT}
    SELECT {_lite_key("OLD")}, bill_date, -SUM(amount), 0 FROM billing_deduction
    WHERE coupon_id = OLD.id GROUP BY bill_date;
    INSERT INTO {DEDUCTION_STAT}
    SELECT {_lite_key("NEW")}, bill_date, SUM(amount), 0 FROM billing_deduction
    WHERE coupon_id = NEW.id GROUP BY bill_date;
    END""",
    f"""CREATE TRIGGER billing_stats_coupon_delete AFTER DELETE ON coupons_coupon BEGIN
    INSERT INTO {COUPON_STAT}
    VALUES ({_lite_key("OLD")}, -1, -OLD.amount, -OLD.balance, -OLD.voided_amount, 0);
    INSERT INTO {DEDUCTION_STAT}
    SELECT {_lite_key("OLD")}, bill_date, -SUM(amount), 0 FROM billing_deduction
    WHERE coupon_id = OLD.id GROUP BY bill_date;
    END""",
    f"""CREATE TRIGGER billing_stats_deduction_insert AFTER INSERT ON billing_deduction BEGIN
    INSERT INTO {DEDUCTION_STAT}
    SELECT {_lite_key("c")}, NEW.bill_date, NEW.amount, 0 FROM coupons_coupon c
    WHERE c.id = NEW.coupon_id;
    END""",
    f"""CREATE TRIGGER billing_stats_deduction_update AFTER UPDATE ON billing_deduction
    WHEN {_lite_changed("coupon_id bill_date amount")} BEGIN
    INSERT INTO {DEDUCTION_STAT}
    SELECT {_lite_key("c")}, OLD.bill_date, -OLD.amount, 0 FROM coupons_coupon c
    WHERE c.id = OLD.coupon_id;
    INSERT INTO {DEDUCTION_STAT}
    SELECT {_lite_key("c")}, NEW.bill_date, NEW.amount, 0 FROM coupons_coupon c
    WHERE c.id = NEW.coupon_id;
    END""",
    f"""CREATE TRIGGER billing_stats_deduction_delete AFTER DELETE ON billing_deduction BEGIN
    INSERT INTO {DEDUCTION_STAT}
    SELECT {_lite_key("c")}, OLD.bill_date, -OLD.amount, 0 FROM coupons_coupon c
    WHERE c.id = OLD.coupon_id;
    END""",
]
LITE_TRIGGERS = ["billing_stats_coupon_insert", "billing_stats_coupon_update",
                 "billing_stats_coupon_move", "billing_stats_coupon_delete",
                 "billing_stats_deduction_insert", "billing_stats_deduction_update",
                 "billing_stats_deduction_delete"]
LITE_KEY_C = _lite_key("c")
LITE_BACKFILL = [
    f"""INSERT INTO {COUPON_STAT}
    SELECT {LITE_KEY_C}, COUNT(*), SUM(c.amount), SUM(c.balance), SUM(c.voided_amount), 1
    FROM coupons_coupon c {GROUP_7}""",
    f"""INSERT INTO {DEDUCTION_STAT}
    SELECT {LITE_KEY_C}, d.bill_date, SUM(d.amount), 1
    FROM billing_deduction d JOIN coupons_coupon c ON c.id = d.coupon_id {GROUP_8}""",
]


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    tz = settings.TIME_ZONE
    if connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE OR REPLACE FUNCTION couponplatform_tz() RETURNS text "
            f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {_quoted(tz)}::text $$")
        # CREATE TRIGGER holds off writers of both tables until this migration commits, so
        # the backfill and the triggers count every row exactly once.
        schema_editor.execute(PG_FORWARDS)
        for sql in PG_BACKFILL:
            schema_editor.execute(sql)
    elif connection.vendor == "sqlite":
        schema_editor.execute(
            f"CREATE VIEW couponplatform_tz AS SELECT {_quoted(tz)} AS name, "
            f"{_quoted(connection.timezone_name)} AS conn")
        for sql in LITE_FORWARDS + LITE_BACKFILL:
            schema_editor.execute(sql)


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARDS)
    elif connection.vendor == "sqlite":
        for name in LITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")
        schema_editor.execute("DROP VIEW IF EXISTS couponplatform_tz")



class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0002_payable_tolerance_line_ordering'),
    ]

    operations = [
        migrations.CreateModel(
            name='CouponStat',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('partner_id', models.BigIntegerField()),
                ('template_id', models.BigIntegerField()),
                ('status', models.CharField(max_length=10)),
                ('cost_bearer', models.CharField(max_length=10)),
                ('currency', models.CharField(max_length=3)),
                ('released_on', models.DateField()),
                ('valid_until', models.DateField()),
                ('compacted', models.BooleanField(db_default=False, default=False)),
                ('coupons', models.BigIntegerField()),
                ('amount', models.DecimalField(decimal_places=2, max_digits=18)),
                ('balance', models.DecimalField(decimal_places=2, max_digits=18)),
                ('voided', models.DecimalField(decimal_places=2, max_digits=18)),
            ],
            options={
                'indexes': [models.Index(fields=['partner_id', 'template_id', 'status', 'cost_bearer', 'currency', 'released_on', 'valid_until'], name='couponstat_key'), models.Index(condition=models.Q(('compacted', False)), fields=['id'], name='couponstat_pending')],
            },
        ),
        migrations.CreateModel(
            name='DeductionStat',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('partner_id', models.BigIntegerField()),
                ('template_id', models.BigIntegerField()),
                ('status', models.CharField(max_length=10)),
                ('cost_bearer', models.CharField(max_length=10)),
                ('currency', models.CharField(max_length=3)),
                ('released_on', models.DateField()),
                ('valid_until', models.DateField()),
                ('compacted', models.BooleanField(db_default=False, default=False)),
                ('bill_date', models.DateField()),
                ('amount', models.DecimalField(decimal_places=2, max_digits=18)),
            ],
            options={
                'indexes': [models.Index(fields=['partner_id', 'bill_date', 'template_id', 'status', 'cost_bearer', 'currency', 'released_on', 'valid_until'], name='deductionstat_key'), models.Index(condition=models.Q(('compacted', False)), fields=['id'], name='deductionstat_pending')],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
