"""The one answer to "may this user do this here": the table of every partner action ×
role (ACTIONS, shown in docs/ROLES.md), who is a partner's BD (the admin's scope) and who
may write for a partner (the console's changes). Pages, services, the admin and the API
all ask here."""
from dataclasses import dataclass

from django.db.models import Q
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from accounts.models import Partner, PartnerMembership
from accounts.selectors import membership_for, subaccount_membership_for
from couponplatform.exceptions import PermissionDeniedError

# What a partner whose coupon function is off is told, on every page and by every service.
# In English (marked for the catalog); every place that says it says gettext(COUPON_FUNCTION_OFF).
COUPON_FUNCTION_OFF = gettext_noop("Contact your BD to enable the Coupon Function")

NOT_A_MEMBER = _("You do not act for this partner.")

# ---------------------------------------------------------------------------------------
# Who may do what: the one table (docs/ROLES.md shows it; tests/security walks it)

# The roles a person can hold towards a partner: a partner user's role, a user of one of
# its sub-accounts, its BD, or a platform operator (superuser).
ADMIN = PartnerMembership.Role.ADMIN.value
OPERATOR = PartnerMembership.Role.OPERATOR.value
VIEWER = PartnerMembership.Role.VIEWER.value
SUB_ACCOUNT = "sub_account"
BD = "bd"
PLATFORM_OPERATOR = "platform_operator"
ROLES = {
    ADMIN: "Partner admin", OPERATOR: "Operator", VIEWER: "Viewer",
    SUB_ACCOUNT: "Sub-account user", BD: "BD of the partner",
    PLATFORM_OPERATOR: "Platform operator",
}
PARTNER_ROLES = (ADMIN, OPERATOR, VIEWER)


@dataclass(frozen=True)
class Action:
    label: str
    where: str
    roles: frozenset[str]


CONSOLE, BILLING, ADMIN_SITE = "Partner console", "Billing Management", "Django admin"


def _action(label: str, where: str, *roles: str) -> Action:
    return Action(label=label, where=where, roles=frozenset(roles))


ACTIONS: dict[str, Action] = {
    "templates_view": _action("View templates", CONSOLE, ADMIN, OPERATOR, VIEWER),
    "template_create": _action("Create a template", CONSOLE, ADMIN, OPERATOR),
    "template_edit": _action("Change a template's terms", CONSOLE, ADMIN, OPERATOR),
    # Disabling stops a programme: the partner admin's decision (PRODUCT §1).
    "template_disable": _action("Disable a template", CONSOLE, ADMIN),
    "issue_select": _action("Issue Coupon: select accounts", CONSOLE, ADMIN, OPERATOR),
    "issue_confirm": _action("Issue Coupon: confirm a request", CONSOLE, ADMIN, OPERATOR),
    "requests_view": _action("View Approval Status", CONSOLE, ADMIN, OPERATOR, VIEWER),
    "request_cancel": _action("Cancel a pending request", CONSOLE, ADMIN, OPERATOR),
    "request_retry": _action("Retry a request that failed to issue", CONSOLE, ADMIN, OPERATOR),
    "request_withdraw": _action("Withdraw a request that failed to issue", CONSOLE, ADMIN,
                                OPERATOR),
    "usage_view": _action("View Coupon Usage", CONSOLE, ADMIN, OPERATOR, VIEWER),
    "usage_export": _action("Export Coupon Usage (CSV, XLSX)", CONSOLE, ADMIN, OPERATOR,
                            VIEWER),
    # Voiding withdraws money a sub-account holds (PRODUCT §6: "a partner admin").
    "coupon_void": _action("Void a coupon", CONSOLE, ADMIN),
    # A key acts for the partner in the partner's systems (docs/API.md): its admin's call.
    "api_keys_manage": _action("Create and revoke API keys", CONSOLE, ADMIN),
    # An endpoint receives the partner's events, signed with a secret only it is shown:
    # the same call as a key.
    "webhooks_manage": _action("Manage webhook endpoints, redeliver events", CONSOLE, ADMIN),
    "billing_view": _action("View its own coupons and bills", BILLING, SUB_ACCOUNT),
    "admin_templates_view": _action("View templates, coupons and deductions", ADMIN_SITE, BD,
                                    PLATFORM_OPERATOR),
    "request_approve": _action("Approve a request", ADMIN_SITE, BD, PLATFORM_OPERATOR),
    "request_reject": _action("Reject a request", ADMIN_SITE, BD, PLATFORM_OPERATOR),
    "partner_settings": _action("Switch the coupon function, set the approval rule",
                                ADMIN_SITE, BD, PLATFORM_OPERATOR),
    "partner_budget": _action("Set the platform budget", ADMIN_SITE, BD, PLATFORM_OPERATOR),
    "partner_assign_bd": _action("Assign the partner's BD", ADMIN_SITE, PLATFORM_OPERATOR),
    "usage_upload": _action("Upload usage records", ADMIN_SITE, PLATFORM_OPERATOR),
}


def partner_roles_for(action: str) -> tuple[str, ...]:
    """The partner users' roles allowed `action` (what PartnerMixin lets in)."""
    return tuple(role for role in PARTNER_ROLES if role in ACTIONS[action].roles)


def role_writes(role: str) -> bool:
    """Whether a partner user in `role` may change anything in the partner console."""
    return any(role in a.roles for k, a in ACTIONS.items()
               if a.where == CONSOLE and not k.endswith("_view"))


def user_roles(user, partner: Partner | None = None) -> set[str]:
    """Every role `user` holds towards `partner` (towards none in particular when None:
    then a sub-account user and a BD hold theirs towards their own)."""
    if not _signed_in(user):
        return set()
    roles = set()
    if user.is_superuser:
        roles.add(PLATFORM_OPERATOR)
    membership = membership_for(user)
    if membership is not None and (partner is None or membership.partner_id == partner.pk):
        roles.add(membership.role)
    sub = subaccount_membership_for(user)
    if sub is not None and (partner is None or sub.sub_account.partner_id == partner.pk):
        roles.add(SUB_ACCOUNT)
    if user.is_bd and (partner is None or partner.bd_id == user.pk):
        roles.add(BD)
    return roles


def user_may(user, action: str, partner: Partner | None = None) -> bool:
    """Whether `user` may do `action` (a key of ACTIONS) for `partner`."""
    return bool(user_roles(user, partner) & ACTIONS[action].roles)


def user_may_require(user, action: str, partner: Partner | None = None, *,
                     refusal: str) -> None:
    """`user_may` as a guard: PermissionDeniedError with `refusal`."""
    if not user_may(user, action, partner):
        raise PermissionDeniedError(refusal)


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
    action: str,
    wrong_role: str,
    not_a_member: str = NOT_A_MEMBER,
    needs_coupon_function: bool = True,
) -> str | None:
    """Why `user` may not do `action` (a partner console's change, ACTIONS) for `partner`,
    or None: they must be a member of the partner in a role the table allows, and (unless
    told otherwise) the partner's coupon function must be on. The messages name what the
    caller was about to change."""
    membership = membership_for(user)
    if membership is None or membership.partner_id != partner.pk:
        return not_a_member
    if membership.role not in partner_roles_for(action):
        return wrong_role
    if needs_coupon_function and not partner.coupon_enabled:
        return gettext(COUPON_FUNCTION_OFF)
    return None


def partner_writer_require(user, partner: Partner, **rule) -> None:
    """`partner_write_refusal` as a guard: PermissionDeniedError with the reason."""
    refusal = partner_write_refusal(user, partner, **rule)
    if refusal:
        raise PermissionDeniedError(refusal)
