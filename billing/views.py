"""The sub-account's Billing Management console."""
from django.views.generic import TemplateView

from couponplatform.accounts.mixins import SubAccountMixin
from coupons.models import Coupon


class CouponListView(SubAccountMixin, TemplateView):
    template_name = "billing/coupons.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        status = self.request.GET.get("status") or Coupon.Status.AVAILABLE
        if status not in Coupon.Status.values:
            status = Coupon.Status.AVAILABLE
        coupons = (
            Coupon.objects.filter(sub_account=self.sub_account, status=status)
            .select_related("template")
            .order_by("valid_until", "id")[:200]
        )
        ctx.update(coupons=coupons, status=status, statuses=Coupon.Status.choices)
        return ctx
