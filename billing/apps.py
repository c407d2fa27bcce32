from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self) -> None:
        from billing import receivers
        from coupons.services import coupons_released

        coupons_released.connect(
            receivers.post_on_coupons_released, dispatch_uid="billing.post_on_coupons_released",
        )
        # The usage statistics' triggers count release days in settings.TIME_ZONE.
        from django.db.models.signals import post_migrate

        from billing.stats import on_post_migrate

        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="billing.stats_tz")
