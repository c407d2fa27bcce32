"""Access: the services through which platform operators change who may do what.

Sign-in, staff and platform-operator flags, group membership (the BD group makes a BD),
a partner role or a sub-account's users: every change is an audit row with before and after
(QUALITY.md: every change to money, status or permission), made here and nowhere else.
"""

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import (
    BD_GROUP,
    Partner,
    PartnerMembership,
    SubAccount,
    SubAccountMembership,
    User,
)
from audit.services import audit_record
from couponplatform.exceptions import ApplicationError, PermissionDeniedError

# ---------------------------------------------------------------------------------------
# Access: who may sign in, be staff or a platform operator, belong to a group (the BD
# group makes a BD), act for a partner in a role, or read a sub-account. Platform operators
# change it in the admin; every change is an audit row with before and after.

ACCESS_FIELDS = ("is_active", "is_staff", "is_superuser")


def _require_operator(acting_user) -> None:
    if not getattr(acting_user, "is_superuser", False):
        raise PermissionDeniedError(_("Only a platform operator changes users' access."))


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
        raise ApplicationError(_("Not a profile field: %(fields)s.")
                               % {"fields": ", ".join(sorted(unknown))})
    if not fields:
        return user
    with transaction.atomic():
        locked = _lock_user(user)
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save(update_fields=sorted(fields))
    return locked


def user_language_set(*, user: User, language: str) -> User:
    """A user's own choice of language (the header's switch): one of settings.LANGUAGES,
    or "" for their browser's. Not audited: it changes what they read, not what they may
    do. No lock: the user is the only writer of their own choice, and the last one wins."""
    codes = {code for code, _name in settings.LANGUAGES}
    if language and language not in codes:
        raise ApplicationError(f"Not a language of the platform: {language}.")
    if user.language != language:
        User.objects.filter(pk=user.pk).update(language=language)
        user.language = language
    return user


def user_access_set(
    *, user: User, acting_user, is_active: bool, is_staff: bool, is_superuser: bool,
    groups, permissions,
) -> User:
    """Set what a user may do: active, staff, platform operator, groups, permissions.
    One audit row when anything changed."""
    _require_operator(acting_user)
    if user.pk == acting_user.pk and not (is_active and is_superuser):
        raise ApplicationError(_("You can not take away your own platform operator rights or "
                                 "deactivate yourself; another platform operator can."))
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
        raise ApplicationError(_("Choose the role: admin, operator or viewer."))
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
        raise ApplicationError(_("Enter a name."))
    permissions = list(permissions)
    with transaction.atomic():
        if group is None or group.pk is None:
            locked, before = Group.objects.create(name=name), None
        else:
            locked = Group.objects.select_for_update().get(pk=group.pk)
            if locked.name == BD_GROUP and name != BD_GROUP:
                raise ApplicationError(_("The %(group)s group keeps its name: its members are "
                                         "the BDs.") % {"group": BD_GROUP})
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
