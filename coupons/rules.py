"""Who can receive what: whether a template can be issued now, whether an account can be
selected for it, and the check of a whole Issue Coupon selection. Each rule is one function
the page, the account table, the submit service and the release call; none writes."""
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Partner, PlatformBudget, SubAccount
from accounts.permissions import COUPON_FUNCTION_OFF
from accounts.selectors import platform_budget_get, platform_budget_granted, sub_accounts_with_ids
from couponplatform.money import fmt
from couponplatform.text import named
from coupons.models import CostBearer, CouponTemplate
from coupons.selectors import template_cap_left, template_holders

ACCOUNT_ID_MAX = SubAccount._meta.get_field("account_id").max_length


def window_ended(*, validity_type: str, valid_until: date | None,
                 today: date | None = None) -> bool:
    """Whether a fixed validity window is over: its last day (in the platform's time zone)
    is before today, so it can issue nothing. A relative validity never ends."""
    return (validity_type == CouponTemplate.ValidityType.FIXED and valid_until is not None
            and valid_until < (today or timezone.localdate()))


def template_window_refusal(*, validity_type: str, valid_until: date | None,
                            today: date | None = None) -> str | None:
    """Why a template with this validity may not be created (or changed to it), or None:
    a fixed window that has already ended could never issue a coupon."""
    today = today or timezone.localdate()
    if window_ended(validity_type=validity_type, valid_until=valid_until, today=today):
        return _(
            "This window ended on %(until)s, before today (%(today)s): no coupon could be "
            "issued from it. Choose a valid until of today or later."
        ) % {"until": f"{valid_until:%Y-%m-%d}", "today": f"{today:%Y-%m-%d}"}
    return None


def template_window_warning(*, validity_type: str, valid_from: date | None,
                            valid_until: date | None, today: date | None = None) -> str | None:
    """What to tell the partner about a fixed window that started before today (allowed),
    or None: the days already gone count toward it."""
    today = today or timezone.localdate()
    if (validity_type != CouponTemplate.ValidityType.FIXED or valid_from is None
            or valid_until is None or valid_from >= today or valid_until < today):
        return None
    days_left = (valid_until - today).days + 1
    return ngettext(
        "The validity window started on %(start)s, before today (%(today)s): coupons issued "
        "from it now are valid until %(until)s, %(n)s day counting today.",
        "The validity window started on %(start)s, before today (%(today)s): coupons issued "
        "from it now are valid until %(until)s, %(n)s days counting today.", days_left,
    ) % {"start": f"{valid_from:%Y-%m-%d}", "today": f"{today:%Y-%m-%d}",
         "until": f"{valid_until:%Y-%m-%d}", "n": days_left}


def template_issuable_problem(template: CouponTemplate, *, today: date | None = None) -> str | None:
    """Why the template can not be issued now, or None."""
    if not template.partner.coupon_enabled:
        return _(COUPON_FUNCTION_OFF)
    if template.status != CouponTemplate.Status.ACTIVE:
        return _("This template is disabled; coupons can not be issued from it.")
    if window_ended(validity_type=template.validity_type, valid_until=template.valid_until,
                    today=today):
        return _(
            "This template's validity ended on %(until)s; coupons can not be issued from it."
        ) % {"until": f"{template.valid_until:%Y-%m-%d}"}
    return None


def needs_bd_approval(template: CouponTemplate) -> bool:
    return template.is_platform_borne or template.partner.requires_bd_approval


def can_create_platform_borne(*, partner: Partner, currency: str | None = None) -> bool:
    return not partner.is_tier2 and platform_budget_granted(partner=partner, currency=currency)


def platform_borne_problem(*, partner: Partner, cost_bearer: str, currency: str) -> str | None:
    """Why this partner may not hold a platform-borne template in `currency`, or None."""
    if cost_bearer != CostBearer.PLATFORM:
        return None
    if partner.is_tier2:
        return _("A tier-2 reseller can create partner-borne templates only.")
    if not can_create_platform_borne(partner=partner, currency=currency):
        return _(
            "Your BD has granted no platform-borne budget in %(currency)s; "
            "choose partner-borne or ask your BD."
        ) % {"currency": currency}
    return None


