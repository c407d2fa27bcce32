"""The partner console: coupon templates and Issue Coupon."""
import secrets

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.views import View
from django.views.generic import FormView, TemplateView
from django_filters.views import FilterView

from accounts.mixins import PartnerMixin
from accounts.selectors import platform_budget_remaining, sub_accounts_with_ids
from couponplatform import ratelimit
from couponplatform.exceptions import ApplicationError, PermissionDeniedError
from couponplatform.paging import BoundedRequestConfig, BoundedTableMixin
from couponplatform.text import count, named
from coupons import rules, selectors, services
from coupons.filters import CouponTemplateFilter
from coupons.forms import AccountSearchForm, CouponTemplateForm, PasteAccountsForm
from coupons.models import CouponTemplate
from coupons.tables import AccountTable, CouponTemplateTable


class CouponHomeView(PartnerMixin, View):
    def get(self, request):
        return redirect("coupons:template_list")


class TemplateListView(PartnerMixin, BoundedTableMixin, FilterView):
    table_class = CouponTemplateTable
    filterset_class = CouponTemplateFilter
    template_name = "coupons/template_list.html"
    table_pagination = {"per_page": 25}

    def get_queryset(self):
        return selectors.coupon_template_list(partner=self.partner)

    def get_table_kwargs(self):
        kwargs = super().get_table_kwargs()
        if not self.membership.can_write:
            kwargs["exclude"] = ("actions",)
        return kwargs


def _form_kwargs_from(form) -> dict:
    data = dict(form.cleaned_data)
    data["products"] = list(data.get("products") or [])
    return data


class TemplateCreateView(PartnerMixin, FormView):
    form_class = CouponTemplateForm
    template_name = "coupons/template_form.html"
    roles = PartnerMixin.write_roles

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["platform_allowed"] = rules.can_create_platform_borne(partner=self.partner)
        return kwargs

    def form_valid(self, form):
        try:
            template = services.coupon_template_create(
                partner=self.partner, acting_user=self.request.user, **_form_kwargs_from(form),
            )
        except services.TemplateTermsError as exc:
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
            return self.form_invalid(form)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            return self.form_invalid(form)
        messages.success(self.request, f"Template “{template.name}” is ready for distribution.")
        return redirect(template.get_absolute_url())


