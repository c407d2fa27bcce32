"""manage.py import_usage FILE.csv — imports usage whole, or reports every bad line."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from billing.usage_import import UsageImportError, usage_import


class Command(BaseCommand):
    help = (
        "Import usage records from a CSV with columns account_id, date, product_code, amount "
        "[, currency]. A file with any bad row is refused whole, naming each bad line."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        if not file.is_file():
            raise CommandError(f"{file} is not a file.")
        with file.open("rb") as handle:
            try:
                batch = usage_import(file=handle, file_name=file.name)
            except UsageImportError as exc:
                for line, why in exc.errors:
                    self.stderr.write(f"{file.name}:{line}: {why}")
                rows = len({line for line, _ in exc.errors})
                raise CommandError(ngettext(
                    "Nothing was imported: %(n)s bad row.", "Nothing was imported: %(n)s bad rows.",
                    rows) % {"n": f"{rows:,}"}) from exc
        self.stdout.write(ngettext(
            "Imported %(n)s usage record (import #%(id)s).",
            "Imported %(n)s usage records (import #%(id)s).", batch.record_count,
        ) % {"n": f"{batch.record_count:,}", "id": batch.pk})
