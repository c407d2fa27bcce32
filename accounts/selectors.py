"""Reads of tenancy: which partner or sub-account a user acts for, and their accounts."""
from django.db.models import Q, QuerySet

from accounts.models import BD_GROUP, PartnerMembership, SubAccount, SubAccountMembership, User


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