class TemplateDetailView(PartnerMixin, TemplateView):
    template_name = "coupons/template_detail.html"

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
    roles = PartnerMixin.write_roles

    def post(self, request, pk):
        template = selectors.coupon_template_get(partner=self.partner, pk=pk)
        try:
            services.coupon_template_disable(template=template, acting_user=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Template “{template.name}” is disabled.")
        return redirect(template.get_absolute_url())


# ---------------------------------------------------------------------------------------
# Issue Coupon


SELECTED_SHOWN = 50


class IssueCouponView(PartnerMixin, TemplateView):
    """Search the partner's sub-accounts, build the Selected Accounts list, confirm.

    The selection lives in the session per template, so it survives paging and searching;
    nothing is written to the database until Confirm.
    """

    template_name = "coupons/issue.html"
    roles = PartnerMixin.write_roles

    @cached_property
    def template(self) -> CouponTemplate:
        return selectors.coupon_template_for_issue(partner=self.partner, pk=self.kwargs["pk"])

    @property
    def session_key(self) -> str:
        return f"issue_selection:{self.template.pk}"

    def get_selection(self) -> list[str]:
        return list(self.request.session.get(self.session_key, []))

    def set_selection(self, ids: list[str]) -> None:
        self.request.session[self.session_key] = ids
        # A new selection, a new token: the old one still names what it confirmed.
        self.request.session[self.token_key] = secrets.token_urlsafe(16)

    @property
    def token_key(self) -> str:
        return f"issue_submission:{self.template.pk}"

    def submission_token(self, *, create: bool = True) -> str:
        """The selection's one-time token: Confirm sends it, the request keeps it, and a
        second Confirm of the same selection finds that request instead of making one.
        Made with the selection (set_selection); the page only reads it, so showing the
        page writes no session."""
        token = self.request.session.get(self.token_key, "")
        if not token and create:
            token = self.request.session[self.token_key] = secrets.token_urlsafe(16)
        return token

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        search = AccountSearchForm(self.request.GET or None)
        q = t = ""
        if search.is_valid():
            q, t = search.cleaned_data["q"], search.cleaned_data["type"]
        selection = self.get_selection()
        selected = set(selection)
        accounts = selectors.issuable_sub_accounts(template=self.template, search=q, type=t)
        table = AccountTable(accounts, template=self.template, selected=selected)
        BoundedRequestConfig(self.request, paginate={"per_page": 25}).configure(table)
        # The first accounts of Selected Accounts, in the order they were added; one array
        # parameter (`__any`) rather than a placeholder per ID.
        first = selection[:SELECTED_SHOWN]
        shown = list(sub_accounts_with_ids(partner=self.partner, account_ids=first,
                                           fields=("account_id", "name", "type")))
        order = {a: i for i, a in enumerate(first)}
        shown.sort(key=lambda a: order.get(a.account_id, 0))
        check = None
        if selection:
            check = rules.issuance_selection_check(
                template=self.template, account_ids=selection,
            )
        ctx.update(
            template=self.template,
            result_count=table.paginator.count,
            search_form=search,
            paste_form=kwargs.get("paste_form") or PasteAccountsForm(),
            table=table,
            selection_count=len(selection),
            selected_shown=shown,
            selected_more=max(len(selection) - SELECTED_SHOWN, 0),
            check=check,
            needs_bd_approval=rules.needs_bd_approval(self.template),
            budget_remaining=(
                platform_budget_remaining(partner=self.partner, currency=self.template.currency)
                if self.template.is_platform_borne else None
            ),
            issuable_problem=rules.template_issuable_problem(self.template),
            query_string=self.request.GET.urlencode(),
            submission_token=self.submission_token(create=False),
        )
        return ctx

    def _back(self) -> HttpResponseRedirect:
        url = reverse("coupons:issue", args=[self.template.pk])
        qs = self.request.POST.get("return_query", "")
        return HttpResponseRedirect(f"{url}?{qs}" if qs else url)

    def post(self, request, pk):
        action = request.POST.get("action", "")
        handler = {
            "add": self._add_picked,
            "remove": self._remove,
            "clear": self._clear,
            "paste": self._paste,
            "confirm": self._confirm,
        }.get(action)
        if handler is None:
            messages.error(request, "Unknown action.")
            return self._back()
        return handler()

    def _add(self, ids: list[str]) -> dict[str, list[str]]:
        """Add the selectable ids; return the others grouped by why they were left out."""
        if len(ids) > self._max():
            return {"too many": ids}
        selection = self.get_selection()
        current = set(selection)
        check = rules.issuance_selection_check(template=self.template, account_ids=ids)
        refused = {
            "listed twice": check.duplicates,
            "not among your sub-accounts": check.unknown,
            **{refusal.not_added: check.refused(refusal) for refusal in rules.Refusal},
            "already selected": [],
        }
        bad = set(check.unknown).union(*(check.refused(r) for r in rules.Refusal))
        for account in check.accounts:
            aid = account.account_id
            if aid in bad:
                continue
            if aid in current:
                if aid not in refused["already selected"]:
                    refused["already selected"].append(aid)
                continue
            selection.append(aid)
            current.add(aid)
        if len(selection) > self._max():
            return {"too many": ids}
        self.set_selection(selection)
        return {reason: found for reason, found in refused.items() if found}

    def _max(self) -> int:
        return settings.ISSUE_MAX_ACCOUNTS

    def _report(self, before: int, refused: dict[str, list[str]]) -> None:
        if "too many" in refused:
            messages.error(
                self.request,
                f"One request can hold at most {self._max():,} accounts; nothing was added.",
            )
            return
        added = len(self.get_selection()) - before
        if added:
            messages.success(self.request, f"Added {count(added, 'account')} to Selected Accounts.")
        for reason, ids in refused.items():
            messages.warning(
                self.request, f"Not added — {reason}: {named(ids)}.",
            )

    def _add_picked(self):
        ids = [a for a in self.request.POST.getlist("pick") if a]
        if not ids:
            messages.error(self.request, "Tick the accounts to add first.")
            return self._back()
        before = len(self.get_selection())
        self._report(before, self._add(ids))
        return self._back()

    def _paste(self):
        form = PasteAccountsForm(self.request.POST)
        if not form.is_valid():
            for error in form.errors.get("account_ids", []):
                messages.error(self.request, error)
            return self._back()
        before = len(self.get_selection())
        self._report(before, self._add(form.cleaned_data["account_ids"]))
        return self._back()

    def _remove(self):
        remove = set(self.request.POST.getlist("account_id"))
        self.set_selection([a for a in self.get_selection() if a not in remove])
        return self._back()

    def _clear(self):
        self.set_selection([])
        messages.info(self.request, "Selected Accounts is empty again.")
        return self._back()

    def _already_submitted(self, request_obj):
        self.set_selection([])
        messages.info(self.request, format_html(
            'This selection was already submitted: <a href="{}">request #{}</a>.',
            request_obj.get_absolute_url(), request_obj.pk,
        ))
        return redirect(request_obj.get_absolute_url())

    def _confirm(self):
        selection = self.get_selection()
        token = self.submission_token()
        # The page's token (a Confirm without one, as a script sends, uses the session's:
        # either way one selection makes one request).
        posted = self.request.POST.get("submission", "")[:64]
        if posted and posted != token:
            earlier = selectors.issuance_request_for_submission(
                user=self.request.user, submission_key=posted,
            )
            if earlier is not None:
                return self._already_submitted(earlier)
            messages.error(self.request, "Selected Accounts changed since that page was shown; "
                           "check the selection and confirm again.")
            return self._back()
        wait = ratelimit.hit(ratelimit.SUBMITS, f"user:{self.request.user.pk}")
        if wait:
            messages.error(self.request, "You have confirmed many requests in a short time. "
                           + ratelimit.wait_text(wait))
            return self._back()
        try:
            request_obj = services.issuance_request_submit(
                template=self.template, acting_user=self.request.user, account_ids=selection,
                submission_key=token,
            )
        except services.AlreadySubmittedError as exc:
            return self._already_submitted(exc.request)
        except PermissionDeniedError as exc:
            raise PermissionDenied(exc.message) from exc
        except ApplicationError as exc:
            messages.error(self.request, exc.message)
            return self._back()
        self.set_selection([])
        request_obj.refresh_from_db(fields=["status"])
        accounts = count(request_obj.recipient_count, "account")
        if request_obj.route == request_obj.Route.BD:
            outcome = "submitted and waits for your BD's approval."
        elif request_obj.status == request_obj.Status.ISSUED:
            outcome = "approved at once (no BD approval needed) and issued."
        else:
            outcome = "approved at once (no BD approval needed); its coupons are being issued."
        messages.success(self.request, f"Request #{request_obj.pk} for {accounts} was {outcome}")
        return redirect(request_obj.get_absolute_url())


