from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self):
        from approvals import receivers  # noqa: F401
        from approvals.permissions import ensure_bd_group

        post_migrate.connect(ensure_bd_group, dispatch_uid="approvals.ensure_bd_group")
