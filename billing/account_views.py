"""The sub-account's Billing Management: its coupons (with what it can still spend and
what expires soon) and its bills, daily and monthly."""
from datetime import date, datetime

from django.core.paginator import Paginator
from django.http import Http404
from django.utils import timezone
from django.views.generic import TemplateView

from accounts.mixins import SubAccountMixin
from billing import selectors
from billing.forms import BillFilterForm
from billing.periods import closed_months, month_start
from coupons.models import Coupon

DAILY_PER_PAGE = 31


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
        expiring, expiring_sums = selectors.sub_account_expiring(sub_account=self.sub_account)
        ctx.update(
            page=page, status=status,
            statuses=[(value, label, counts.get(value, 0))
                      for value, label in Coupon.Status.choices],
            balances=selectors.sub_account_balances(sub_account=self.sub_account),
            expiring=expiring, expiring_sums=expiring_sums,
            expiring_count=sum(r["coupons"] + r["discounts"] for r in expiring_sums),
            expiring_days=selectors.EXPIRING_DAYS,
        )
        return ctx


class BillListView(SubAccountMixin, TemplateView):
    """Daily and monthly bills, filtered by month or a range of days; the months not
    closed yet are shown as the month so far."""

    template_name = "billing/bills.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        months = selectors.sub_account_bill_months(sub_account=self.sub_account)
        form = BillFilterForm(self.request.GET or None, months=months)
        daily = selectors.sub_account_daily_bills(sub_account=self.sub_account)
        monthly = list(selectors.sub_account_monthly_bills(sub_account=self.sub_account)[:24])
        open_months = selectors.open_monthly_bills(sub_account=self.sub_account)
        start = end = None
        if form.is_bound and not form.is_valid():
            daily, monthly, open_months = daily.none(), [], []
        elif form.is_bound:
            start, end = form.bounds()
        if start:
            daily = daily.filter(date__gte=start)
        if end:
            daily = daily.filter(date__lte=end)

        def in_range(bill) -> bool:
            return ((start is None or bill.month >= month_start(start))
                    and (end is None or bill.month <= end))

        ctx.update(
            form=form, filtered=form.is_bound,
            daily=Paginator(daily, DAILY_PER_PAGE).get_page(self.request.GET.get("page")),
            open_months=[b for b in open_months if in_range(b)],
            monthly=[b for b in monthly if in_range(b)],
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
        ctx.update(bill=bill, month_closed=bool(closed_months([month_start(day)])))
        return ctx


class MonthlyBillView(SubAccountMixin, TemplateView):
    """A closed month's bill, or the month so far (labelled not closed) while it is open."""

    template_name = "billing/monthly_bill.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        try:
            month = datetime.strptime(self.kwargs["month"], "%Y-%m").date()
        except ValueError as exc:
            raise Http404("Not a month") from exc
        try:
            shown = selectors.monthly_bill_shown(sub_account=self.sub_account, month=month)
        except OverflowError as exc:  # 9999-12: its end is past what a date holds
            raise Http404("No bill for that month") from exc
        if shown is None:
            raise Http404("No bill for that month")
        daily = selectors.sub_account_daily_bills_of_month(sub_account=self.sub_account,
                                                           month=month)
        ctx.update(bill=shown.bill, lines=shown.lines,
                   coupon_deductions=shown.coupon_deductions, closed=shown.closed,
                   daily=daily, today=timezone.localdate())
        return ctx