# ---------------------------------------------------------------------------------------
# Can this account be selected for this template


class Refusal(Enum):
    """Why an account can not be selected for a template, in the words of each place that
    says it: the account table's row, the selection check's problem (for many accounts),
    and Issue Coupon's "not added" notice. The value is the SelectionCheck list it fills;
    the words are read in the active language when they are said."""

    TIER2 = "tier2"
    HOLDING = "holding"
    CURRENCY = "wrong_currency"

    @property
    def field(self) -> str:
        return self.value

    def row(self, *, account_currency: str) -> str:
        """The account table's note on a row that can not be selected."""
        if self is Refusal.TIER2:
            return _("Tier-2 reseller: platform-borne coupons can not be issued to it")
        if self is Refusal.HOLDING:
            return _("Already holds this coupon or waits for it (Limited to 1)")
        return _("Billed in %(currency)s") % {"currency": account_currency}

    def problem(self, *, ids: str, template_currency: str) -> str:
        """The selection check's problem naming the refused accounts."""
        if self is Refusal.TIER2:
            text = _("Platform-borne coupons can not be issued to tier-2 resellers: %(ids)s.")
        elif self is Refusal.HOLDING:
            text = _("This template is Limited to 1 and these accounts already hold it or wait "
                     "for it: %(ids)s.")
        else:
            text = _("These accounts are billed in another currency than %(currency)s: "
                     "%(ids)s.")
        return text % {"ids": ids, "currency": template_currency}

    @property
    def not_added(self) -> str:
        """Issue Coupon's "Not added — …" reason."""
        if self is Refusal.TIER2:
            return _("tier-2 resellers (platform-borne coupons can not be issued to them)")
        if self is Refusal.HOLDING:
            return _("already hold this coupon or wait for it (Limited to 1)")
        return _("billed in another currency")


def account_refusals(*, template: CouponTemplate, account, holds: bool) -> list[Refusal]:
    """Every reason `account` (its type and currency) can not be selected for `template`;
    none when it can. `holds`: it already holds the template or waits for it."""
    refusals = []
    if template.is_platform_borne and account.type == SubAccount.Type.TIER2_RESELLER:
        refusals.append(Refusal.TIER2)
    if template.is_limited and holds:
        refusals.append(Refusal.HOLDING)
    if account.currency != template.currency:
        refusals.append(Refusal.CURRENCY)
    return refusals


# ---------------------------------------------------------------------------------------
# A whole selection


@dataclass
class SelectionCheck:
    """What an Issue Coupon selection would do, and every reason it can not."""

    template: CouponTemplate
    accounts: list[SubAccount] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    tier2: list[str] = field(default_factory=list)
    holding: list[str] = field(default_factory=list)
    wrong_currency: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # The problems that name accounts, by rule: (code, account IDs, the problem's message).
    refused_groups: list[tuple[str, list[str], str]] = field(default_factory=list)

    def _refuse(self, code: str, ids: list[str], message: str) -> None:
        self.problems.append(message)
        self.refused_groups.append((code, ids, message))

    @property
    def count(self) -> int:
        return len(self.accounts)

    @property
    def unit_value(self) -> Decimal:
        return self.template.unit_value

    @property
    def total(self) -> Decimal:
        return self.template.unit_value * self.count

    @property
    def needs_bd_approval(self) -> bool:
        return needs_bd_approval(self.template)

    @property
    def ok(self) -> bool:
        return not self.problems

    def refused(self, refusal: Refusal) -> list[str]:
        """The selected account IDs refused for `refusal`."""
        return getattr(self, refusal.field)


