"""Issue Coupon: search the partner's sub-accounts, build Selected Accounts, confirm; and
the small JSON endpoint that ticking an account calls (static/js/issue.js), so a tick is
kept at once, across pages and searches, and the summary follows it."""
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.generic import TemplateView

from accounts.mixins import PartnerMixin
from accounts.selectors import sub_accounts_with_ids
from couponplatform import ratelimit
from couponplatform.exceptions import ApplicationError, PermissionDeniedError
from couponplatform.paging import BoundedRequestConfig
from couponplatform.text import named
from coupons import rules, selectors, services
from coupons.forms import AccountSearchForm, PasteAccountsForm
from coupons.models import CouponTemplate
from coupons.selection import TOO_MANY, Selection, selection_summary
from coupons.tables import AccountTable

SELECTED_SHOWN = 50


class IssueMixin(PartnerMixin):
    page_action = "issue_select"

    @cached_property
    def template(self) -> CouponTemplate:
        return selectors.coupon_template_for_issue(partner=self.partner, pk=self.kwargs["pk"])

    @cached_property
    def selection(self) -> Selection:
        return Selection(self.request.session, self.template)

    def selected_shown(self, ids: list[str]) -> list:
        """The first accounts of Selected Accounts, in the order they were added; one array
        parameter (`__any`) rather than a placeholder per ID."""
        first = ids[:SELECTED_SHOWN]
        shown = list(sub_accounts_with_ids(partner=self.partner, account_ids=first,
                                           fields=("account_id", "name", "type")))
        order = {a: i for i, a in enumerate(first)}
        shown.sort(key=lambda a: order.get(a.account_id, 0))
        return shown


class IssueCouponView(IssueMixin, TemplateView):
    """The page. The selection lives in the session per template, so it survives paging and
    searching; nothing is written to the database until Confirm."""

    template_name = "coupons/issue.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        search = AccountSearchForm(self.request.GET or None)
        q = t = ""
        if search.is_valid():
            q, t = search.cleaned_data["q"], search.cleaned_data["type"]
        ids = self.selection.ids
        accounts = selectors.issuable_sub_accounts(template=self.template, search=q, type=t)
        table = AccountTable(accounts, template=self.template, selected=set(ids))
        BoundedRequestConfig(self.request, paginate={"per_page": 25}).configure(table)
        summary = selection_summary(template=self.template, ids=ids)
        ctx.update(
            template=self.template,
            result_count=table.paginator.count,
            search_form=search,
            paste_form=kwargs.get("paste_form") or PasteAccountsForm(),
            table=table,
            selection_count=len(ids),
            selected_shown=self.selected_shown(ids),
            selected_more=max(len(ids) - SELECTED_SHOWN, 0),
            summary=summary,
            check=summary.check,
            needs_bd_approval=summary.needs_bd_approval,
            budget_remaining=summary.budget_remaining,
            issuable_problem=rules.template_issuable_problem(self.template),
            query_string=self.request.GET.urlencode(),
            submission_token=self.selection.token(create=False),
        )
        return ctx

    def _back(self) -> HttpResponseRedirect:
        url = reverse("coupons:issue", args=[self.template.pk])
        qs = self.request.POST.get("return_query", "")
        return HttpResponseRedirect(f"{url}?{qs}" if qs else url)

    def post(self, request, pk):
        handler = {
            "add": self._add_picked,
            "remove": self._remove,
            "clear": self._clear,
            "paste": self._paste,
            "confirm": self._confirm,
        }.get(request.POST.get("action", ""))
        if handler is None:
            messages.error(request, _("Unknown action."))
            return self._back()
        return handler()

    def _report(self, added: list[str], refused: dict[str, list[str]]) -> None:
        if TOO_MANY in refused:
            messages.error(self.request, _(
                "One request can hold at most %(max)s accounts; nothing was added.",
            ) % {"max": f"{settings.ISSUE_MAX_ACCOUNTS:,}"})
            return
        if added:
            messages.success(self.request, ngettext(
                "Added %(n)s account to Selected Accounts.",
                "Added %(n)s accounts to Selected Accounts.", len(added),
            ) % {"n": f"{len(added):,}"})
        for reason, ids in refused.items():
            messages.warning(self.request, _("Not added — %(reason)s: %(ids)s.")
                             % {"reason": reason, "ids": named(ids)})

    def _add_picked(self):
        ids = [a for a in self.request.POST.getlist("pick") if a]
        if not ids:
            messages.error(self.request, _("Tick the accounts to add first."))
            return self._back()
        self._report(*self.selection.add(ids))
        return self._back()

    def _paste(self):
        form = PasteAccountsForm(self.request.POST)
        if not form.is_valid():
            for error in form.errors.get("account_ids", []):
                messages.error(self.request, error)
            return self._back()
        self._report(*self.selection.add(form.cleaned_data["account_ids"]))
        return self._back()

    def _remove(self):
        self.selection.remove(self.request.POST.getlist("account_id"))
        return self._back()

    def _clear(self):
        self.selection.set([])
        messages.info(self.request, _("Selected Accounts is empty again."))
        return self._back()

    def _already_submitted(self, request_obj):
        self.selection.set([])
        messages.info(self.request, format_html(
            _('This selection was already submitted: <a href="{url}">request {number}</a>.'),
            url=request_obj.get_absolute_url(), number=request_obj.number,
        ))
        return redirect(request_obj.get_absolute_url())

    def _confirm(self):
        ids = self.selection.ids
        token = self.selection.token()
        # The page's token (a Confirm without one, as a script sends, uses the session's:
        # either way one selection makes one request).
        posted = self.request.POST.get("submission", "")[:64]
        if posted and posted != token:
            earlier = selectors.issuance_request_for_submission(
                user=self.request.user, submission_key=posted,
            )
            if earlier is not None:
                return self._already_submitted(earlier)
            messages.error(self.request, _("Selected Accounts changed since that page was "
                                           "shown; check the selection and confirm again."))
            return self._back()
        wait = ratelimit.hit(ratelimit.SUBMITS, f"user:{self.request.user.pk}")
        if wait:
            messages.error(self.request, _("You have confirmed many requests in a short time.")
                           + " " + ratelimit.wait_text(wait))
            return self._back()
        try:
            request_obj = services.issuance_request_submit(
                template=self.template, acting_user=self.request.user, account_ids=ids,
                submission_key=token,
            )
        except services.AlreadySubmittedError as exc:
            return self._already_submitted(exc.request)
        except PermissionDeniedError as exc:
            raise PermissionDenied(exc.message) from exc
        except ApplicationError as exc:
            messages.error(self.request, exc.message)
            return self._back()
        self.selection.set([])
        request_obj.refresh_from_db(fields=["status"])
        n = request_obj.recipient_count
        if request_obj.route == request_obj.Route.BD:
            text = ngettext(
                "Request %(number)s for %(n)s account was submitted and waits for your "
                "BD's approval.",
                "Request %(number)s for %(n)s accounts was submitted and waits for your "
                "BD's approval.", n)
        elif request_obj.status == request_obj.Status.ISSUED:
            text = ngettext(
                "Request %(number)s for %(n)s account was approved at once (no BD approval "
                "needed) and issued.",
                "Request %(number)s for %(n)s accounts was approved at once (no BD approval "
                "needed) and issued.", n)
        else:
            text = ngettext(
                "Request %(number)s for %(n)s account was approved at once (no BD approval "
                "needed); its coupons are being issued.",
                "Request %(number)s for %(n)s accounts was approved at once (no BD approval "
                "needed); its coupons are being issued.", n)
        messages.success(self.request, text % {"number": request_obj.number, "n": f"{n:,}"})
        return redirect(request_obj.get_absolute_url())


