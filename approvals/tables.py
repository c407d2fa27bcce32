"""The Approval Status table."""
import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html

from couponplatform.money import fmt
from coupons.models import IssuanceRequest

STATUS_CSS = {
    IssuanceRequest.Status.PENDING: "warning",
    IssuanceRequest.Status.APPROVED: "info",
    IssuanceRequest.Status.ISSUED: "success",
    IssuanceRequest.Status.FAILED: "danger",
    IssuanceRequest.Status.REJECTED: "danger",
    IssuanceRequest.Status.CANCELLED: "secondary",
    IssuanceRequest.Status.WITHDRAWN: "secondary",
}


def status_badge(request_obj) -> str:
    return format_html(
        '<span class="badge text-bg-{}">{}</span>',
        STATUS_CSS.get(request_obj.status, "secondary"), request_obj.get_status_display(),
    )


class IssuanceRequestTable(tables.Table):
    id = tables.Column(verbose_name="Request")
    template = tables.Column(verbose_name="Template", order_by=("template__name",))
    recipient_count = tables.Column(verbose_name="Accounts")
    total_amount = tables.Column(verbose_name="Total")
    cost_bearer = tables.Column(verbose_name="Cost bearer")
    route = tables.Column()
    status = tables.Column()
    submitted_at = tables.DateTimeColumn(format="Y-m-d H:i T", verbose_name="Submitted")
    decided_by = tables.Column(verbose_name="Approver", empty_values=())
    actions = tables.Column(empty_values=(), orderable=False, verbose_name="")

    class Meta:
        model = IssuanceRequest
        fields = ("id", "template", "recipient_count", "total_amount", "cost_bearer", "route",
                  "status", "submitted_at", "decided_by", "actions")
        order_by = ("-submitted_at",)
        attrs = {"class": "table table-sm table-hover align-middle"}

    def __init__(self, *args, can_write: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.can_write = can_write

    def render_id(self, record):
        return format_html('<a href="{}">#{}</a>', record.get_absolute_url(), record.pk)

    def render_decided_by(self, record):
        if record.decided_by_id:
            return record.decided_by.username
        if record.route == IssuanceRequest.Route.AUTO and record.decided_at:
            return "the system"
        if record.status == IssuanceRequest.Status.PENDING and record.partner.bd_id:
            return format_html('<span class="text-muted">waiting for {}</span>',
                               record.partner.bd.username)
        return "—"

    def render_actions(self, record):
        if not self.can_write:
            return ""
        if record.status == IssuanceRequest.Status.PENDING:
            return format_html('<a class="btn btn-sm btn-outline-danger" href="{}">Cancel</a>',
                               reverse("approvals:cancel", args=[record.pk]))
        if record.status == IssuanceRequest.Status.FAILED:
            return format_html('<a class="btn btn-sm btn-primary" href="{}">Retry</a>',
                               reverse("approvals:retry", args=[record.pk]))
        return ""

    def render_template(self, record):
        return format_html("{} <small class='text-muted'>#{}</small>",
                           record.template.name, record.template_id)

    def render_total_amount(self, record):
        return fmt(record.total_amount, record.currency)

    def render_status(self, record):
        return status_badge(record)

    def order_submitted_at(self, queryset, is_descending):
        prefix = "-" if is_descending else ""
        return queryset.order_by(f"{prefix}submitted_at", f"{prefix}id"), True