def issuance_selection_check(
    *, template: CouponTemplate, account_ids: list[str], today: date | None = None,
) -> SelectionCheck:
    """Check a selection against every issuing rule without writing anything."""
    check = SelectionCheck(template=template)
    if problem := template_issuable_problem(template, today=today):
        check.problems.append(problem)
    cleaned = [str(a).strip() for a in account_ids if str(a).strip()]
    if not cleaned:
        check.problems.append(_("Select at least one account."))
        return check
    limit = settings.ISSUE_MAX_ACCOUNTS
    seen: set[str] = set()
    unique: list[str] = []
    for account_id in cleaned:
        if account_id in seen:
            if account_id not in check.duplicates:
                check.duplicates.append(account_id)
        else:
            seen.add(account_id)
            unique.append(account_id)
    if len(unique) > limit:
        check.problems.append(ngettext(
            "%(n)s account was selected; one request can hold at most %(max)s.",
            "%(n)s accounts were selected; one request can hold at most %(max)s.", len(unique),
        ) % {"n": f"{len(unique):,}", "max": f"{limit:,}"})
        return check
    # An ID no account can have (a NUL byte, which PostgreSQL refuses in any text: a 500 on
    # Issue Coupon's pick list; or longer than the column) is unknown without asking.
    possible = [a for a in unique if "\x00" not in a and len(a) <= ACCOUNT_ID_MAX]
    found = {
        a.account_id: a
        for a in sub_accounts_with_ids(partner=template.partner, account_ids=possible,
                                       fields=("id", "account_id", "type", "currency"))
    }
    check.unknown = [a for a in unique if a not in found]
    accounts = [found[a] for a in unique if a in found]
    held = (template_holders(template=template, sub_account_ids=[a.pk for a in accounts])
            if template.is_limited and accounts else set())
    for account in accounts:
        for refusal in account_refusals(template=template, account=account,
                                        holds=account.pk in held):
            check.refused(refusal).append(account.account_id)
    check.accounts = accounts
    if check.duplicates:
        check._refuse("duplicate", check.duplicates,
                      _("These account IDs are listed twice: %(ids)s.")
                      % {"ids": named(check.duplicates)})
    if check.unknown:
        check._refuse("unknown", check.unknown,
                      _("These account IDs are not among your sub-accounts: %(ids)s.")
                      % {"ids": named(check.unknown)})
    for refusal in Refusal:
        if ids := check.refused(refusal):
            check._refuse(refusal.field, ids, refusal.problem(
                ids=named(ids), template_currency=template.currency,
            ))
    if not check.problems and template.is_platform_borne:
        budget = platform_budget_get(partner=template.partner, currency=template.currency)
        budget = budget or PlatformBudget.none_granted(
            partner=template.partner, currency=template.currency,
        )
        if refusal := budget.reserve_refusal(check.total):
            check.problems.append(refusal)
    if not check.problems:
        cap_problem = release_cap_problem(template, check.count, check.total)
        if cap_problem:
            check.problems.append(cap_problem)
    return check


def release_cap_problem(template: CouponTemplate, count: int, total: Decimal) -> str | None:
    """Why `count` more coupons totalling `total` would break the template's release caps."""
    count_left, amount_left = template_cap_left(template)
    if count_left is not None and count > count_left:
        return ngettext(
            "This template may release at most %(cap)s coupon; %(left)s left, %(n)s selected.",
            "This template may release at most %(cap)s coupons; %(left)s left, %(n)s selected.",
            template.release_cap_count,
        ) % {"cap": f"{template.release_cap_count:,}", "left": f"{count_left:,}",
             "n": f"{count:,}"}
    if amount_left is not None and total > amount_left:
        return _(
            "This template may release at most %(cap)s; %(left)s is left and this request "
            "totals %(total)s."
        ) % {"cap": fmt(template.release_cap_amount, template.currency),
             "left": fmt(amount_left, template.currency), "total": fmt(total, template.currency)}
    return None
