"""The partner's Coupon Usage: the list with its filters, totals, chart and exports, a
coupon's page and the void. The sub-account's pages are in account_views.py."""
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import EmptyPage, Paginator
from django.shortcuts import redirect
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import FormView, TemplateView
from django_filters.views import FilterView
from django_tables2.paginators import LazyPaginator

from accounts.mixins import PartnerMixin
from accounts.models import PartnerMembership
from billing import coupon_status, selectors
from billing.chart import daily_series
from billing.exports import csv_response, xlsx_response
from billing.filters import CouponUsageFilter
from billing.forms import CouponVoidForm
from billing.tables import CouponUsageTable
from couponplatform.db import keyset_iterate
from couponplatform.exceptions import ApplicationError, PermissionDeniedError
from couponplatform.languages import in_language
from couponplatform.money import fmt, quantize
from couponplatform.paging import BoundedTableMixin
from coupons.models import Coupon, CouponKind

# Marked lazily: each export writes them in the language of the request that asks for it.
EXPORT_HEADER = [
    gettext_lazy("Code"), gettext_lazy("Sub-account ID"), gettext_lazy("Sub-account"),
    gettext_lazy("Template"), gettext_lazy("Cost bearer"), gettext_lazy("Currency"),
    gettext_lazy("Amount"), gettext_lazy("Used"), gettext_lazy("Remaining"),
    gettext_lazy("Voided"), gettext_lazy("Valid from"), gettext_lazy("Valid until"),
    gettext_lazy("Status"), gettext_lazy("Released"), gettext_lazy("Kind"),
    gettext_lazy("Discount rate (%)"), gettext_lazy("Cap per use"), gettext_lazy("Uses left"),
    gettext_lazy("Voided at"), gettext_lazy("Voided by"), gettext_lazy("Void reason"),
]


def export_row(c: Coupon) -> list:
    """One coupon as the exports write it, typed (billing/exports.py writes each type)."""
    voided_by = c.voided_by.get_full_name() or c.voided_by.username if c.voided_by else ""
    # `used` to the cent (SQLite hands back 12.5), and the release day in the platform's
    # time zone, as the page and its date filters show it. A discount's amount is its most
    # (cap per use × uses); its rate, cap and uses are in their own columns.
    return [c.code, c.sub_account.account_id, c.sub_account.name, c.template.name,
            c.get_cost_bearer_display(), c.currency, c.amount, quantize(Decimal(str(c.used))),
            c.balance, c.voided_amount, c.valid_from, c.valid_until, c.get_status_display(),
            timezone.localtime(c.released_at).date(), c.get_kind_display(), c.discount_rate,
            c.cap_per_use, c.uses_available, c.voided_at, voided_by, c.void_reason]


class BoundedLazyPaginator(LazyPaginator):
    """LazyPaginator that refuses a page number the database can not take: ?page=10**20
    made an OFFSET past bigint (a 500 on PostgreSQL). Refused, the table shows page 1."""

    MAX_PAGE = 10**9

    def validate_number(self, number):
        number = super().validate_number(number)
        if number > self.MAX_PAGE:
            raise EmptyPage("That page contains no results")
        return number


