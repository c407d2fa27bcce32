"""What the coupon table's parts cost a COPY of coupon rows: the same rows written into
`coupons_coupon` with its parts taken away one after the other (the statistics trigger,
the CHECKs, the foreign keys, the secondary indexes, the unique indexes, the primary key),
each in a transaction rolled back afterwards (DDL is transactional in PostgreSQL), down to
the bare table. The differences are what each part costs."""
from __future__ import annotations

import statistics
import time

from django.db import connection, transaction

from bench import data

TABLE = "coupons_coupon"


def _constraints(kind: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass "
                       "AND contype = %s ORDER BY 1", [TABLE, kind])
        return [r[0] for r in cursor.fetchall()]


def _secondary_indexes() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conindid = x.indexrelid) ORDER BY 1", [TABLE])
        return [r[0] for r in cursor.fetchall()]


def _triggers() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass "
                       "AND NOT tgisinternal ORDER BY 1", [TABLE])
        return [r[0] for r in cursor.fetchall()]


def steps() -> list[tuple[str, list[str]]]:
    """(label, DDL) of each part taken away, in order; each step keeps the earlier ones."""
    drop = lambda names: [f'ALTER TABLE {TABLE} DROP CONSTRAINT "{n}" CASCADE'  # noqa: E731
                          for n in names]
    triggers, checks, fks = _triggers(), _constraints("c"), _constraints("f")
    indexes, uniques = _secondary_indexes(), _constraints("u")
    return [
        (f"`{TABLE}` as it is", []),
        (f"− the statistics trigger ({len(triggers)} on insert, update, delete)",
         [f'ALTER TABLE {TABLE} DISABLE TRIGGER "{t}"' for t in triggers]),
        (f"− the {len(checks)} CHECK constraints", drop(checks)),
        (f"− the {len(fks)} foreign keys (checked at once, not at commit)", drop(fks)),
        (f"− the {len(indexes)} secondary indexes", [f'DROP INDEX "{i}"' for i in indexes]),
        (f"− the {len(uniques)} unique constraints (code, recipient)", drop(uniques)),
        ("− the primary key: a table of the columns and NOT NULLs only",
         drop(_constraints("p"))),
    ]


def components(fields: list[str], rows: list[tuple], *, runs: int = 3) -> list[list[str]]:
    """Rows (part, ms, ms it costs, share) of the COPY of `rows` into the table with its parts
    taken away step by step: the median of `runs` rounds, the steps in turns."""
    from coupons.models import Coupon

    plan = steps()
    samples: dict[int, list[float]] = {k: [] for k in range(len(plan))}
    for i in range(runs + 1):
        order = list(range(len(plan)))
        order = order[i % len(order):] + order[:i % len(order)]
        for k in order:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    for _label, ddl in plan[:k + 1]:
                        for statement in ddl:
                            cursor.execute(statement)
                    # The deferred foreign keys would run at the commit this never reaches.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                start = time.perf_counter()
                data.copy_rows(Coupon, fields, rows)
                seconds = time.perf_counter() - start
                transaction.set_rollback(True)
            if i:  # the first round warms up
                samples[k].append(seconds)
    medians = [statistics.median(samples[k]) for k in range(len(plan))]
    out = []
    for k, (label, _ddl) in enumerate(plan):
        saved = medians[k - 1] - medians[k] if k else None
        out.append([label, f"{medians[k] * 1000:.1f}",
                    "" if saved is None else f"{saved * 1000:.1f}",
                    "" if saved is None else f"{saved / medians[0]:.0%}"])
    return out
