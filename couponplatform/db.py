"""Database helpers shared by the apps: a lean bulk insert, a set-based update, IN-list
chunks, keyset paging and the engine test."""
import json
from collections.abc import Iterator, Sequence

from django.db import connection
from django.db.models import Field, ForeignObject, Lookup, Q, QuerySet

# Values per IN list: SQLite refuses more than ~32k parameters in one statement.
IN_CHUNK = 10_000


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def chunks(items: Sequence, size: int = IN_CHUNK) -> Iterator[Sequence]:
    """`items` in slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def keyset_iterate(queryset: QuerySet, *, key: str, size: int = 2000) -> Iterator:
    """Every row of `queryset` newest `key` first (then highest pk), fetched `size` rows a
    query, each query starting after the last row of the one before (keyset paging).

    Memory stays flat without a server-side cursor, which PgBouncer's transaction pooling
    can not serve outside a transaction (docs/SCALING.md), and no query holds a
    transaction open while the client downloads. `key` must not be null; with an index on
    (…, -key, -id) each page is an index range.
    """
    queryset = queryset.order_by(f"-{key}", "-pk")
    last = None
    while True:
        page = queryset
        if last is not None:
            value = getattr(last, key)
            # The redundant `key <= value` makes the index range; the Q settles the ties.
            page = page.filter(**{f"{key}__lte": value}).filter(
                Q(**{f"{key}__lt": value}) | Q(pk__lt=last.pk))
        rows = list(page[:size])
        yield from rows
        if len(rows) < size:
            return
        last = rows[-1]


def bulk_insert(model, fields: list[str], rows: list[tuple]) -> None:
    """Insert many rows without reading them back.

    On PostgreSQL this streams the rows with COPY (psycopg 3), several times faster than
    multi-row INSERTs; constraints still apply, so a unique violation aborts the whole COPY
    with an IntegrityError like an INSERT would. Elsewhere it falls back to bulk_create.
    """
    if not rows:
        return
    if is_postgres():
        columns = [model._meta.get_field(name).column for name in fields]
        sql = "COPY {} ({}) FROM STDIN".format(
            connection.ops.quote_name(model._meta.db_table),
            ", ".join(connection.ops.quote_name(c) for c in columns),
        )
        # The raw psycopg cursor bypasses Django's error translation; wrap_database_errors
        # turns a psycopg UniqueViolation into django.db.IntegrityError, as callers expect.
        with connection.cursor() as cursor, connection.wrap_database_errors:
            with cursor.cursor.copy(sql) as copy:
                for row in rows:
                    # COPY's text format takes JSON columns as their text.
                    copy.write_row(
                        [json.dumps(v) if isinstance(v, list | dict) else v for v in row],
                    )
        return
    attnames = [model._meta.get_field(name).attname for name in fields]
    model.objects.bulk_create(
        [model(**dict(zip(attnames, row, strict=True))) for row in rows], batch_size=500,
    )


def update_from_values(model, columns: list[str], assignments: str, rows: list[tuple]) -> int:
    """One UPDATE for many rows: `rows` are (pk, value, …) tuples named by `columns` (the
    first is the primary key); `assignments` is the SET clause, with the table as `t` and
    the row's values as `v.<column>`. Both PostgreSQL and SQLite (3.33+) run it as
    `WITH v(…) AS (VALUES …) UPDATE t SET … FROM v WHERE t.pk = v.<first column>`.

    Rows go in pk order, so two writers lock the rows they share in the same order.
    Returns the number of rows updated.
    """
    if not rows:
        return 0
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)
    rows = sorted(rows, key=lambda row: row[0])
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    updated = 0
    # SQLite takes at most 32,766 parameters in a statement.
    per_statement = max(1, 30_000 // len(columns))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            cursor.execute(
                f"WITH v ({', '.join(columns)}) AS (VALUES {', '.join([one] * len(chunk))}) "
                f"UPDATE {table} AS t SET {assignments} FROM v WHERE t.{pk} = v.{columns[0]}",
                [value for row in chunk for value in row],
            )
            updated += cursor.rowcount
    return updated


class AnyOf(Lookup):
    """`field__any=[...]`: one array parameter (`= ANY(%s)`) on PostgreSQL instead of an IN
    list with a placeholder per value; for 10,000 account IDs that halves the selection
    check (Django and psycopg spend their time on the placeholders, not PostgreSQL)."""

    lookup_name = "any"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        return "%s", [[self.lhs.output_field.get_db_prep_value(v, connection) for v in value]]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        _rhs, (values,) = self.process_rhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # relations keep their own lookup table
