"""The BD's workspace: the pending queue with approve and reject, and every request.

Each action re-checks each request inside its row lock (status, the BD's right to it)
through the transition services, and reports what it did and what it skipped.
"""
from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.admin import BDScopedAdminMixin
from accounts.models import Partner
from accounts.permissions import bd_partners_q, user_is_bd_of, user_may_use_bd_admin
from approvals import selectors, services
from approvals.models import Approval, PendingRequest
from couponplatform import ratelimit
from couponplatform.exceptions import ApplicationError
from couponplatform.money import fmt
from couponplatform.times import moment_text
from coupons.models import IssuanceRequest


class RejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=services.REASON_MAX,
        label=gettext_lazy("Reason"),
        help_text=gettext_lazy("Required. The partner sees this reason."),
    )


def decision_text(approval: Approval) -> str:
    """One decision as the BD reads it: what, who, when (couponplatform/times.py), why."""
    if approval.status == Approval.Status.OPEN:
        who = approval.assigned_bd or _("no BD assigned")
        return _("%(status)s: %(who)s, since %(since)s") % {
            "status": approval.get_status_display(), "who": who,
            "since": moment_text(approval.created_at)}
    who = approval.decided_by or _("the system")
    text = _("%(status)s by %(who)s, %(when)s") % {
        "status": approval.get_status_display(), "who": who,
        "when": moment_text(approval.decided_at)}
    if approval.reason:
        return _("%(decision)s: %(reason)s") % {"decision": text, "reason": approval.reason}
    return text


