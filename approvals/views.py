"""Approval Status: the partner's issuance requests, their detail, cancel, retry, withdraw
and the progress of a release."""
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView
from django_filters.views import FilterView

from accounts.mixins import PartnerMixin
from approvals import release, selectors, services
from approvals.filters import IssuanceRequestFilter
from approvals.tables import IssuanceRequestTable, decision, history_row
from couponplatform.exceptions import ApplicationError, PermissionDeniedError
from couponplatform.paging import BoundedTableMixin
from coupons.models import IssuanceRequest
from coupons.selectors import (
    issuance_request_get,
    issuance_request_list,
    issuance_request_recipients,
)

RECIPIENTS_SHOWN = 200


class ApprovalListView(PartnerMixin, BoundedTableMixin, FilterView):
    table_class = IssuanceRequestTable
    filterset_class = IssuanceRequestFilter
    template_name = "approvals/request_list.html"
    table_pagination = {"per_page": 25}
    page_action = "requests_view"

    def get_queryset(self):
        return selectors.with_closing_move(issuance_request_list(partner=self.partner))

    def get_table_kwargs(self):
        return {"can_write": self.may("request_cancel")}


class RequestMixin(PartnerMixin):
    page_action = "requests_view"

    def get_request_obj(self) -> IssuanceRequest:
        """The partner's own request; another partner's is a 404."""
        return issuance_request_get(partner=self.partner, pk=self.kwargs["pk"])


class ApprovalDetailView(RequestMixin, TemplateView):
    template_name = "approvals/request_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        req = get_object_or_404(
            selectors.with_closing_move(issuance_request_list(partner=self.partner)),
            pk=self.kwargs["pk"],
        )
        recipients = issuance_request_recipients(req)
        what, who, at = decision(req)
        ctx.update(
            req=req,
            decision={"what": what, "who": who, "at": at},
            history=[history_row(entry) for entry in selectors.request_history(req)],
            recipients=recipients[:RECIPIENTS_SHOWN],
            recipients_more=max(req.recipient_count - RECIPIENTS_SHOWN, 0),
            approvals=selectors.approval_list(req),
            releasing=req.status == IssuanceRequest.Status.APPROVED,
            progress=release.release_progress(req.pk) or 0,
            can_write=self.may("request_cancel"),
        )
        return ctx


class ReleaseProgressView(RequestMixin, View):
    def get(self, request, pk):
        req = self.get_request_obj()
        released = (
            req.released_so_far if req.status == IssuanceRequest.Status.ISSUED
            else release.release_progress(req.pk) or 0
        )
        return JsonResponse({
            "status": req.status, "status_display": req.get_status_display(),
            "released": released, "total": req.recipient_count,
        })


class RequestActionView(RequestMixin, TemplateView):
    """GET asks for confirmation; POST does it."""

    template_name = "approvals/request_confirm.html"
    action = ""  # cancel, retry or withdraw (the URL's)

    @property
    def page_action(self) -> str:
        return f"request_{self.action}"
    service = None
    titles = {
        "cancel": (gettext_lazy("Cancel request"),
                   gettext_lazy("Cancel this request? Your BD will no longer see it, and its "
                                "accounts and budget are freed."),
                   gettext_lazy("Yes, cancel the request")),
        "retry": (gettext_lazy("Retry issuing"),
                  gettext_lazy("Try to issue this request's coupons again?"),
                  gettext_lazy("Retry issuing")),
        "withdraw": (gettext_lazy("Withdraw request"),
                     gettext_lazy("Withdraw this request? No coupons will be issued from it, "
                                  "and its accounts and budget are freed."),
                     gettext_lazy("Yes, withdraw")),
    }

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        title, question, button = self.titles[self.action]
        ctx.update(req=self.get_request_obj(), title=title, question=question, button=button)
        return ctx

    def post(self, request, pk):
        req = self.get_request_obj()
        fn = {
            "cancel": services.issuance_request_cancel,
            "retry": services.issuance_request_retry,
            "withdraw": services.issuance_request_withdraw,
        }[self.action]
        try:
            fn(request_id=req.pk, acting_user=request.user)
        except PermissionDeniedError as exc:
            raise PermissionDenied(exc.message) from exc
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            done = {"cancel": "cancelled", "retry": "sent to issuing again",
                    "withdraw": "withdrawn"}[self.action]
            messages.success(request, f"Request {req.number} was {done}.")
        return redirect(req.get_absolute_url())
