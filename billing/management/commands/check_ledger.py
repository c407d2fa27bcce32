"""manage.py check_ledger — verifies the money invariants; exits 1 naming each bad row."""
from django.core.management.base import BaseCommand, CommandError

from billing.ledger import ledger_check


class Command(BaseCommand):
    help = (
        "Verify the money invariants over the whole database (docs/ARCHITECTURE.md, "
        "Invariants); exit non-zero naming every row that breaks one."
    )

    def handle(self, *args, **options):
        found = ledger_check()
        for discrepancy in found:
            self.stderr.write(str(discrepancy))
        if found:
            raise CommandError(
                f"{len(found)} ledger discrepanc{'ies' if len(found) != 1 else 'y'}.",
                returncode=1,
            )
        self.stdout.write("Ledger OK: 0 discrepancies.")
