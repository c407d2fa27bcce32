"""Billing pages: the partner's Coupon Usage and the sub-account's Billing Management."""
from datetime import date, datetime
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import EmptyPage, Paginator
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.generic import FormView, TemplateView
from django_filters.views import FilterView
from django_tables2.paginators import LazyPaginator

from accounts.mixins import PartnerMixin, SubAccountMixin
from accounts.models import PartnerMembership
from billing import coupon_status, selectors
from billing.exports import csv_response, xlsx_response
from billing.filters import CouponUsageFilter
from billing.forms import CouponVoidForm
from billing.tables import CouponUsageTable
from couponplatform.exceptions import ApplicationError, PermissionDeniedError
from couponplatform.money import fmt, quantize
from couponplatform.paging import BoundedTableMixin
from coupons.models import Coupon

EXPORT_HEADER = ["Code", "Sub-account ID", "Sub-account", "Template", "Cost bearer",
                 "Currency", "Amount", "Used", "Remaining", "Voided", "Valid from",
                 "Valid until", "Status", "Released"]


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
    # Paging is the table's alone: a view-level paginate_by would also run ListView's
    # Paginator, a COUNT(*) over the filtered rows per page and a 404 past the last page.
    table_pagination = {"paginator_class": BoundedLazyPaginator, "per_page": 25}

    def get(self, request, *args, **kwargs):
        request.partner = self.partner  # scopes the template filter's choices
        export = request.GET.get("_export")
        if export in ("csv", "xlsx"):
            return self.export(export)
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.coupon_usage_list(partner=self.partner)

    def get_table_kwargs(self):
        return {"can_void": self.membership.role == PartnerMembership.Role.ADMIN}

    def filtered(self):
        data = self.request.GET.copy()
        data.pop("_export", None)
        filterset = self.filterset_class(data or None, queryset=self.get_queryset(),
                                         request=self.request)
        if filterset.is_bound and not filterset.is_valid():
            return self.get_queryset().none()
        return filterset.qs

    def export(self, fmt: str):
        qs = self.filtered().order_by("-released_at", "-id")

        def rows():
            for c in qs.iterator(chunk_size=2000):
                # `used` to the cent (SQLite hands back 12.5), and the release day in the
                # platform's time zone, as the page and its date filters show it.
                yield [c.code, c.sub_account.account_id, c.sub_account.name, c.template.name,
                       c.get_cost_bearer_display(), c.currency, c.amount,
                       quantize(Decimal(str(c.used))), c.balance,
                       c.voided_amount, c.valid_from, c.valid_until, c.get_status_display(),
                       timezone.localtime(c.released_at).date()]

        stamp = datetime.now().strftime("%Y%m%d-%H%M")
        if fmt == "csv":
            return csv_response(f"coupon-usage-{stamp}.csv", EXPORT_HEADER, rows())
        return xlsx_response(f"coupon-usage-{stamp}.xlsx", EXPORT_HEADER, rows())

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
        peak = max((d["total"] for d in days), default=Decimal("0"))
        ctx.update(
            totals=totals,
            chart=[{**d, "pct": float(d["total"] / peak * 100) if peak else 0} for d in days],
            chart_total=sum((d["total"] for d in days), Decimal("0")),
            query=self.request.GET.copy(),
        )
        return ctx


class CouponVoidView(PartnerMixin, FormView):
    """A partner admin withdraws a coupon's unused balance, with a reason."""

    template_name = "billing/coupon_void.html"
    form_class = CouponVoidForm
    roles = (PartnerMembership.Role.ADMIN,)

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
        messages.success(self.request, f"Coupon {voided.code} is voided: "
                                       f"{fmt(voided.voided_amount, voided.currency)} withdrawn.")
        return redirect(f"{reverse('coupon_usage')}?sub_account={voided.sub_account.account_id}")


class SubAccountCouponsView(SubAccountMixin, TemplateView):
    template_name = "billing/coupons.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        status = self.request.GET.get("status") or Coupon.Status.AVAILABLE
        if status not in Coupon.Status.values:
            status = Coupon.Status.AVAILABLE
        coupons = selectors.sub_account_coupons(sub_account=self.sub_account, status=status)
        page = Paginator(coupons, 20).get_page(self.request.GET.get("page"))
        counts = selectors.sub_account_coupon_counts(sub_account=self.sub_account)
        ctx.update(page=page, status=status, statuses=[
            (value, label, counts.get(value, 0)) for value, label in Coupon.Status.choices
        ])
        return ctx


class BillListView(SubAccountMixin, TemplateView):
    template_name = "billing/bills.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        daily = Paginator(selectors.sub_account_daily_bills(sub_account=self.sub_account), 31)
        ctx.update(
            daily=daily.get_page(self.request.GET.get("page")),
            monthly=selectors.sub_account_monthly_bills(sub_account=self.sub_account)[:24],
        )
        return ctx


class DailyBillView(SubAccountMixin, TemplateView):
    template_name = "billing/daily_bill.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        try:
            day = date.fromisoformat(self.kwargs["day"])
        except ValueError as exc:
            raise Http404("Not a date") from exc
        bill = selectors.daily_bill_get(sub_account=self.sub_account, day=day)
        if bill is None:
            raise Http404("No bill for that day")
        ctx.update(bill=bill)
        return ctx


class MonthlyBillView(SubAccountMixin, TemplateView):
    template_name = "billing/monthly_bill.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        try:
            month = datetime.strptime(self.kwargs["month"], "%Y-%m").date()
        except ValueError as exc:
            raise Http404("Not a month") from exc
        bill = selectors.monthly_bill_get(sub_account=self.sub_account, month=month)
        if bill is None:
            raise Http404("No bill for that month")
        daily = selectors.sub_account_daily_bills_of_month(sub_account=self.sub_account,
                                                           month=month)
        ctx.update(bill=bill, daily=daily)  # a list: the template takes daily|last
        return ctx
