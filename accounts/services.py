"""Writes of tenancy settings that BDs and operators change in the admin; all audited."""
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _

from accounts.locks import partners_for_update, platform_budgets_for_update
from accounts.models import (
    Partner,
    PlatformBudget,
)
from accounts.permissions import user_may_require
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
        raise PermissionDeniedError(_("Only a platform operator creates partners."))
    name = (name or "").strip()
    if not name:
        raise ApplicationError(_("Enter a name."))
    if bd is not None and not bd.is_bd:
        raise ApplicationError(_("%(username)s is not a BD (staff in the BD group).")
                               % {"username": bd.username})
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
    user_may_require(acting_user, "partner_settings", partner,
                     refusal=_("Only the partner's BD can change its coupon settings."))
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
        raise PermissionDeniedError(_("Only a platform operator renames partners."))
    name = (name or "").strip()
    if not name:
        raise ApplicationError(_("Enter a name."))
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
    user_may_require(acting_user, "partner_assign_bd", partner,
                     refusal=_("Only a platform operator assigns BDs."))
    if bd is not None and not bd.is_bd:
        raise ApplicationError(_("%(username)s is not a BD (staff in the BD group).")
                               % {"username": bd.username})
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
        return _("The budget must be between 0 and %(max)s.") % {"max": fmt(BUDGET_MAX)}
    if not has_at_most_two_places(amount):
        return _("The budget can have at most 2 decimal places.")
    if amount < consumed:
        return _("%(released)s of this budget is already released; it can not be set lower "
                 "than that.") % {"released": fmt(consumed, currency)}
    return None


def platform_budget_set(
    *, partner: Partner, acting_user, currency: str, amount: Decimal,
) -> PlatformBudget:
    """Grant or change a platform-borne budget. It can not go below what was released."""
    user_may_require(acting_user, "partner_budget", partner,
                     refusal=_("Only the partner's BD can change its platform budget."))
    if partner.is_tier2:
        raise ApplicationError(_("Tier-2 resellers issue partner-borne coupons only; they get "
                                 "no platform-borne budget."))
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
