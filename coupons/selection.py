"""Issue Coupon's selection: the accounts a partner user has picked for a template, kept in
the session (so it survives paging and searching, with or without JavaScript), its
one-time submission token, and the summary shown before Confirm. The summary's numbers
come from `rules.issuance_selection_check`, the check the submit runs."""
import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.selectors import platform_budget_remaining
from couponplatform.money import fmt
from coupons import rules
from coupons.models import CouponTemplate

TOO_MANY = "too many"


class Selection:
    """The session's selection of one template: an ordered list of account IDs."""

    def __init__(self, session, template: CouponTemplate):
        self.session, self.template = session, template
        self.key = f"issue_selection:{template.pk}"
        self.token_key = f"issue_submission:{template.pk}"

    @property
    def ids(self) -> list[str]:
        return list(self.session.get(self.key, []))

    def set(self, ids: list[str]) -> None:
        self.session[self.key] = ids
        # A new selection, a new token: the old one still names what it confirmed.
        self.session[self.token_key] = secrets.token_urlsafe(16)

    def token(self, *, create: bool = True) -> str:
        """The selection's one-time token: Confirm sends it, the request keeps it, and a
        second Confirm of the same selection finds that request instead of making one.
        Made with the selection (`set`); showing the page only reads it, so it writes no
        session."""
        token = self.session.get(self.token_key, "")
        if not token and create:
            token = self.session[self.token_key] = secrets.token_urlsafe(16)
        return token

    def add(self, ids: list[str]) -> tuple[list[str], dict[str, list[str]]]:
        """Add the selectable ids; returns (added, the others grouped by why they were left
        out). Every rule is the selection check's; nothing is added past the limit."""
        limit = settings.ISSUE_MAX_ACCOUNTS
        if len(ids) > limit:
            return [], {TOO_MANY: ids}
        selection = self.ids
        current = set(selection)
        check = rules.issuance_selection_check(template=self.template, account_ids=ids)
        refused = {
            _("listed twice"): check.duplicates,
            _("not among your sub-accounts"): check.unknown,
            **{refusal.not_added: check.refused(refusal) for refusal in rules.Refusal},
            _("already selected"): [],
        }
        bad = set(check.unknown).union(*(check.refused(r) for r in rules.Refusal))
        added = []
        for account in check.accounts:
            aid = account.account_id
            if aid in bad:
                continue
            if aid in current:
                if aid not in refused[_("already selected")]:
                    refused[_("already selected")].append(aid)
                continue
            selection.append(aid)
            current.add(aid)
            added.append(aid)
        if len(selection) > limit:
            return [], {TOO_MANY: ids}
        if added:
            self.set(selection)
        return added, {reason: found for reason, found in refused.items() if found}

    def remove(self, ids: list[str]) -> list[str]:
        """Take these ids out; returns those that were in it."""
        remove = set(ids)
        kept = [a for a in self.ids if a not in remove]
        removed = [a for a in self.ids if a in remove]
        if removed:
            self.set(kept)
        return removed


@dataclass
class Summary:
    """What Issue Coupon shows before Confirm: accounts, total, budget left, approval."""

    template: CouponTemplate
    count: int
    check: rules.SelectionCheck | None
    budget_remaining: Decimal | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return self.check.total if self.check else Decimal("0")

    @property
    def needs_bd_approval(self) -> bool:
        return rules.needs_bd_approval(self.template)

    @property
    def can_confirm(self) -> bool:
        return self.check is not None and not self.problems

    @property
    def budget_after(self) -> Decimal | None:
        if self.budget_remaining is None:
            return None
        return max(self.budget_remaining - self.total, Decimal("0"))

    def as_json(self) -> dict:
        currency = self.template.currency
        unit = self.template.unit_value
        return {
            "count": self.count,
            "selected_text": ngettext("%(n)s selected", "%(n)s selected", self.count)
            % {"n": f"{self.count:,}"},
            "confirm_text": ngettext("Confirm %(n)s account", "Confirm %(n)s accounts",
                                     self.count) % {"n": f"{self.count:,}"}
            if self.count else _("Confirm"),
            "total_text": (f"{fmt(unit)} × {self.count:,} = {fmt(self.total, currency)}"
                           if self.check else "—"),
            "budget_text": (
                None if not self.template.is_platform_borne
                else _("none granted") if self.budget_remaining is None
                else fmt(self.budget_remaining, currency)
            ),
            "budget_after_text": (
                fmt(self.budget_after, currency) if self.budget_after is not None and self.count
                else ""
            ),
            "needs_bd_approval": self.needs_bd_approval,
            "problems": self.problems,
            "can_confirm": self.can_confirm,
        }


def selection_summary(*, template: CouponTemplate, ids: list[str]) -> Summary:
    """The summary of a selection, from the submit's own check."""
    check = rules.issuance_selection_check(template=template, account_ids=ids) if ids else None
    remaining = (platform_budget_remaining(partner=template.partner, currency=template.currency)
                 if template.is_platform_borne else None)
    return Summary(template=template, count=len(ids), check=check, budget_remaining=remaining,
                   problems=list(check.problems) if check else [])
