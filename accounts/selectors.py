"""Reads of tenancy: which partner or sub-account a user acts for, and their accounts."""
from decimal import Decimal

from django.db.models import Q, QuerySet

from accounts.models import (
    BD_GROUP,
    PartnerMembership,
    PlatformBudget,
    SubAccount,
    SubAccountMembership,
    User,
)


def membership_for(user) -> PartnerMembership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    # Cached on the user for the request: the mixin, the context processor and the services
    # all ask, and the partner and its BD come in the same query.
    if not hasattr(user, "_membership_cache"):
        user._membership_cache = (
            PartnerMembership.objects.select_related("partner", "partner__bd")
            .filter(user_id=user.pk).first()
        )
    return user._membership_cache


def bd_user_list() -> QuerySet[User]:
    """The users who are BDs (staff in the BD group), whom a partner can be assigned to."""
    return User.objects.filter(is_staff=True, groups__name=BD_GROUP)


def subaccount_membership_for(user) -> SubAccountMembership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        return user.subaccount_membership
    except SubAccountMembership.DoesNotExist:
        return None


def platform_budget_get(*, partner, currency: str) -> PlatformBudget | None:
    """The partner's platform-borne budget in `currency`; None when the BD granted none."""
    return PlatformBudget.objects.filter(partner=partner, currency=currency).first()


def platform_budget_remaining(*, partner, currency: str) -> Decimal | None:
    """What the partner's budget in `currency` has left to reserve; None when none is granted."""
    budget = platform_budget_get(partner=partner, currency=currency)
    return None if budget is None else budget.remaining


def platform_budget_granted(*, partner, currency: str | None = None) -> bool:
    """Whether the BD granted the partner a platform-borne budget above 0 (in `currency`)."""
    budgets = PlatformBudget.objects.filter(partner=partner, amount__gt=0)
    if currency:
        budgets = budgets.filter(currency=currency)
    return budgets.exists()


def sub_accounts_with_ids(*, partner, account_ids: list[str], fields: tuple[str, ...]):
    """The partner's sub-accounts among `account_ids` (one array parameter, `__any`, rather
    than a placeholder per ID), reading only `fields`."""
    if not account_ids:
        return SubAccount.objects.none()
    return SubAccount.objects.filter(partner=partner, account_id__any=account_ids).only(*fields)


def sub_account_list(*, partner, search: str = "", type: str = "") -> QuerySet[SubAccount]:
    """The partner's own sub-accounts: its customers and, for a distributor, its tier-2
    resellers' accounts — never those resellers' customers, who belong to the reseller."""
    qs = SubAccount.objects.filter(partner=partner)
    search = search.strip()
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(account_id__icontains=search))
    if type:
        qs = qs.filter(type=type)
    return qs.order_by("name", "id")