class IssuanceRequestAdminBase(BDScopedAdminMixin, admin.ModelAdmin):
    """A request's pages in the admin. The lists fit 1,280 px without a sideways scroll
    (the admin's navigation sidebar is off, couponplatform/urls.py): amounts and times
    never wrap, the headers are short and the budget column is explained above the list."""

    changelist_title = gettext_lazy("Issuance requests of your partners")
    list_display = ["id", "partner_number_display", "partner_name", "template_link",
                    "accounts_count", "total_display", "budget_left_display", "cost_bearer",
                    "status", "submitted_display"]
    view_on_site = False
    list_filter = ["status", "cost_bearer", "route", "currency", "submitted_at"]
    search_fields = ["=id", "template__name", "partner__name"]
    list_select_related = ["partner", "template", "submitted_by", "partner_number"]
    ordering = ["-submitted_at", "-id"]
    actions = ["approve_selected", "reject_selected"]
    list_per_page = 50
    change_form_template = "admin/approvals/request_change_form.html"
    change_list_template = "admin/approvals/request_change_list.html"
    readonly_fields = ["id", "partner_number_display", "partner", "template_link", "status",
                       "route", "cost_bearer", "total_display", "budget_left_display",
                       "submitted_by", "submitted_at", "waiting_display", "decided_by",
                       "decided_at", "reason", "issued_at", "history_display",
                       "accounts_display"]
    fields = readonly_fields

    def get_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and obj.status == IssuanceRequest.Status.PENDING:
            hidden = {"decided_by", "decided_at", "reason", "issued_at", "history_display"}
            fields = [f for f in fields if f not in hidden]
        else:
            # What is left of the budget speaks to a decision still to take.
            fields = [f for f in fields if f not in ("waiting_display", "budget_left_display")]
        if obj is not None and obj.route == IssuanceRequest.Route.AUTO:
            fields = [f for f in fields if f != "decided_by"]
        return fields

    def get_queryset(self, request):
        return selectors.with_budget_left(super().get_queryset(request))

    @admin.display(description=gettext_lazy("partner's number"),
                   ordering="partner_number__number")
    def partner_number_display(self, obj):
        """What the partner calls the request (approvals/numbers.py); the id is the
        platform's."""
        return obj.number

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Nothing on a request is edited in the admin: the page is read-only (a POST to it is
        # refused) and decisions go through Approve and Reject, which call the services.
        return False

    def has_decide_permission(self, request):
        return user_may_use_bd_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return user_may_use_bd_admin(request.user)

    def has_module_permission(self, request):
        return user_may_use_bd_admin(request.user)

    @admin.display(description=gettext_lazy("Partner"), ordering="partner__name")
    def partner_name(self, obj):
        # A method, not the field: the admin keeps a related object's name on one line.
        return obj.partner.name

    @admin.display(description=gettext_lazy("Template"), ordering="template__name")
    def template_link(self, obj):
        return obj.template.name

    @admin.display(description=gettext_lazy("Accounts"), ordering="recipient_count")
    def accounts_count(self, obj):
        return f"{obj.recipient_count:,}"

    @admin.display(description=gettext_lazy("Total"), ordering="total_amount")
    def total_display(self, obj):
        return format_html('<span class="nowrap">{} × {} = {}</span>', fmt(obj.unit_value),
                           f"{obj.recipient_count:,}", fmt(obj.total_amount, obj.currency))

    @admin.display(description=gettext_lazy("Budget left"))
    def budget_left_display(self, obj):
        # What the partner's platform budget has left once every pending request's
        # reservation, this one's included, is counted (the list says so above it).
        left = getattr(obj, "budget_left", None)
        if obj.cost_bearer != "platform":
            return "—"
        if left is None:
            return _("none granted")
        return format_html('<span class="nowrap">{}</span>', fmt(max(left, 0), obj.currency))

    @admin.display(description=gettext_lazy("Submitted"), ordering="submitted_at")
    def submitted_display(self, obj):
        return format_html('<span class="nowrap">{}</span>', moment_text(obj.submitted_at))

    @admin.display(description=gettext_lazy("Waiting for"))
    def waiting_display(self, obj):
        bd = obj.partner.bd
        who = (_("%(bd)s, BD of %(partner)s") % {"bd": bd, "partner": obj.partner.name}
               if bd else _("no BD: the partner has none"))
        return _("%(who)s, since %(since)s") % {"who": who,
                                                "since": moment_text(obj.submitted_at)}

    @admin.display(description=gettext_lazy("Accounts"))
    def accounts_display(self, obj):
        recipients = selectors.first_recipients(obj, limit=100)
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r.sub_account.account_id, r.sub_account.name, r.sub_account.get_type_display())
             for r in recipients),
        )
        more = obj.recipient_count - 100
        tail = format_html("<p>{}</p>", ngettext("… and %(n)s more.", "… and %(n)s more.",
                                                 more) % {"n": more}) if more > 0 else ""
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>{}", _("Account ID"), _("Name"), _("Type"), rows, tail,
        )

    @admin.display(description=gettext_lazy("Decisions"))
    def history_display(self, obj):
        return format_html_join(
            "", "<div>{}</div>", ((decision_text(a),) for a in selectors.approval_list(obj)),
        ) or "—"

    # -- totals above the list -----------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        extra_context = {"title": self.changelist_title,
                         "budget_note": "budget_left_display" in self.list_display,
                         **(extra_context or {})}
        response = super().changelist_view(request, extra_context)
        cl = getattr(response, "context_data", {}).get("cl") if hasattr(
            response, "context_data") else None
        if cl is not None:
            response.context_data["totals"] = selectors.totals_per_currency(cl.queryset)
        return response

    # -- approve and reject --------------------------------------------------------------

    def get_urls(self):
        return [
            path("<int:pk>/approve/", self.admin_site.admin_view(self.approve_view),
                 name=self._urlname("approve")),
            path("<int:pk>/reject/", self.admin_site.admin_view(self.reject_view),
                 name=self._urlname("reject")),
        ] + super().get_urls()

    def _get_scoped(self, request, pk):
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def approve_view(self, request, pk):
        obj = self._get_scoped(request, pk)
        if request.method != "POST":
            return HttpResponseRedirect(reverse(f"admin:{self._urlname('change')}", args=[pk]))
        if self._rate_limited(request, 1):
            return HttpResponseRedirect(reverse(f"admin:{self._urlname('change')}", args=[pk]))
        try:
            services.approval_approve(request_id=obj.pk, acting_user=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, _("Request %(number)s (#%(id)s) approved; its coupons "
                                         "are being released.")
                              % {"number": obj.number, "id": obj.pk}, messages.SUCCESS)
        # The request has left the pending queue: show it where every status is listed.
        return HttpResponseRedirect(reverse("admin:coupons_issuancerequest_change", args=[pk]))

    def reject_view(self, request, pk):
        obj = self._get_scoped(request, pk)
        return self._reject_page(request, [obj])

    def _urlname(self, view):
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

    def _reject_page(self, request, objs):
        form = RejectForm(request.POST if "reason" in request.POST else None)
        if form.is_valid():
            done, skipped = [], []
            for obj in objs:
                try:
                    services.approval_reject(request_id=obj.pk, acting_user=request.user,
                                             reason=form.cleaned_data["reason"])
                    done.append(obj.pk)
                except ApplicationError as exc:
                    skipped.append(f"#{obj.pk}: {exc.message}")
            self._report(request, ngettext(
                "Rejected %(n)s request: %(ids)s.", "Rejected %(n)s requests: %(ids)s.",
                len(done)), done, skipped)
            return HttpResponseRedirect(reverse(f"admin:{self._urlname('changelist')}"))
        if "reason" in request.POST and not form.is_valid():
            self.message_user(request, _("Give a reason: the partner sees it."), messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Reject issuance requests"),
            "objects": objs,
            "form": form,
            "opts": self.opts,
            "action_ids": [o.pk for o in objs],
        }
        return TemplateResponse(request, "admin/approvals/reject.html", context)

    def _report(self, request, done_text, done, skipped):
        if done:
            self.message_user(request, done_text % {
                "n": len(done), "ids": ", ".join(f"#{pk}" for pk in done),
            }, messages.SUCCESS)
        for line in skipped:
            self.message_user(request, _("Skipped %(request)s") % {"request": line},
                              messages.WARNING)

    def _rate_limited(self, request, count: int) -> bool:
        wait = 0
        for _attempt in range(count):
            wait = ratelimit.hit(ratelimit.APPROVALS, f"user:{request.user.pk}") or wait
        if wait:
            self.message_user(request, _("You have approved many requests in a short time.")
                              + " " + ratelimit.wait_text(wait), messages.ERROR)
        return bool(wait)

    @admin.action(description=gettext_lazy("Approve selected requests"), permissions=["decide"])
    def approve_selected(self, request, queryset):
        if self._rate_limited(request, queryset.count()):
            return
        done, skipped = [], []
        for obj in queryset.order_by("pk"):
            try:
                services.approval_approve(request_id=obj.pk, acting_user=request.user)
                done.append(obj.pk)
            except ApplicationError as exc:
                skipped.append(f"#{obj.pk}: {exc.message}")
        self._report(request, ngettext(
            "Approved %(n)s request: %(ids)s.", "Approved %(n)s requests: %(ids)s.",
            len(done)), done, skipped)

    @admin.action(description=gettext_lazy("Reject selected requests"), permissions=["decide"])
    def reject_selected(self, request, queryset):
        return self._reject_page(request, list(queryset.order_by("pk")))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404(_("No such request among your partners' requests."))
        extra_context = extra_context or {}
        extra_context.update(
            # One heading: the request, what it issues and its status (Django would add the
            # object's name again beneath the title).
            title=_("Request %(number)s (#%(id)s): %(template)s × %(count)s — %(status)s") % {
                "number": obj.number, "id": obj.pk, "template": obj.template.name,
                "count": f"{obj.recipient_count:,}",
                "status": str(obj.get_status_display()).lower()},
            subtitle=None,
            can_decide=obj.status == IssuanceRequest.Status.PENDING
            and user_is_bd_of(request.user, obj.partner)
            and obj.submitted_by_id != request.user.pk,
            approve_url=reverse(f"admin:{self._urlname('approve')}", args=[obj.pk]),
            reject_url=reverse(f"admin:{self._urlname('reject')}", args=[obj.pk]),
            show_save=False, show_save_and_continue=False, show_save_and_add_another=False,
            show_delete=False,
        )
        return super().change_view(request, object_id, form_url, extra_context)


