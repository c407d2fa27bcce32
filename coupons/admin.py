"""Read-only admin views of templates and coupons, scoped to the BD's partners."""
from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.admin import BDScopedAdminMixin, ReadOnlyAdminMixin
from couponplatform.admin_money import money_display
from couponplatform.times import moment_text
from coupons import terms
from coupons.models import Coupon, CouponTemplate


@admin.register(CouponTemplate)
class CouponTemplateAdmin(BDScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "name", "partner", "kind", "value", "cost_bearer",
                    "issue_limit", "status", "released_count", "released_amount_money"]
    list_filter = ["kind", "cost_bearer", "status", "issue_limit"]
    search_fields = ["name", "partner__name"]
    list_select_related = ["partner"]
    # Its page is the partner console's, which no BD or platform operator opens.
    view_on_site = False

    @admin.display(description=_("Value"))
    def value(self, obj):
        return terms.value_html(obj)  # a discount as its rate and cap, as the console shows it

    released_amount_money = money_display("released_amount", description=_("Released amount"))


@admin.register(Coupon)
class CouponAdmin(BDScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["code", "partner", "sub_account", "template", "value", "remaining",
                    "valid_until", "status", "voided"]
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

    @admin.display(description=_("Value"), ordering="amount")
    def value(self, obj):
        return terms.value_html(obj)  # a discount as its rate and cap, not cap × uses

    @admin.display(description=_("Voided"), ordering="voided_at")
    def voided(self, obj):
        # Who and when in one column, the moment on its own line: ten columns fit 1,280 px.
        if obj.voided_at is None:
            return "—"
        return format_html('{}<br><span class="nowrap">{}</span>', obj.voided_by or "—",
                           moment_text(obj.voided_at))

    @admin.display(description=_("Remaining"), ordering="balance")
    def remaining(self, obj):
        return terms.remaining_html(obj)
