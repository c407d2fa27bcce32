"""Writes of the coupons app: templates and issuance requests (PRODUCT §3–§4)."""
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from couponplatform.accounts.models import (
    Partner,
    PartnerMembership,
    PlatformBudget,
    Product,
    SubAccount,
)
from couponplatform.accounts.selectors import membership_for
from couponplatform.audit.services import audit_record
from couponplatform.db import bulk_insert
from couponplatform.exceptions import ApplicationError, PermissionDeniedError
from couponplatform.money import fmt
from coupons.models import (
    CostBearer,
    CouponKind,
    CouponTemplate,
    IssuanceRecipient,
    IssuanceRequest,
)
from coupons.selectors import issuance_request_for_submission
from coupons.validators import template_terms_errors

# Sent inside the submit transaction with the new request; approvals opens its approval
# or approves it at once (coupons does not import approvals). A receiver that raises
# rolls the submit back.
issuance_request_submitted = Signal()
# Sent after coupons of a request are released and committed, with request_id and
# sub_account_ids; billing posts the accounts' outstanding bills (coupons does not import
# billing).
coupons_released = Signal()

WRITE_ROLES = (PartnerMembership.Role.ADMIN, PartnerMembership.Role.OPERATOR)


class TemplateTermsError(ApplicationError):
    """The template's terms break a rule; `errors` maps each field to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("Please correct the errors below.", extra={"errors": errors})
        self.errors = errors


class AlreadySubmittedError(ApplicationError):
    """This selection's token was confirmed before; `request` is what it made."""

    def __init__(self, request: IssuanceRequest):
        super().__init__(f"This selection was already submitted as request #{request.pk}.",
                         extra={"request": request})
        self.request = request


def _require_writer(*, partner: Partner, acting_user) -> None:
    membership = membership_for(acting_user)
    if membership is None or membership.partner_id != partner.pk:
        raise PermissionDeniedError("You do not act for this partner.")
    if membership.role not in WRITE_ROLES:
        raise PermissionDeniedError("Your role can view coupons but not change them.")
    if not partner.coupon_enabled:
        raise PermissionDeniedError("Contact your BD to enable the Coupon Function")


def platform_budget_remaining(*, partner: Partner, currency: str) -> Decimal | None:
    """None when the BD granted no platform-borne budget in that currency."""
    budget = PlatformBudget.objects.filter(partner=partner, currency=currency).first()
    return None if budget is None else budget.remaining


def can_create_platform_borne(*, partner: Partner, currency: str | None = None) -> bool:
    if partner.is_tier2:
        return False
    budgets = PlatformBudget.objects.filter(partner=partner, amount__gt=0)
    if currency:
        budgets = budgets.filter(currency=currency)
    return budgets.exists()


def _platform_borne_error(*, partner: Partner, cost_bearer: str, currency: str) -> str | None:
    """Why this partner may not hold a platform-borne template in `currency`, or None."""
    if cost_bearer != CostBearer.PLATFORM:
        return None
    if partner.is_tier2:
        return "A tier-2 reseller can create partner-borne templates only."
    if not can_create_platform_borne(partner=partner, currency=currency):
        return (
            f"Your BD has granted no platform-borne budget in {currency}; "
            "choose partner-borne or ask your BD."
        )
    return None


def _template_snapshot(template: CouponTemplate) -> dict:
    snap = {name: getattr(template, name) for name in CouponTemplate.MONEY_FIELDS}
    snap.update(name=template.name, status=template.status)
    snap["products"] = sorted(template.products.values_list("code", flat=True))
    return snap


