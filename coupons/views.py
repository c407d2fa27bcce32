"""The partner console: coupon templates (Issue Coupon is coupons/issue_views.py)."""
from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import FormView, TemplateView
from django_filters.views import FilterView

from accounts.mixins import PartnerMixin
from couponplatform.exceptions import ApplicationError
from couponplatform.paging import BoundedTableMixin
from coupons import rules, selectors, services
from coupons.filters import CouponTemplateFilter
from coupons.forms import CouponTemplateForm
from coupons.tables import CouponTemplateTable


class CouponHomeView(PartnerMixin, View):
    page_action = "templates_view"

    def get(self, request):
        return redirect("coupons:template_list")


class TemplateListView(PartnerMixin, BoundedTableMixin, FilterView):
    table_class = CouponTemplateTable
    filterset_class = CouponTemplateFilter
    template_name = "coupons/template_list.html"
    table_pagination = {"per_page": 25}
    page_action = "templates_view"

    def get_queryset(self):
        return selectors.coupon_template_list(partner=self.partner)

    def get_table_kwargs(self):
        kwargs = super().get_table_kwargs()
        if not self.may("issue_select"):
            kwargs["exclude"] = ("actions",)
        return kwargs


class TemplateCreateView(PartnerMixin, FormView):
    form_class = CouponTemplateForm
    template_name = "coupons/template_form.html"
    page_action = "template_create"

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["platform_allowed"] = rules.can_create_platform_borne(partner=self.partner)
        return kwargs

    def form_valid(self, form):
        try:
            template = services.coupon_template_create(
                partner=self.partner, acting_user=self.request.user, **form.service_kwargs(),
            )
        except services.TemplateTermsError as exc:
            form.add_terms_errors(exc.errors)
            return self.form_invalid(form)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            return self.form_invalid(form)
        messages.success(self.request, _("Template “%(name)s” is ready for distribution.")
                         % {"name": template.name})
        if warning := rules.template_window_warning(
            validity_type=template.validity_type, valid_from=template.valid_from,
            valid_until=template.valid_until,
        ):
            messages.warning(self.request, warning)
        return redirect(template.get_absolute_url())


class TemplateDetailView(PartnerMixin, TemplateView):
    template_name = "coupons/template_detail.html"
    page_action = "templates_view"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        template = selectors.coupon_template_get(partner=self.partner, pk=self.kwargs["pk"])
        cap_count_left, cap_amount_left = selectors.template_cap_left(template)
        ctx.update(
            template=template,
            stats=selectors.template_request_stats(template),
            recent_requests=selectors.template_recent_requests(template),
            frozen=selectors.template_is_frozen(template),
            cap_count_left=cap_count_left,
            cap_amount_left=cap_amount_left,
            issuable_problem=rules.template_issuable_problem(template),
        )
        return ctx


class TemplateDisableView(PartnerMixin, View):
    page_action = "template_disable"

    def post(self, request, pk):
        template = selectors.coupon_template_get(partner=self.partner, pk=pk)
        try:
            services.coupon_template_disable(template=template, acting_user=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Template “%(name)s” is disabled.")
                             % {"name": template.name})
        return redirect(template.get_absolute_url())
