"""Tables of the billing pages."""
from decimal import Decimal

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html

from couponplatform.money import fmt
from coupons.models import Coupon

STATUS_CSS = {"available": "success", "used_up": "secondary", "expired": "warning",
              "voided": "dark"}


class CouponUsageTable(tables.Table):
    code = tables.Column()
    sub_account = tables.Column(verbose_name="Sub-account",
                                order_by=("sub_account__account_id", "id"))
    template = tables.Column(order_by=("template__name", "id"))
    cost_bearer = tables.Column(verbose_name="Cost bearer")
    amount = tables.Column(attrs={"td": {"class": "money"}, "th": {"class": "money"}})
    used = tables.Column(attrs={"td": {"class": "money"}, "th": {"class": "money"}})
    balance = tables.Column(verbose_name="Remaining",
                            attrs={"td": {"class": "money"}, "th": {"class": "money"}})
    valid_until = tables.Column(verbose_name="Validity", attrs={"td": {"class": "nowrap"}})
    status = tables.Column()
    released_at = tables.DateTimeColumn(format="Y-m-d", verbose_name="Released")
    actions = tables.Column(empty_values=(), orderable=False, verbose_name="")

    class Meta:
        model = Coupon
        fields = ("code", "sub_account", "template", "cost_bearer", "amount", "used", "balance",
                  "valid_until", "status", "released_at", "actions")
        order_by = ("-released_at",)
        attrs = {"class": "table table-sm table-hover align-middle"}

    def __init__(self, *args, can_void: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.can_void = can_void
        if not can_void:
            self.columns.hide("actions")

    def render_actions(self, record):
        if not self.can_void or record.status != Coupon.Status.AVAILABLE:
            return ""
        return format_html('<a class="btn btn-sm btn-outline-danger" href="{}">Void</a>',
                           reverse("coupon_void", args=[record.pk]))

    def render_code(self, value):
        return format_html("<code>{}</code>", value)

    def render_sub_account(self, record):
        return format_html("<code>{}</code> {}", record.sub_account.account_id,
                           record.sub_account.name)

    def render_amount(self, record):
        return fmt(record.amount, record.currency)

    def render_used(self, record):
        # SQLite hands back the computed column as a number without places.
        return fmt(Decimal(str(record.used)))

    def render_balance(self, record):
        return fmt(record.balance)

    def render_valid_until(self, record):
        return f"{record.valid_from:%Y-%m-%d} → {record.valid_until:%Y-%m-%d}"

    def render_status(self, record):
        return format_html('<span class="badge text-bg-{}">{}</span>',
                           STATUS_CSS.get(record.status, "secondary"),
                           record.get_status_display())

    # Every ordering ends on the unique id, so pages never repeat or skip a row.
    def _order(self, queryset, is_descending, field):
        prefix = "-" if is_descending else ""
        return queryset.order_by(f"{prefix}{field}", f"{prefix}id"), True

    def order_released_at(self, queryset, is_descending):
        return self._order(queryset, is_descending, "released_at")

    def order_code(self, queryset, is_descending):
        return self._order(queryset, is_descending, "code")

    def order_amount(self, queryset, is_descending):
        return self._order(queryset, is_descending, "amount")

    def order_used(self, queryset, is_descending):
        return self._order(queryset, is_descending, "used")

    def order_balance(self, queryset, is_descending):
        return self._order(queryset, is_descending, "balance")

    def order_valid_until(self, queryset, is_descending):
        return self._order(queryset, is_descending, "valid_until")

    def order_status(self, queryset, is_descending):
        return self._order(queryset, is_descending, "status")

    def order_cost_bearer(self, queryset, is_descending):
        return self._order(queryset, is_descending, "cost_bearer")