def coupon_template_create(
    *,
    partner: Partner,
    acting_user,
    name: str,
    kind: str,
    currency: str,
    face_value: Decimal,
    cost_bearer: str,
    issue_limit: str,
    validity_type: str,
    description: str = "",
    discount_rate: Decimal | None = None,
    discount_uses: int | None = None,
    min_bill_amount: Decimal | None = None,
    valid_from: date | None = None,
    valid_until: date | None = None,
    valid_days: int | None = None,
    all_products: bool = True,
    products: list[Product] | None = None,
    release_cap_count: int | None = None,
    release_cap_amount: Decimal | None = None,
) -> CouponTemplate:
    _require_writer(partner=partner, acting_user=acting_user)
    products = list(products or [])
    terms = dict(
        kind=kind, currency=currency, face_value=face_value, discount_rate=discount_rate,
        discount_uses=discount_uses, min_bill_amount=min_bill_amount,
        validity_type=validity_type, valid_from=valid_from, valid_until=valid_until,
        valid_days=valid_days, all_products=all_products, products=products,
        release_cap_count=release_cap_count, release_cap_amount=release_cap_amount,
        cost_bearer=cost_bearer, issue_limit=issue_limit,
    )
    errors = template_terms_errors(terms)
    name = (name or "").strip()
    if not name:
        errors["name"] = "Enter a name."
    if "cost_bearer" not in errors and (
        msg := _platform_borne_error(partner=partner, cost_bearer=cost_bearer, currency=currency)
    ):
        errors["cost_bearer"] = msg
    if errors:
        raise TemplateTermsError(errors)
    # Terms that do not apply to the kind are cleared, so a row says one thing.
    if kind != CouponKind.DISCOUNT:
        discount_rate = discount_uses = None
    if kind != CouponKind.THRESHOLD:
        min_bill_amount = None
    if validity_type == CouponTemplate.ValidityType.FIXED:
        valid_days = None
    else:
        valid_from = valid_until = None
    with transaction.atomic():
        template = CouponTemplate(
            partner=partner, name=name, description=description.strip(), kind=kind,
            currency=currency, face_value=face_value, discount_rate=discount_rate,
            discount_uses=discount_uses, min_bill_amount=min_bill_amount,
            validity_type=validity_type, valid_from=valid_from, valid_until=valid_until,
            valid_days=valid_days, all_products=all_products, cost_bearer=cost_bearer,
            issue_limit=issue_limit, release_cap_count=release_cap_count,
            release_cap_amount=release_cap_amount, created_by=acting_user,
        )
        template.save()
        if not all_products:
            template.products.set(products)
        audit_record(
            actor=acting_user, partner=partner, action="template.create", obj=template,
            after=_template_snapshot(template),
        )
    return template


def template_is_frozen(template: CouponTemplate) -> bool:
    """Money fields freeze once any coupon was issued or requested from the template."""
    return IssuanceRecipient.objects.filter(template=template).exists()


