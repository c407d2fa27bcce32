from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = _("Approvals")

    def ready(self):
        from approvals import receivers  # noqa: F401
        from approvals.permissions import ensure_bd_group

        post_migrate.connect(ensure_bd_group, dispatch_uid="approvals.ensure_bd_group")
