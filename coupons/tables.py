"""Tables of the partner console."""
import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html

from couponplatform.money import fmt
from coupons.models import CouponKind, CouponTemplate


class CouponTemplateTable(tables.Table):
    id = tables.Column(verbose_name="ID")
    name = tables.LinkColumn("coupons:template_detail", args=[tables.A("pk")])
    kind = tables.Column()
    value = tables.Column(empty_values=(), orderable=False, verbose_name="Value")
    cost_bearer = tables.Column(verbose_name="Cost bearer")
    issue_limit = tables.Column(verbose_name="Issue limit")
    validity = tables.Column(empty_values=(), orderable=False)
    released_count = tables.Column(verbose_name="Issued", attrs={"td": {"class": "money"}})
    status = tables.Column()
    created_at = tables.DateTimeColumn(format="Y-m-d", verbose_name="Created")
    actions = tables.Column(empty_values=(), orderable=False, verbose_name="")

    class Meta:
        model = CouponTemplate
        fields = ("id", "name", "kind", "value", "cost_bearer", "issue_limit", "validity",
                  "released_count", "status", "created_at")
        order_by = ("-created_at",)
        attrs = {"class": "table table-sm table-hover align-middle"}

    def render_value(self, record):
        if record.kind == CouponKind.DISCOUNT:
            cap = fmt(record.face_value, record.currency)
            rate = record.discount_rate.normalize()
            return f"{rate:f} % off, up to {cap}, {record.discount_uses} uses"
        text = fmt(record.face_value, record.currency)
        if record.kind == CouponKind.THRESHOLD:
            text += f" on lines ≥ {fmt(record.min_bill_amount, record.currency)}"
        return text

    def render_validity(self, record):
        if record.validity_type == CouponTemplate.ValidityType.FIXED:
            return f"{record.valid_from:%Y-%m-%d} → {record.valid_until:%Y-%m-%d}"
        return f"{record.valid_days} days from release"

    def render_released_count(self, record):
        if record.release_cap_count:
            return f"{record.released_count:,} of {record.release_cap_count:,}"
        return f"{record.released_count:,}"

    def render_status(self, value, record):
        css = "success" if record.status == CouponTemplate.Status.ACTIVE else "secondary"
        return format_html('<span class="badge text-bg-{}">{}</span>', css, value)

    def render_actions(self, record):
        if record.status != CouponTemplate.Status.ACTIVE:
            return ""
        return format_html(
            '<a class="btn btn-sm btn-primary" href="{}">Issue Coupon</a>',
            reverse("coupons:issue", args=[record.pk]),
        )

    def order_created_at(self, queryset, is_descending):
        prefix = "-" if is_descending else ""
        return queryset.order_by(f"{prefix}created_at", f"{prefix}id"), True