def coupon_template_update(
    *, template: CouponTemplate, acting_user, **changes,
) -> CouponTemplate:
    """Change name and description always; money terms only while nothing was issued."""
    _require_writer(partner=template.partner, acting_user=acting_user)
    allowed = {"name", "description", *CouponTemplate.MONEY_FIELDS, "products"}
    unknown = set(changes) - allowed
    if unknown:
        raise ApplicationError(f"These fields can not be changed: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        locked = CouponTemplate.objects.select_for_update().get(pk=template.pk)
        before = _template_snapshot(locked)
        money_changes = {
            k for k in changes
            if k in CouponTemplate.MONEY_FIELDS or k == "products"
        }
        current_products = set(locked.products.values_list("pk", flat=True))
        changed_money = {
            k for k in money_changes
            if (k == "products" and {p.pk for p in changes[k]} != current_products)
            or (k != "products" and getattr(locked, k) != changes[k])
        }
        if changed_money and template_is_frozen(locked):
            raise ApplicationError(
                "Coupons were issued from this template, so its amounts, validity, products "
                "and limits can no longer change. Disable it and create a new one.",
            )
        terms = {k: getattr(locked, k) for k in CouponTemplate.MONEY_FIELDS}
        terms["products"] = list(locked.products.all())
        terms.update({k: v for k, v in changes.items() if k in money_changes})
        errors = template_terms_errors(terms)
        # The same rule as at create: an update must not turn a template platform-borne for
        # a tier-2 reseller or a partner without a budget in the (new) currency.
        if "cost_bearer" not in errors and ({"cost_bearer", "currency"} & money_changes) and (
            msg := _platform_borne_error(
                partner=locked.partner, cost_bearer=terms["cost_bearer"],
                currency=terms["currency"],
            )
        ):
            errors["cost_bearer"] = msg
        if "name" in changes and not (changes["name"] or "").strip():
            errors["name"] = "Enter a name."
        if errors:
            raise TemplateTermsError(errors)
        products = changes.pop("products", None)
        for key, value in changes.items():
            setattr(locked, key, value.strip() if isinstance(value, str) else value)
        locked.save(update_fields=list(changes) or None)
        if products is not None:
            locked.products.set(products)
        audit_record(
            actor=acting_user, partner=locked.partner, action="template.update", obj=locked,
            before=before, after=_template_snapshot(locked),
        )
    return locked


def coupon_template_disable(*, template: CouponTemplate, acting_user) -> CouponTemplate:
    _require_writer(partner=template.partner, acting_user=acting_user)
    with transaction.atomic():
        locked = CouponTemplate.objects.select_for_update().get(pk=template.pk)
        if locked.status == CouponTemplate.Status.DISABLED:
            raise ApplicationError("This template is already disabled.")
        locked.status = CouponTemplate.Status.DISABLED
        locked.disabled_at = timezone.now()
        locked.save(update_fields=["status", "disabled_at"])
        audit_record(
            actor=acting_user, partner=locked.partner, action="template.disable", obj=locked,
            before={"status": CouponTemplate.Status.ACTIVE},
            after={"status": CouponTemplate.Status.DISABLED},
        )
    return locked


# ---------------------------------------------------------------------------------------
# Issuing


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


def needs_bd_approval(template: CouponTemplate) -> bool:
    return template.is_platform_borne or template.partner.requires_bd_approval


def named(ids: list[str], limit: int = 20) -> str:
    """'A, B and 3 more' for messages: at most `limit` values, each cut to an account ID's
    length (a pasted 400,000-character value is shown by its start, not kept whole in the
    session's messages)."""
    shown = ", ".join(_shortened(value) for value in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _shortened(value: str) -> str:
    return value if len(value) <= ACCOUNT_ID_MAX else value[:ACCOUNT_ID_MAX] + "…"


def template_issuable_problem(template: CouponTemplate, *, today: date | None = None) -> str | None:
    """Why the template can not be issued now, or None."""
    today = today or timezone.localdate()
    if not template.partner.coupon_enabled:
        return "Contact your BD to enable the Coupon Function"
    if template.status != CouponTemplate.Status.ACTIVE:
        return "This template is disabled; coupons can not be issued from it."
    if template.validity_type == CouponTemplate.ValidityType.FIXED and (
        template.valid_until < today
    ):
        return (
            f"This template's validity ended on {template.valid_until:%Y-%m-%d}; "
            "coupons can not be issued from it."
        )
    return None


ACCOUNT_ID_MAX = SubAccount._meta.get_field("account_id").max_length


def issuance_selection_check(
    *, template: CouponTemplate, account_ids: list[str], today: date | None = None,
) -> SelectionCheck:
    """Check a selection against every rule of PRODUCT §4 without writing anything."""
    check = SelectionCheck(template=template)
    if problem := template_issuable_problem(template, today=today):
        check.problems.append(problem)
    cleaned = [str(a).strip() for a in account_ids if str(a).strip()]
    if not cleaned:
        check.problems.append("Select at least one account.")
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
        check.problems.append(
            f"{len(unique):,} accounts were selected; one request can hold at most {limit:,}.",
        )
        return check
    # An ID no account can have (a NUL byte, which PostgreSQL refuses in any text: a 500 on
    # Issue Coupon's pick list; or longer than the column) is unknown without asking.
    possible = [a for a in unique if "\x00" not in a and len(a) <= ACCOUNT_ID_MAX]
    found = {
        a.account_id: a
        for a in SubAccount.objects.filter(
            partner=template.partner, account_id__any=possible,
        ).only("id", "account_id", "type", "currency")
    } if possible else {}
    check.unknown = [a for a in unique if a not in found]
    accounts = [found[a] for a in unique if a in found]
    if template.is_platform_borne:
        check.tier2 = [a.account_id for a in accounts if a.type == SubAccount.Type.TIER2_RESELLER]
    if template.is_limited and accounts:
        held = set(
            IssuanceRecipient.objects.filter(
                template=template, holds=True, sub_account_id__any=[a.pk for a in accounts],
            ).values_list("sub_account_id", flat=True)
        )
        check.holding = [a.account_id for a in accounts if a.pk in held]
    check.wrong_currency = [a.account_id for a in accounts if a.currency != template.currency]
    check.accounts = accounts
    if check.duplicates:
        check.problems.append(f"These account IDs are listed twice: {named(check.duplicates)}.")
    if check.unknown:
        check.problems.append(
            f"These account IDs are not among your sub-accounts: {named(check.unknown)}.",
        )
    if check.tier2:
        check.problems.append(
            "Platform-borne coupons can not be issued to tier-2 resellers: "
            f"{named(check.tier2)}.",
        )
    if check.holding:
        check.problems.append(
            "This template is Limited to 1 and these accounts already hold it or wait for it: "
            f"{named(check.holding)}.",
        )
    if check.wrong_currency:
        check.problems.append(
            f"These accounts are billed in another currency than {template.currency}: "
            f"{named(check.wrong_currency)}.",
        )
    if not check.problems and template.is_platform_borne:
        remaining = platform_budget_remaining(partner=template.partner, currency=template.currency)
        if remaining is None or check.total > remaining:
            check.problems.append(_budget_message(check.total, remaining, template.currency))
    if not check.problems:
        cap_problem = _release_cap_problem(template, check.count, check.total)
        if cap_problem:
            check.problems.append(cap_problem)
    return check


def _budget_message(total: Decimal, remaining: Decimal | None, currency: str) -> str:
    return (
        f"This request totals {fmt(total, currency)}, more than the remaining platform-borne "
        f"budget of {fmt(remaining or Decimal('0'), currency)}."
    )


def template_cap_left(template: CouponTemplate) -> tuple[int | None, Decimal | None]:
    """What the template's release caps leave for new requests: (coupons, amount), None
    where there is no cap. Every recipient still holding a place counts (pending, approved,
    failed to issue and issued), as the submit checks."""
    if template.release_cap_count is None and template.release_cap_amount is None:
        return None, None
    committed = IssuanceRecipient.objects.filter(template=template, holds=True).count()
    count_left = (
        max(template.release_cap_count - committed, 0)
        if template.release_cap_count is not None else None
    )
    amount_left = (
        max(template.release_cap_amount - template.unit_value * committed, Decimal("0"))
        if template.release_cap_amount is not None else None
    )
    return count_left, amount_left


def _release_cap_problem(template: CouponTemplate, count: int, total: Decimal) -> str | None:
    count_left, amount_left = template_cap_left(template)
    if count_left is not None and count > count_left:
        return (
            f"This template may release at most {template.release_cap_count:,} coupons; "
            f"{count_left:,} are left and {count:,} were selected."
        )
    if amount_left is not None and total > amount_left:
        return (
            f"This template may release at most "
            f"{fmt(template.release_cap_amount, template.currency)}; "
            f"{fmt(amount_left, template.currency)} is left and this request totals "
            f"{fmt(total, template.currency)}."
        )
    return None


def issuance_request_postings_confirm(*, request_id: int) -> None:
    """Billing offered the outstanding bills of the request's accounts to its coupons."""
    IssuanceRequest.objects.filter(pk=request_id, postings_pending=True).update(
        postings_pending=False,
    )


def _raise_if_submitted(acting_user, submission_key: str | None) -> None:
    earlier = issuance_request_for_submission(user=acting_user, submission_key=submission_key)
    if earlier is not None:
        raise AlreadySubmittedError(earlier)


def issuance_request_submit(
    *, template: CouponTemplate, acting_user, account_ids: list[str],
    submission_key: str | None = None,
) -> IssuanceRequest:
    """Create one pending issuance request for the selection, or refuse it writing nothing.

    `submission_key` (Issue Coupon's one-time token of the selection) makes the submit
    happen once: a second submit with it raises AlreadySubmittedError naming the first's
    request, also when the two race (the unique constraint on (submitted_by,
    submission_key) refuses the loser's row)."""
    _require_writer(partner=template.partner, acting_user=acting_user)
    if submission_key:
        _raise_if_submitted(acting_user, submission_key)
    try:
        return _submit(template=template, acting_user=acting_user, account_ids=account_ids,
                       submission_key=submission_key or None)
    except (ApplicationError, IntegrityError):
        # A twin submit that committed meanwhile is why this one failed: its budget or its
        # "Limited to 1" accounts were taken, or this request's row was refused. Every such
        # failure waited for the twin's commit (a row lock or a unique index), so its
        # request is there to be found now.
        if submission_key:
            _raise_if_submitted(acting_user, submission_key)
        raise


def _submit(
    *, template: CouponTemplate, acting_user, account_ids: list[str], submission_key: str | None,
) -> IssuanceRequest:
    with transaction.atomic():
        # A release cap is a sum over requests, so submits of a capped template queue on its
        # row. "Limited to 1" needs no lock: the partial unique index refuses the loser.
        qs = CouponTemplate.objects.select_related("partner")
        if template.release_cap_count is not None or template.release_cap_amount is not None:
            qs = qs.select_for_update(of=("self",))
        template = qs.get(pk=template.pk)
        check = issuance_selection_check(template=template, account_ids=account_ids)
        if not check.ok:
            raise ApplicationError(" ".join(check.problems), extra={"check": check})
        if template.is_platform_borne:
            budget = (
                PlatformBudget.objects.select_for_update()
                .filter(partner=template.partner, currency=template.currency)
                .first()
            )
            # Re-checked inside the lock: another request may have reserved it meanwhile.
            if budget is None or budget.remaining < check.total:
                raise ApplicationError(
                    _budget_message(
                        check.total, budget.remaining if budget else None, template.currency,
                    ),
                )
            budget.reserved = budget.reserved + check.total
            budget.save(update_fields=["reserved"])
        route = (
            IssuanceRequest.Route.BD if needs_bd_approval(template) else IssuanceRequest.Route.AUTO
        )
        request = IssuanceRequest(
            partner=template.partner, template=template, route=route,
            cost_bearer=template.cost_bearer, currency=template.currency,
            unit_value=template.unit_value, recipient_count=check.count,
            total_amount=check.total, submitted_by=acting_user, submission_key=submission_key,
        )
        request.save()
        try:
            with transaction.atomic():
                bulk_insert(
                    IssuanceRecipient,
                    ["request", "template", "sub_account", "limited", "holds"],
                    [
                        (request.pk, template.pk, account.pk, template.is_limited, True)
                        for account in check.accounts
                    ],
                )
        except IntegrityError as exc:
            # Another request took a "Limited to 1" account between our check and insert.
            raise ApplicationError(
                "Another request for this template was confirmed at the same time and holds "
                "some of these accounts now; reload the page and select again.",
            ) from exc
        audit_record(
            actor=acting_user, partner=template.partner, action="request.submit", obj=request,
            after={
                "status": request.status, "route": route, "template": template.pk,
                "recipients": check.count, "total": request.total_amount,
                "currency": request.currency, "cost_bearer": request.cost_bearer,
            },
        )
        issuance_request_submitted.send(
            sender=IssuanceRequest, request=request, acting_user=acting_user,
        )
    return request