class OwnPartnerFilter(admin.SimpleListFilter):
    """Lists only the partners the BD may see, never other BDs' partners."""

    title = gettext_lazy("partner")
    parameter_name = "partner"

    def lookups(self, request, model_admin):
        partners = Partner.objects.filter(bd_partners_q(request.user))
        return [(str(p.pk), p.name) for p in partners.order_by("name")]

    def queryset(self, request, queryset):
        # isdecimal, not isdigit: "²" is a digit that int() refuses (a 500).
        if self.value() and self.value().isdecimal():
            return queryset.filter(partner_id=int(self.value()))
        return queryset


@admin.register(PendingRequest)
class PendingRequestAdmin(IssuanceRequestAdminBase):
    changelist_title = gettext_lazy(
        "Pending approval queue: tick requests to approve or reject, or open one")
    list_display = ["id", "partner_number_display", "partner_name", "template_link",
                    "accounts_count", "total_display", "budget_left_display", "cost_bearer",
                    "submitted_display"]
    list_filter = ["cost_bearer", OwnPartnerFilter, "submitted_at"]


@admin.register(IssuanceRequest)
class IssuanceRequestAdmin(IssuanceRequestAdminBase):
    # Every status: a decided request's budget left says nothing (the queue shows it).
    list_display = ["id", "partner_name", "template_link", "accounts_count", "total_display",
                    "cost_bearer", "status", "submitted_display"]
    list_filter = ["status", "cost_bearer", "route", OwnPartnerFilter, "submitted_at"]


@admin.register(Approval)
class ApprovalAdmin(BDScopedAdminMixin, admin.ModelAdmin):
    partner_path = "request__partner"
    list_display = ["request", "status", "assigned_bd", "decided_by", "decided_at"]
    list_filter = ["status"]
    list_select_related = ["request", "assigned_bd", "decided_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_module_permission(self, request):
        # The decisions show on each request; the raw table is for platform operators.
        return request.user.is_superuser
