"""Database helpers shared by the apps: a lean bulk insert and the engine test."""
import json

from django.db import connection


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


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


