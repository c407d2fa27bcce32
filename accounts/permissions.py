"""The one answer to "may this user do this here": who is a partner's BD (the admin's
scope, its decisions, the partners' settings) and who may write for a partner (the
console's changes). Pages, services, the admin and the API all ask here."""
from django.db.models import Q

from accounts.models import Partner, PartnerMembership
from accounts.selectors import membership_for
from couponplatform.exceptions import PermissionDeniedError

# What a partner whose coupon function is off is told, on every page and by every service.
COUPON_FUNCTION_OFF = "Contact your BD to enable the Coupon Function"

NOT_A_MEMBER = "You do not act for this partner."


def _signed_in(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def user_may_use_bd_admin(user) -> bool:
    """A platform operator or a BD: who may open the BD admin's pages at all (each row is
    then scoped by `bd_partners_q`)."""
    return _signed_in(user) and (user.is_superuser or user.is_bd)


def user_is_bd_of(user, partner: Partner) -> bool:
    """Whether `user` is the BD of `partner`; a platform operator counts as every
    partner's BD."""
    if not _signed_in(user):
        return False
    if user.is_superuser:
        return True
    return bool(user.is_bd and partner.bd_id == user.pk)


def bd_partners_q(user, path: str = "") -> Q:
    """`user_is_bd_of` as a filter: the rows whose partner (at `path`, "" for Partner
    itself) has `user` as its BD; every row for a platform operator, none for anyone else."""
    if not _signed_in(user) or not (user.is_superuser or user.is_bd):
        return Q(pk__in=[])
    if user.is_superuser:
        return Q()
    return Q(**{f"{path}__bd" if path else "bd": user})


def partner_write_refusal(
    user,
    partner: Partner,
    *,
    roles: tuple[str, ...] = PartnerMembership.WRITE_ROLES,
    wrong_role: str,
    not_a_member: str = NOT_A_MEMBER,
    needs_coupon_function: bool = True,
) -> str | None:
    """Why `user` may not write for `partner`, or None: they must be a member of the
    partner in one of `roles`, and (unless told otherwise) the partner's coupon function
    must be on. The messages name what the caller was about to change."""
    membership = membership_for(user)
    if membership is None or membership.partner_id != partner.pk:
        return not_a_member
    if membership.role not in roles:
        return wrong_role
    if needs_coupon_function and not partner.coupon_enabled:
        return COUPON_FUNCTION_OFF
    return None


def partner_writer_require(user, partner: Partner, **rule) -> None:
    """`partner_write_refusal` as a guard: PermissionDeniedError with the reason."""
    refusal = partner_write_refusal(user, partner, **rule)
    if refusal:
        raise PermissionDeniedError(refusal)
