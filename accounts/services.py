"""Writes of tenancy settings that BDs and operators change in the admin; all audited."""
from decimal import Decimal

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from accounts.locks import partners_for_update, platform_budgets_for_update
from accounts.models import (
    BD_GROUP,
    Partner,
    PartnerMembership,
    PlatformBudget,
    SubAccount,
    SubAccountMembership,
    User,
)
from accounts.permissions import user_is_bd_of
from audit.services import audit_record
from couponplatform.exceptions import ApplicationError, PermissionDeniedError
from couponplatform.money import MAX_AMOUNT, fmt, has_at_most_two_places

BUDGET_MAX = MAX_AMOUNT * 1000


def partner_create(
    *,
    acting_user,
    name: str,
    kind: str,
    tier: int = Partner.Tier.TIER1,
    parent: Partner | None = None,
    bd=None,
    coupon_enabled: bool = False,
    requires_bd_approval: bool = True,
) -> Partner:
    """A platform operator adds a partner (the database holds the tier rules)."""
    if not acting_user.is_superuser:
        raise PermissionDeniedError("Only a platform operator creates partners.")
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Enter a name.")
    if bd is not None and not bd.is_bd:
        raise ApplicationError(f"{bd.username} is not a BD (staff in the BD group).")
    with transaction.atomic():
        partner = Partner.objects.create(
            name=name, kind=kind, tier=tier, parent=parent, bd=bd,
            coupon_enabled=coupon_enabled, requires_bd_approval=requires_bd_approval,
        )
        audit_record(actor=acting_user, partner=partner, action="partner.create", obj=partner,
                     after={"name": partner.name, "kind": partner.kind, "tier": partner.tier,
                            "bd": partner.bd_id, "coupon_enabled": partner.coupon_enabled,
                            "requires_bd_approval": partner.requires_bd_approval})
    return partner


def partner_coupon_settings_update(
    *, partner: Partner, acting_user, coupon_enabled: bool, requires_bd_approval: bool,
) -> Partner:
    if not user_is_bd_of(acting_user, partner):
        raise PermissionDeniedError("Only the partner's BD can change its coupon settings.")
    with transaction.atomic():
        locked = partners_for_update().get(pk=partner.pk)
        before = {"coupon_enabled": locked.coupon_enabled,
                  "requires_bd_approval": locked.requires_bd_approval}
        after = {"coupon_enabled": coupon_enabled, "requires_bd_approval": requires_bd_approval}
        if before == after:
            return locked
        locked.coupon_enabled = coupon_enabled
        locked.requires_bd_approval = requires_bd_approval
        locked.save(update_fields=["coupon_enabled", "requires_bd_approval"])
        audit_record(actor=acting_user, partner=locked, action="partner.coupon_settings",
                     obj=locked, before=before, after=after)
    return locked


def partner_rename(*, partner: Partner, acting_user, name: str) -> Partner:
    if not acting_user.is_superuser:
        raise PermissionDeniedError("Only a platform operator renames partners.")
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Enter a name.")
    with transaction.atomic():
        locked = partners_for_update().get(pk=partner.pk)
        before = {"name": locked.name}
        if locked.name == name:
            return locked
        locked.name = name
        locked.save(update_fields=["name"])
        audit_record(actor=acting_user, partner=locked, action="partner.rename", obj=locked,
                     before=before, after={"name": name})
    return locked


def partner_bd_assign(*, partner: Partner, acting_user, bd) -> Partner:
    if not acting_user.is_superuser:
        raise PermissionDeniedError("Only a platform operator assigns BDs.")
    if bd is not None and not bd.is_bd:
        raise ApplicationError(f"{bd.username} is not a BD (staff in the BD group).")
    with transaction.atomic():
        locked = partners_for_update().get(pk=partner.pk)
        if locked.bd_id == (bd.pk if bd else None):
            return locked
        before = {"bd": locked.bd_id}
        locked.bd = bd
        locked.save(update_fields=["bd"])
        audit_record(actor=acting_user, partner=locked, action="partner.assign_bd", obj=locked,
                     before=before, after={"bd": bd.pk if bd else None})
    return locked


def platform_budget_amount_problem(
    amount: Decimal | None, *, consumed: Decimal = Decimal("0"), currency: str = "",
) -> str | None:
    """Why `amount` can not be a platform-borne budget that has released `consumed`, or
    None. The service checks it under the budget's lock; the admin's form shows it early."""
    if amount is None or not amount.is_finite() or amount < 0 or amount > BUDGET_MAX:
        return f"The budget must be between 0 and {fmt(BUDGET_MAX)}."
    if not has_at_most_two_places(amount):
        return "The budget can have at most 2 decimal places."
    if amount < consumed:
        return (f"{fmt(consumed, currency)} of this budget is already released; it can not "
                "be set lower than that.")
    return None


