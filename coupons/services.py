"""Writes of the coupons app: templates and issuance requests. The rules they check are
coupons/rules.py and coupons/validators.py; their reads, coupons/selectors.py."""
from datetime import date
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.locks import platform_budgets_for_update
from accounts.models import (
    Partner,
    PlatformBudget,
    Product,
)
from accounts.permissions import partner_writer_require
from audit.services import audit_record
from couponplatform.db import bulk_insert
from couponplatform.exceptions import ApplicationError
from coupons.locks import coupon_templates_for_update
from coupons.models import (
    CouponKind,
    CouponTemplate,
    IssuanceRecipient,
    IssuanceRequest,
)
from coupons.rules import (
    issuance_selection_check,
    needs_bd_approval,
    platform_borne_problem,
    template_window_refusal,
)
from coupons.selectors import issuance_request_for_submission, template_is_frozen
from coupons.validators import template_terms_errors

# Sent inside the submit transaction with the new request; approvals opens its approval
# or approves it at once (coupons does not import approvals). A receiver that raises
# rolls the submit back.
issuance_request_submitted = Signal()
# Sent after coupons of a request are released and committed, with request_id and
# sub_account_ids; billing posts the accounts' outstanding bills (coupons does not import
# billing).
coupons_released = Signal()

class TemplateTermsError(ApplicationError):
    """The template's terms break a rule; `errors` maps each field to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(_("Please correct the errors below."), extra={"errors": errors})
        self.errors = errors


class AlreadySubmittedError(ApplicationError):
    """This selection's token was confirmed before; `request` is what it made."""

    def __init__(self, request: IssuanceRequest):
        super().__init__(_("This selection was already submitted as request %(number)s.")
                         % {"number": request.number}, extra={"request": request})
        self.request = request


def _require_writer(*, partner: Partner, acting_user, action: str) -> None:
    partner_writer_require(
        acting_user, partner, action=action,
        wrong_role=(_("Only a partner admin can disable a template.")
                    if action == "template_disable"
                    else _("Your role can view coupons but not change them.")),
    )


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
    _require_writer(partner=partner, acting_user=acting_user, action="template_create")
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
        errors["name"] = _("Enter a name.")
    if "valid_until" not in errors and (msg := template_window_refusal(
        validity_type=validity_type, valid_until=valid_until,
    )):
        errors["valid_until"] = msg
    if "cost_bearer" not in errors and (
        msg := platform_borne_problem(partner=partner, cost_bearer=cost_bearer, currency=currency)
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


def coupon_template_update(
    *, template: CouponTemplate, acting_user, **changes,
) -> CouponTemplate:
    """Change name and description always; money terms only while nothing was issued."""
    _require_writer(partner=template.partner, acting_user=acting_user, action="template_edit")
    allowed = {"name", "description", *CouponTemplate.MONEY_FIELDS, "products"}
    unknown = set(changes) - allowed
    if unknown:
        raise ApplicationError(_("These fields can not be changed: %(fields)s.")
                               % {"fields": ", ".join(sorted(unknown))})
    with transaction.atomic():
        locked = coupon_templates_for_update().get(pk=template.pk)
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
            raise ApplicationError(_(
                "Coupons were issued from this template, so its amounts, validity, products "
                "and limits can no longer change. Disable it and create a new one.",
            ))
        terms = {k: getattr(locked, k) for k in CouponTemplate.MONEY_FIELDS}
        terms["products"] = list(locked.products.all())
        terms.update({k: v for k, v in changes.items() if k in money_changes})
        errors = template_terms_errors(terms)
        # The same rule as at create: an update must not turn a template platform-borne for
        # a tier-2 reseller or a partner without a budget in the (new) currency.
        if "cost_bearer" not in errors and ({"cost_bearer", "currency"} & money_changes) and (
            msg := platform_borne_problem(
                partner=locked.partner, cost_bearer=terms["cost_bearer"],
                currency=terms["currency"],
            )
        ):
            errors["cost_bearer"] = msg
        if "name" in changes and not (changes["name"] or "").strip():
            errors["name"] = _("Enter a name.")
        # A window may have ended since the template was made; only a change of it is
        # refused for that (a rename of an old template is not).
        if {"validity_type", "valid_until"} & changed_money and "valid_until" not in errors and (
            msg := template_window_refusal(validity_type=terms["validity_type"],
                                           valid_until=terms["valid_until"])
        ):
            errors["valid_until"] = msg
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
    _require_writer(partner=template.partner, acting_user=acting_user, action="template_disable")
    with transaction.atomic():
        locked = coupon_templates_for_update().get(pk=template.pk)
        if locked.status == CouponTemplate.Status.DISABLED:
            raise ApplicationError(_("This template is already disabled."))
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
    _require_writer(partner=template.partner, acting_user=acting_user, action="issue_confirm")
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
        capped = template.release_cap_count is not None or template.release_cap_amount is not None
        qs = coupon_templates_for_update() if capped else CouponTemplate.objects.all()
        template = qs.select_related("partner").get(pk=template.pk)
        check = issuance_selection_check(template=template, account_ids=account_ids)
        if not check.ok:
            raise ApplicationError(" ".join(check.problems), extra={"check": check})
        if template.is_platform_borne:
            budget = platform_budgets_for_update().filter(
                partner=template.partner, currency=template.currency,
            ).first()
            # Re-checked inside the lock: another request may have reserved it meanwhile.
            refusal = (budget or PlatformBudget.none_granted(
                partner=template.partner, currency=template.currency,
            )).reserve_refusal(check.total)
            if refusal:
                raise ApplicationError(refusal)
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
            raise ApplicationError(_(
                "Another request for this template was confirmed at the same time and holds "
                "some of these accounts now; reload the page and select again.",
            )) from exc
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