class IssueSelectionView(IssueMixin, View):
    """POST `add` or `remove` with `account_id`s: the selection changed at once, answered
    with what was added or refused, the Selected Accounts list and the summary (JSON). The
    same rules as the page's buttons; Confirm checks everything again."""

    def post(self, request, pk):
        self.template  # noqa: B018 — another partner's template is a 404 before anything else
        action = request.POST.get("action", "")
        ids = [a for a in request.POST.getlist("account_id") if a]
        if action not in ("add", "remove") or not ids:
            return JsonResponse({"error": _("Send action add or remove and account IDs.")},
                                status=400)
        added, removed, refused = [], [], {}
        if action == "add":
            added, refused = self.selection.add(ids)
            if TOO_MANY in refused:
                refused = {_("too many for one request (at most %(max)s)")
                           % {"max": f"{settings.ISSUE_MAX_ACCOUNTS:,}"}: ids}
        else:
            removed = self.selection.remove(ids)
        selection = self.selection.ids
        chosen = set(selection)
        summary = selection_summary(template=self.template, ids=selection)
        return JsonResponse({
            "added": added, "removed": removed,
            "refused": [_("Not added — %(reason)s: %(ids)s.")
                        % {"reason": reason, "ids": named(found)}
                        for reason, found in refused.items()],
            "selected": [a for a in ids if a in chosen],
            "selected_shown": [
                {"account_id": a.account_id, "name": a.name,
                 "tier2": a.type == "tier2_reseller"}
                for a in self.selected_shown(selection)
            ],
            "selected_more": max(len(selection) - SELECTED_SHOWN, 0),
            "summary": summary.as_json(),
            "submission": self.selection.token(),
        })
