"""The BD group's model permissions; the admin then scopes rows to the BD's partners."""
from django.contrib.auth.models import Group, Permission

from accounts.models import BD_GROUP

BD_PERMISSIONS = [
    ("accounts", "view_partner"), ("accounts", "change_partner"),
    ("accounts", "view_platformbudget"), ("accounts", "change_platformbudget"),
    ("accounts", "add_platformbudget"), ("accounts", "view_subaccount"),
    ("coupons", "view_coupontemplate"), ("coupons", "view_issuancerequest"),
    ("coupons", "change_issuancerequest"), ("coupons", "view_coupon"),
    ("approvals", "view_approval"), ("billing", "view_deduction"),
]


def ensure_bd_group(**kwargs) -> Group:
    group, _ = Group.objects.get_or_create(name=BD_GROUP)
    perms = []
    for app_label, codename in BD_PERMISSIONS:
        perm = Permission.objects.filter(
            content_type__app_label=app_label, codename=codename,
        ).first()
        if perm is not None:
            perms.append(perm)
    group.permissions.add(*perms)
    return group
