"""manage.py seed_demo: idempotent demo data and the demo logins."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from demo.seeding import DEMO, demo_password, print_logins, seed


class Command(BaseCommand):
    help = "Create the demo partners, users, sub-accounts and templates (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true",
                            help="Run even with DEBUG off (never on a real platform).")
        parser.add_argument("--accounts", type=int, default=DEMO.customers,
                            help=f"Customers under the demo distributor (default "
                                 f"{DEMO.customers}).")

    def handle(self, *args, force=False, accounts=DEMO.customers, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates users with a known password; it refuses to run with DEBUG "
                "off. Pass --force if this really is a demo installation.",
            )
        if accounts < 1 or accounts > 200_000:
            raise CommandError("--accounts must be between 1 and 200000.")
        password = demo_password()
        # The demo requests would otherwise print their notification emails to the console.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
            seed(password=password, accounts=accounts, log=self.stdout.write)
        hint = "demo" if password == "demo" else "the value of DEMO_PASSWORD"
        print_logins(hint, log=self.stdout.write)