def platform_budget_set(
    *, partner: Partner, acting_user, currency: str, amount: Decimal,
) -> PlatformBudget:
    """Grant or change a platform-borne budget. It can not go below what was released."""
    if not user_is_bd_of(acting_user, partner):
        raise PermissionDeniedError("Only the partner's BD can change its platform budget.")
    if partner.is_tier2:
        raise ApplicationError("Tier-2 resellers issue partner-borne coupons only; they get no "
                               "platform-borne budget.")
    problem = platform_budget_amount_problem(amount)
    if problem:
        raise ApplicationError(problem)
    with transaction.atomic():
        budget, created = platform_budgets_for_update().get_or_create(
            partner=partner, currency=currency, defaults={"amount": amount},
        )
        before = None if created else {"amount": budget.amount}
        if not created:
            problem = platform_budget_amount_problem(
                amount, consumed=budget.consumed, currency=currency,
            )
            if problem:
                raise ApplicationError(problem)
            if amount == budget.amount:
                return budget
            budget.amount = amount
            budget.save(update_fields=["amount"])
        audit_record(actor=acting_user, partner=partner, action="partner.platform_budget",
                     obj=budget, before=before,
                     after={"currency": currency, "amount": amount})
    return budget


# ---------------------------------------------------------------------------------------
# Access: who may sign in, be staff or a platform operator, belong to a group (the BD
# group makes a BD), act for a partner in a role, or read a sub-account. Platform operators
# change it in the admin; every change is an audit row with before and after.

ACCESS_FIELDS = ("is_active", "is_staff", "is_superuser")


def _require_operator(acting_user) -> None:
    if not getattr(acting_user, "is_superuser", False):
        raise PermissionDeniedError("Only a platform operator changes users' access.")


def _lock_user(user) -> User:
    """The user's row, locked: one user's access changes one at a time (lock order: the
    user, then their memberships)."""
    return User.objects.select_for_update().get(pk=user.pk)


def _permission_names(permissions) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions)


def _access_snapshot(user: User) -> dict:
    return {
        **{name: getattr(user, name) for name in ACCESS_FIELDS},
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "permissions": _permission_names(user.user_permissions.select_related("content_type")),
    }


def _tenant_of(user: User) -> Partner | None:
    """The partner whose audit log shows a change to this user: the one they act for."""
    membership = PartnerMembership.objects.filter(user=user).select_related("partner").first()
    if membership is not None:
        return membership.partner
    sub = SubAccountMembership.objects.filter(user=user).select_related(
        "sub_account__partner").first()
    return sub.sub_account.partner if sub is not None else None


def user_profile_update(*, user: User, acting_user, fields: dict) -> User:
    """Name, e-mail, username, dates: what says who a user is, not what they may do (not
    audited; the admin's own history keeps it)."""
    _require_operator(acting_user)
    allowed = {"username", "first_name", "last_name", "email", "last_login", "date_joined"}
    unknown = set(fields) - allowed
    if unknown:
        raise ApplicationError(f"Not a profile field: {', '.join(sorted(unknown))}.")
    if not fields:
        return user
    with transaction.atomic():
        locked = _lock_user(user)
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save(update_fields=sorted(fields))
    return locked


def user_access_set(
    *, user: User, acting_user, is_active: bool, is_staff: bool, is_superuser: bool,
    groups, permissions,
) -> User:
    """Set what a user may do: active, staff, platform operator, groups, permissions.
    One audit row when anything changed."""
    _require_operator(acting_user)
    if user.pk == acting_user.pk and not (is_active and is_superuser):
        raise ApplicationError("You can not take away your own platform operator rights or "
                               "deactivate yourself; another platform operator can.")
    groups, permissions = list(groups), list(permissions)
    with transaction.atomic():
        locked = _lock_user(user)
        before = _access_snapshot(locked)
        for name, value in (("is_active", is_active), ("is_staff", is_staff),
                            ("is_superuser", is_superuser)):
            setattr(locked, name, bool(value))
        locked.save(update_fields=list(ACCESS_FIELDS))
        locked.groups.set(groups)
        locked.user_permissions.set(permissions)
        after = _access_snapshot(locked)
        if after != before:
            audit_record(actor=acting_user, partner=_tenant_of(locked), action="user.access",
                         obj=locked, before=before, after=after)
    return locked


def _membership_row(membership) -> dict | None:
    if membership is None:
        return None
    if isinstance(membership, PartnerMembership):
        return {"partner": membership.partner_id, "role": membership.role}
    return {"sub_account": membership.sub_account.account_id,
            "partner": membership.sub_account.partner_id}


