"""Trigram indexes for the Issue Coupon search (name or account ID contains…).

`icontains` becomes UPPER(col) LIKE UPPER('%term%'), which no B-tree serves; a GIN trigram
index on the same expression does. PostgreSQL only: SQLite, the embedded default, has no
pg_trgm and searches a few thousand rows fast enough without it.
"""
from django.db import migrations

COLUMNS = ("name", "account_id")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS subaccount_{column}_trgm ON accounts_subaccount "
            f"USING gin (UPPER({column}::text) gin_trgm_ops)"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS subaccount_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_budget_consumed_within_amount")]

    operations = [migrations.RunPython(forwards, backwards)]
