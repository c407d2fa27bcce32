from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = _("Partner API")

    def ready(self) -> None:
        # Webhook events are written by the transitions' one movers (docs/API.md, Webhooks).
        from api import receivers
        from approvals.transitions import issuance_request_moved
        from coupons.transitions import coupons_moved

        issuance_request_moved.connect(receivers.request_moved,
                                       dispatch_uid="api.webhooks.request_moved")
        coupons_moved.connect(receivers.coupons_moved, dispatch_uid="api.webhooks.coupons_moved")
