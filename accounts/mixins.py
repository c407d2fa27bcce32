"""The one place where a request is tied to its tenant.

Partner views take the partner from the signed-in user's membership, never from the
request; the selectors they call are scoped to that partner.
"""
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from accounts.models import PartnerMembership
from accounts.permissions import COUPON_FUNCTION_OFF
from accounts.selectors import membership_for, subaccount_membership_for


class PartnerMixin(LoginRequiredMixin):
    """A signed-in partner user whose partner has the coupon function on.

    Sets self.partner and self.membership. `write_roles` limits unsafe methods; set
    `roles` to limit every method.
    """

    roles: tuple[str, ...] = (
        PartnerMembership.Role.ADMIN, PartnerMembership.Role.OPERATOR,
        PartnerMembership.Role.VIEWER,
    )
    write_roles: tuple[str, ...] = PartnerMembership.WRITE_ROLES
    require_coupon_function = True

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        membership = membership_for(request.user)
        if membership is None:
            raise PermissionDenied("Only partner users can open the partner console.")
        self.membership = membership
        self.partner = membership.partner
        if self.require_coupon_function and not self.partner.coupon_enabled:
            return render(
                request, "coupons/function_off.html",
                {"message": COUPON_FUNCTION_OFF, "bd": self.partner.bd}, status=403,
            )
        if membership.role not in self.roles:
            raise PermissionDenied("Your role does not allow this page.")
        if request.method not in ("GET", "HEAD", "OPTIONS") and membership.role not in (
            self.write_roles
        ):
            raise PermissionDenied("Your role can view but not change this.")
        return super().dispatch(request, *args, **kwargs)


class SubAccountMixin(LoginRequiredMixin):
    """A signed-in sub-account user; sets self.sub_account."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        membership = subaccount_membership_for(request.user)
        if membership is None:
            raise PermissionDenied("Only sub-account users can open Billing Management.")
        self.sub_account = membership.sub_account
        return super().dispatch(request, *args, **kwargs)
