"""Read-only admin views of templates and coupons, scoped to the BD's partners."""
from django.contrib import admin

from accounts.admin import BDScopedAdminMixin, ReadOnlyAdminMixin
from coupons.models import Coupon, CouponTemplate


@admin.register(CouponTemplate)
class CouponTemplateAdmin(BDScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "name", "partner", "kind", "face_value", "currency", "cost_bearer",
                    "issue_limit", "status", "released_count", "released_amount"]
    list_filter = ["kind", "cost_bearer", "status", "issue_limit"]
    search_fields = ["name", "partner__name"]
    list_select_related = ["partner"]


@admin.register(Coupon)
class CouponAdmin(BDScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["code", "partner", "sub_account", "template", "amount", "balance",
                    "currency", "valid_until", "status"]
    list_filter = ["status", "cost_bearer", "kind"]
    search_fields = ["code", "sub_account__account_id"]
    list_select_related = ["partner", "sub_account", "template"]
    show_full_result_count = False
