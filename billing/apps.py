from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from billing import receivers
        from coupons.services import coupons_released

        coupons_released.connect(
            receivers.post_on_coupons_released, dispatch_uid="billing.post_on_coupons_released",
        )