def partner_membership_set(
    *, user: User, acting_user, partner: Partner, role: str,
) -> PartnerMembership:
    """Make `user` act for `partner` in `role` (admin, operator, viewer), or change which
    partner or role. Audited for the partner (and, on a move, for the one left)."""
    _require_operator(acting_user)
    if role not in PartnerMembership.Role.values:
        raise ApplicationError("Choose the role: admin, operator or viewer.")
    with transaction.atomic():
        locked = _lock_user(user)
        membership = PartnerMembership.objects.select_for_update().filter(user=locked).first()
        before = _membership_row(membership)
        if membership is None:
            membership = PartnerMembership(user=locked)
        elif membership.partner_id == partner.pk and membership.role == role:
            return membership
        left = membership.partner if membership.pk and membership.partner_id != partner.pk \
            else None
        membership.partner, membership.role = partner, role
        membership.save()
        after = _membership_row(membership)
        if left is not None:
            audit_record(actor=acting_user, partner=left, action="membership.partner_remove",
                         obj=locked, before=before, after=None)
            before = None
        audit_record(actor=acting_user, partner=partner, action="membership.partner_set",
                     obj=locked, before=before, after=after)
    return membership


def partner_membership_remove(*, user: User, acting_user) -> None:
    _require_operator(acting_user)
    with transaction.atomic():
        locked = _lock_user(user)
        membership = (PartnerMembership.objects.select_for_update().select_related("partner")
                      .filter(user=locked).first())
        if membership is None:
            return
        before, partner = _membership_row(membership), membership.partner
        membership.delete()
        audit_record(actor=acting_user, partner=partner, action="membership.partner_remove",
                     obj=locked, before=before, after=None)


def subaccount_membership_set(
    *, user: User, acting_user, sub_account: SubAccount,
) -> SubAccountMembership:
    """Make `user` a user of `sub_account` (Billing Management). Audited for its partner."""
    _require_operator(acting_user)
    with transaction.atomic():
        locked = _lock_user(user)
        membership = (SubAccountMembership.objects.select_for_update()
                      .select_related("sub_account").filter(user=locked).first())
        before = _membership_row(membership)
        if membership is None:
            membership = SubAccountMembership(user=locked)
        elif membership.sub_account_id == sub_account.pk:
            return membership
        old_partner = membership.sub_account.partner if membership.pk else None
        membership.sub_account = sub_account
        membership.save()
        after = _membership_row(membership)
        if old_partner is not None and old_partner.pk != sub_account.partner_id:
            audit_record(actor=acting_user, partner=old_partner,
                         action="membership.subaccount_remove", obj=locked, before=before,
                         after=None)
            before = None
        audit_record(actor=acting_user, partner=sub_account.partner,
                     action="membership.subaccount_set", obj=locked, before=before, after=after)
    return membership


def subaccount_membership_remove(*, user: User, acting_user) -> None:
    _require_operator(acting_user)
    with transaction.atomic():
        locked = _lock_user(user)
        membership = (SubAccountMembership.objects.select_for_update()
                      .select_related("sub_account__partner").filter(user=locked).first())
        if membership is None:
            return
        before, partner = _membership_row(membership), membership.sub_account.partner
        membership.delete()
        audit_record(actor=acting_user, partner=partner, action="membership.subaccount_remove",
                     obj=locked, before=before, after=None)


def group_save(*, group: Group | None, acting_user, name: str, permissions) -> Group:
    """Create a group or change its name and permissions (the BD group is what makes a BD:
    renaming it would un-make every BD). Audited."""
    _require_operator(acting_user)
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Enter a name.")
    permissions = list(permissions)
    with transaction.atomic():
        if group is None or group.pk is None:
            locked, before = Group.objects.create(name=name), None
        else:
            locked = Group.objects.select_for_update().get(pk=group.pk)
            if locked.name == BD_GROUP and name != BD_GROUP:
                raise ApplicationError(f"The {BD_GROUP} group keeps its name: its members are "
                                       "the BDs.")
            before = {"name": locked.name, "permissions": _permission_names(
                locked.permissions.select_related("content_type"))}
            if locked.name != name:
                locked.name = name
                locked.save(update_fields=["name"])
        locked.permissions.set(permissions)
        after = {"name": locked.name, "permissions": _permission_names(
            Permission.objects.filter(group=locked).select_related("content_type"))}
        if after != before:
            audit_record(actor=acting_user, partner=None,
                         action="group.create" if before is None else "group.update",
                         obj=locked, before=before, after=after)
    return locked
