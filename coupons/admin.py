"""Read-only admin views of templates and coupons, scoped to the BD's partners."""
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin import BDScopedAdminMixin, ReadOnlyAdminMixin
from coupons.models import Coupon, CouponTemplate


@admin.register(CouponTemplate)
class CouponTemplateAdmin(BDScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "name", "partner", "kind", "face_value", "currency", "cost_bearer",
                    "issue_limit", "status", "released_count", "released_amount"]
    list_filter = ["kind", "cost_bearer", "status", "issue_limit"]
    search_fields = ["name", "partner__name"]
    list_select_related = ["partner"]
    # Its page is the partner console's, which no BD or platform operator opens.
    view_on_site = False


@admin.register(Coupon)
class CouponAdmin(BDScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["code", "partner", "sub_account", "template", "amount", "balance",
                    "currency", "valid_until", "status", "voided_at", "voided_by"]
    list_filter = ["status", "cost_bearer", "kind"]
    search_fields = ["code", "sub_account__account_id"]
    list_select_related = ["partner", "sub_account", "template", "voided_by"]
    fieldsets = [
        (None, {"fields": ["code", "partner", "sub_account", "template", "request",
                           "recipient", "status"]}),
        (_("Value"), {"fields": ["kind", "cost_bearer", "currency", "amount", "balance",
                              "voided_amount", "discount_rate", "uses_total", "uses_left",
                              "min_bill_amount", "all_products", "product_codes"]}),
        (_("Validity"), {"fields": ["valid_from", "valid_until", "released_at"]}),
        (_("Voided"), {"fields": ["voided_at", "voided_by", "void_reason"]}),
    ]
    show_full_result_count = False
