"""Print a new API key of a partner, for scripts and operators: the secret is shown here
once. The key is made by one of the partner's admins (audited as theirs)."""
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Partner, PartnerMembership
from api.keys import api_key_create
from api.models import ApiKey
from couponplatform.exceptions import ApplicationError

ROLES = {"read-only": ApiKey.Role.READ_ONLY, "operator": ApiKey.Role.OPERATOR}


class Command(BaseCommand):
    help = "Make an API key for a partner and print it (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("--partner", required=True, help="The partner's id or exact name.")
        parser.add_argument("--role", required=True, choices=sorted(ROLES))
        parser.add_argument("--name", required=True)

    def handle(self, *args, partner, role, name, **options):
        found = (Partner.objects.filter(pk=int(partner)) if partner.isdigit()
                 else Partner.objects.filter(name=partner)).first()
        if found is None:
            raise CommandError(f"No partner {partner!r}.")
        admin = (PartnerMembership.objects.filter(
            partner=found, role=PartnerMembership.Role.ADMIN, user__is_active=True,
            user__api_key__isnull=True).select_related("user").order_by("pk").first())
        if admin is None:
            raise CommandError(f"{found.name} has no active admin to make the key.")
        try:
            key, token = api_key_create(partner=found, acting_user=admin.user, name=name,
                                        role=ROLES[role])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"{key.get_role_display()} key “{key.name}” of {found.name} "
                          f"({key.display_prefix}), made as {admin.user.username}:")
        self.stdout.write(token)
