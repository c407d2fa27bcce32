"""The Approval Status table."""
import django_tables2 as tables
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from approvals.services import SYSTEM_REASONS
from couponplatform.money import fmt
from couponplatform.times import moment_text
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


def person(user) -> str:
    """How a user is named to partners: full name, else username."""
    return (user.get_full_name() or user.username) if user is not None else ""


def when(moment) -> str:
    """A moment as people read it (couponplatform/times.py), or nothing."""
    return moment_text(moment, default="")


def decision(record) -> tuple[str, str, str]:
    """(what, whom, when) of the request's decision or its end, for partners: who approved
    or rejected it (or the system), who cancelled or withdrew it, or whom it waits for;
    `what` reads before the name ("Rejected by"). The Approval Status table and the
    request's page both say it this way."""
    Status = IssuanceRequest.Status
    if record.status in (Status.CANCELLED, Status.WITHDRAWN):
        name = getattr(record, "closed_by_name", "") or getattr(record, "closed_by_username", "")
        cancelled = record.status == Status.CANCELLED
        if name:
            what = _("Cancelled by") if cancelled else _("Withdrawn by")
        else:
            what = _("Cancelled") if cancelled else _("Withdrawn")
        return what, name or "", when(getattr(record, "closed_at", None))
    if record.decided_by_id:
        what = _("Rejected by") if record.status == Status.REJECTED else _("Approved by")
        return what, person(record.decided_by), when(record.decided_at)
    if record.route == IssuanceRequest.Route.AUTO and record.decided_at:
        return _("Auto-approved by"), _("the system"), when(record.decided_at)
    if record.status == Status.PENDING:
        bd = record.partner.bd if record.partner.bd_id else None
        return _("Waiting for"), person(bd) or _("your BD"), ""
    return "", "", ""


STATUS_LABELS = dict(IssuanceRequest.Status.choices)


def history_row(entry) -> dict:
    """One audit row of a request as its page lists it: when, who, what, why."""
    before = (entry.before or {}).get("status")
    after = (entry.after or {}).get("status")
    if entry.action == "request.submit":
        what = _("Submitted: %(status)s") % {"status": STATUS_LABELS.get(after, after)}
    elif before and after:
        what = f"{STATUS_LABELS.get(before, before)} → {STATUS_LABELS.get(after, after)}"
    else:
        what = entry.action
    # A reason the system wrote is said in the reader's language; a person's as written.
    reason = _(entry.reason) if entry.reason in SYSTEM_REASONS else entry.reason
    return {"at": when(entry.created_at), "who": person(entry.actor) or _("the system"),
            "what": what, "reason": reason}


def status_badge(request_obj) -> str:
    return format_html(
        '<span class="badge text-bg-{}">{}</span>',
        STATUS_CSS.get(request_obj.status, "secondary"), request_obj.get_status_display(),
    )


class IssuanceRequestTable(tables.Table):
    id = tables.Column(verbose_name=gettext_lazy("Request"), attrs={"td": {"class": "nowrap"}})
    template = tables.Column(verbose_name=gettext_lazy("Template"), order_by=("template__name",))
    recipient_count = tables.Column(verbose_name=gettext_lazy("Accounts"), attrs={
        "td": {"class": "money"}, "th": {"class": "money"}})
    total_amount = tables.Column(verbose_name=gettext_lazy("Total"), attrs={
        "td": {"class": "money"}, "th": {"class": "money"}})
    status = tables.Column(verbose_name=gettext_lazy("Status"))
    submitted_at = tables.DateTimeColumn(format="Y-m-d H:i T",
                                         verbose_name=gettext_lazy("Submitted"))
    decided_by = tables.Column(verbose_name=gettext_lazy("Decision"), empty_values=(),
                               order_by=("decided_at", "id"))
    actions = tables.Column(empty_values=(), orderable=False, verbose_name="")

    class Meta:
        model = IssuanceRequest
        # Cost bearer and route read under the total and the decision: the table fits
        # 1280 px without a sideways scroll.
        fields = ("id", "template", "recipient_count", "total_amount", "status",
                  "decided_by", "submitted_at", "actions")
        order_by = ("-submitted_at",)
        attrs = {"class": "table table-sm table-hover align-middle"}

    def __init__(self, *args, can_write: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.can_write = can_write

    def render_id(self, record):
        return format_html('<a href="{}">{}</a>', record.get_absolute_url(), record.number)

    def render_decided_by(self, record):
        what, who, at = decision(record)
        if not what:
            return "—"
        line = format_html("{} <strong>{}</strong>", what, who) if who else what
        if record.status == IssuanceRequest.Status.PENDING:
            line = format_html('<span class="text-muted">{}</span>', line)
        if at:
            line = format_html('{}<br><small class="text-muted text-nowrap">{}</small>', line, at)
        if record.reason and record.status in (IssuanceRequest.Status.REJECTED,
                                               IssuanceRequest.Status.FAILED):
            line = format_html(
                '{}<br><small class="request-reason" title="{}">{}: {}</small>', line,
                record.reason, _("Reason"), truncatechars(record.reason, 80),
            )
        return line

    def render_submitted_at(self, record):
        return format_html('<span class="text-nowrap">{}</span><br><small class="text-muted">'
                           '{}</small>', when(record.submitted_at), person(record.submitted_by))

    def render_actions(self, record):
        if not self.can_write:
            return ""
        if record.status == IssuanceRequest.Status.PENDING:
            return format_html('<a class="btn btn-sm btn-outline-danger" href="{}">{}</a>',
                               reverse("approvals:cancel", args=[record.pk]), _("Cancel"))
        if record.status == IssuanceRequest.Status.FAILED:
            return format_html('<a class="btn btn-sm btn-primary" href="{}">{}</a>',
                               reverse("approvals:retry", args=[record.pk]), _("Retry"))
        return ""

    def render_template(self, record):
        return format_html("{} <small class='text-muted'>#{}</small>",
                           record.template.name, record.template_id)

    def render_total_amount(self, record):
        return format_html('{}<br><small class="text-muted">{}</small>',
                           fmt(record.total_amount, record.currency),
                           record.get_cost_bearer_display())

    def render_recipient_count(self, record):
        return f"{record.recipient_count:,}"

    def render_status(self, record):
        return status_badge(record)

    def order_submitted_at(self, queryset, is_descending):
        prefix = "-" if is_descending else ""
        return queryset.order_by(f"{prefix}submitted_at", f"{prefix}id"), True