class CouponUsageView(PartnerMixin, BoundedTableMixin, FilterView):
    """Every coupon the partner issued, with filters, totals, a chart and exports.

    Paging does not count the filtered rows (LazyPaginator), and the totals and the chart
    come from the usage statistics (`summary`), so a page costs the same at a million
    coupons as at a thousand.
    """

    table_class = CouponUsageTable
    filterset_class = CouponUsageFilter
    template_name = "billing/coupon_usage.html"
    page_action = "usage_view"
    # Paging is the table's alone: a view-level paginate_by would also run ListView's
    # Paginator, a COUNT(*) over the filtered rows per page and a 404 past the last page.
    table_pagination = {"paginator_class": BoundedLazyPaginator, "per_page": 25}

    def get(self, request, *args, **kwargs):
        request.partner = self.partner  # scopes the template filter's choices
        export = request.GET.get("_export")
        if export in ("csv", "xlsx"):
            if not self.may("usage_export"):
                raise PermissionDenied(_("Your role can not export Coupon Usage."))
            return self.export(export)
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.coupon_usage_list(partner=self.partner)

    def get_table_data(self):
        filterset = self.filterset
        cleaned = (filterset.form.cleaned_data
                   if filterset.is_bound and filterset.is_valid() else None)
        return selectors.coupon_usage_narrowed(self.object_list, partner=self.partner,
                                               cleaned=cleaned)

    def get_table_kwargs(self):
        return {"can_void": self.may("coupon_void")}

    def filtered(self):
        data = self.request.GET.copy()
        data.pop("_export", None)
        filterset = self.filterset_class(data or None, queryset=self.get_queryset(),
                                         request=self.request)
        if filterset.is_bound and not filterset.is_valid():
            return self.get_queryset().none()
        return filterset.qs

    def export(self, fmt: str):
        qs = self.filtered().select_related("voided_by")
        # In the exporting user's language: the header now, and each row's labels (status,
        # kind, cost bearer) as the file streams, after this view has returned.
        language = translation.get_language()
        rows = in_language(language, (export_row(c) for c in
                                      keyset_iterate(qs, key="released_at", size=2000)))
        with translation.override(language):
            header = [str(title) for title in EXPORT_HEADER]

        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        if fmt == "csv":
            return csv_response(f"coupon-usage-{stamp}.csv", header, rows)
        return xlsx_response(f"coupon-usage-{stamp}.xlsx", header, rows)

    def summary(self) -> tuple[list[dict], list[dict]]:
        """Totals and chart of the filtered coupons, from the usage statistics (rows per
        template, status and release day, not per coupon, kept by the database's triggers).
        The sub-account search is a text match the statistics do not key on: with it they
        are summed from the coupons themselves, which that search narrows to a few
        accounts'."""
        filterset = self.filterset
        if filterset.is_bound and not filterset.is_valid():
            return [], []  # FilterView (strict) lists nothing either
        cleaned = filterset.form.cleaned_data if filterset.is_bound else {}
        lookups = selectors.usage_stat_lookups(cleaned)
        if lookups is None:
            qs = self.object_list  # the filtered queryset
            return (selectors.coupon_usage_totals(qs),
                    selectors.deductions_per_day(partner=self.partner, coupons=qs))
        return (selectors.coupon_usage_totals_from_stats(partner=self.partner, lookups=lookups),
                selectors.deductions_per_day_from_stats(partner=self.partner, lookups=lookups))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        totals, days = self.summary()
        first, last = selectors.chart_window()
        series = daily_series(days, first=first, last=last)
        ctx.update(
            totals=totals,
            chart=days,  # the days with deductions, as the statistics give them
            series=series,
            chart_data=series.as_json(),
            chart_tables=[(s, series.table(s)) for s in series.series],
            query=self.request.GET.copy(),
        )
        return ctx


class CouponDetailView(PartnerMixin, TemplateView):
    """One coupon of the partner's: its terms, what it paid, and who voided it, when and
    why."""

    template_name = "billing/coupon_detail.html"
    page_action = "usage_view"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        coupon = selectors.coupon_get(partner=self.partner, pk=self.kwargs["pk"])
        deductions = Paginator(selectors.coupon_deductions(coupon=coupon), 50)
        ctx.update(
            coupon=coupon, used=coupon.used_amount,
            deductions=deductions.get_page(self.request.GET.get("page")),
            can_void=(self.membership.role == PartnerMembership.Role.ADMIN
                      and coupon.status == Coupon.Status.AVAILABLE),
        )
        return ctx


class CouponVoidView(PartnerMixin, FormView):
    """A partner admin withdraws a coupon's unused balance, with a reason."""

    template_name = "billing/coupon_void.html"
    form_class = CouponVoidForm
    page_action = "coupon_void"

    def get_coupon(self) -> Coupon:
        return selectors.coupon_get(partner=self.partner, pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["coupon"] = self.get_coupon()
        return ctx

    def form_valid(self, form):
        coupon = self.get_coupon()
        try:
            voided = coupon_status.coupon_void(coupon=coupon, acting_user=self.request.user,
                                          reason=form.cleaned_data["reason"])
        except PermissionDeniedError as exc:
            raise PermissionDenied(exc.message) from exc
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            return self.form_invalid(form)
        if voided.kind == CouponKind.DISCOUNT:
            text = _("Coupon %(code)s is voided: its unused uses withdrawn.") % {
                "code": voided.code}
        else:
            text = _("Coupon %(code)s is voided: %(amount)s withdrawn.") % {
                "code": voided.code, "amount": fmt(voided.voided_amount, voided.currency)}
        messages.success(self.request, text)
        return redirect("coupon_detail", pk=voided.pk)
