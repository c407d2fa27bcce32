"""Approval Status: the partner's issuance requests and their detail (PRODUCT §5)."""
from django.shortcuts import get_object_or_404
from django.views.generic import TemplateView
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from approvals.filters import IssuanceRequestFilter
from approvals.tables import IssuanceRequestTable
from couponplatform.accounts.mixins import PartnerMixin
from coupons.selectors import issuance_request_list


class ApprovalListView(PartnerMixin, SingleTableMixin, FilterView):
    table_class = IssuanceRequestTable
    filterset_class = IssuanceRequestFilter
    template_name = "approvals/request_list.html"
    paginate_by = 25

    def get_queryset(self):
        return issuance_request_list(partner=self.partner)


class ApprovalDetailView(PartnerMixin, TemplateView):
    template_name = "approvals/request_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        request_obj = get_object_or_404(issuance_request_list(partner=self.partner),
                                        pk=self.kwargs["pk"])
        recipients = (
            request_obj.recipients.select_related("sub_account")
            .order_by("sub_account__name", "id")
        )
        ctx.update(
            req=request_obj,
            recipients=recipients[:200],
            recipients_more=max(request_obj.recipient_count - 200, 0),
        )
        return ctx
