"""The one place where a request is tied to its tenant.

Partner views take the partner from the signed-in user's membership, never from the
request; the selectors they call are scoped to that partner.
"""
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.shortcuts import render
from django.utils.translation import gettext as _

from accounts.permissions import COUPON_FUNCTION_OFF, partner_roles_for, user_may
from accounts.selectors import membership_for, subaccount_membership_for
from couponplatform import logs


class PartnerMixin(LoginRequiredMixin):
    """A signed-in partner user whose partner has the coupon function on.

    Sets self.partner and self.membership. `page_action` (a key of
    accounts/permissions.ACTIONS) is what the page does, and says which roles may open it;
    `post_action`, when set, which roles may send it a POST (by default the same).
    """

    page_action: str = ""
    post_action: str = ""
    require_coupon_function = True

    def may(self, action: str) -> bool:
        """Whether the signed-in user may do `action` for this page's partner."""
        return user_may(self.request.user, action, self.partner)

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not self.page_action:
            raise ImproperlyConfigured(
                f"{type(self).__name__} names no action of accounts/permissions.ACTIONS")
        membership = membership_for(request.user)
        if membership is None:
            raise PermissionDenied(_("Only partner users can open the partner console."))
        self.membership = membership
        self.partner = membership.partner
        logs.annotate(request, partner=self.partner.pk)
        if self.require_coupon_function and not self.partner.coupon_enabled:
            return render(
                request, "coupons/function_off.html",
                {"message": _(COUPON_FUNCTION_OFF), "bd": self.partner.bd}, status=403,
            )
        if membership.role not in partner_roles_for(self.page_action):
            raise PermissionDenied(_("Your role does not allow this page."))
        if request.method not in ("GET", "HEAD", "OPTIONS") and membership.role not in (
            partner_roles_for(self.post_action or self.page_action)
        ):
            raise PermissionDenied(_("Your role can view but not change this."))
        return super().dispatch(request, *args, **kwargs)


class SubAccountMixin(LoginRequiredMixin):
    """A signed-in sub-account user; sets self.sub_account."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        membership = subaccount_membership_for(request.user)
        if membership is None or not user_may(request.user, "billing_view"):
            raise PermissionDenied(_("Only sub-account users can open Billing Management."))
        self.sub_account = membership.sub_account
        logs.annotate(request, partner=self.sub_account.partner_id,
                      sub_account=self.sub_account.pk)
        return super().dispatch(request, *args, **kwargs)
