"""The release of an approved request's coupons: every coupon or none, written by COPY;
the sweeper of lost releases; coupon codes; and the progress a running release reports."""
import logging
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.locks import platform_budgets_for_update
from accounts.models import PlatformBudget
from approvals import notifications
from approvals.transitions import Status, issuance_request_lock, issuance_request_move
from couponplatform import dispatch
from couponplatform.db import bulk_insert
from couponplatform.money import fmt
from coupons.locks import coupon_templates_for_update
from coupons.models import (
    CostBearer,
    Coupon,
    CouponKind,
    CouponTemplate,
    IssuanceRecipient,
    IssuanceRequest,
)
from coupons.rules import template_issuable_problem
from coupons.services import coupons_released

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud


def release_schedule(*, request: IssuanceRequest) -> None:
    """After commit: small requests are released right away, large ones by a task.

    Robust callbacks: if the release or the broker fails, the approval still stands and
    the sweeper (release_sweep) releases the request later.
    """
    request_id = request.pk
    if request.recipient_count <= settings.RELEASE_INLINE_MAX:
        transaction.on_commit(
            lambda: issuance_request_release(request_id=request_id), robust=True,
        )
    else:
        dispatch.enqueue_on_commit(dispatch.REQUEST_RELEASE, request_id)


# Byte → code character: 32 characters divide 256 byte values evenly, so each character is
# equally likely, as with secrets.choice, for one os.urandom call per code instead of 14.
_CODE_TABLE = bytes(CODE_ALPHABET.encode()[b % len(CODE_ALPHABET)] for b in range(256))


def new_coupon_code() -> str:
    """"CP" and 14 characters of CODE_ALPHABET from the OS's CSPRNG (70 bits)."""
    return "CP" + secrets.token_bytes(14).translate(_CODE_TABLE).decode()


def release_progress(request_id: int) -> int | None:
    """Coupons written so far by a running release; None when unknown. The cache is the
    broker's Redis: while it is down the request page shows no progress rather than fail."""
    try:
        return cache.get(f"release-progress:{request_id}")
    except Exception:  # noqa: BLE001 — any cache backend's error
        log.warning("release progress unavailable: the cache is down", exc_info=True)
        return None


def _release_problem(request: IssuanceRequest, template: CouponTemplate) -> str | None:
    """Rules that held at submit and may not hold now: the template (coupons/rules.py),
    and its release caps counted by what was released."""
    if problem := template_issuable_problem(template):
        return problem
    if template.release_cap_count is not None and (
        template.released_count + request.recipient_count > template.release_cap_count
    ):
        left = max(template.release_cap_count - template.released_count, 0)
        return ngettext(
            "The template's release cap of %(cap)s coupon is reached: %(left)s left, "
            "%(needed)s needed.",
            "The template's release cap of %(cap)s coupons is reached: %(left)s left, "
            "%(needed)s needed.", template.release_cap_count,
        ) % {"cap": f"{template.release_cap_count:,}", "left": f"{left:,}",
             "needed": f"{request.recipient_count:,}"}
    if template.release_cap_amount is not None and (
        template.released_amount + request.total_amount > template.release_cap_amount
    ):
        left = max(template.release_cap_amount - template.released_amount, Decimal("0"))
        return _("The template's release cap of %(cap)s is reached: %(left)s left, %(needed)s "
                 "needed.") % {"cap": fmt(template.release_cap_amount, template.currency),
                               "left": fmt(left, template.currency),
                               "needed": fmt(request.total_amount, template.currency)}
    return None


def _fault(point: str) -> None:
    """Crash-point hook of the release: the tests replace it to fail at a named point; does
    nothing here.

    Points, in order: "locked" (request, template and budget rows held), "coupons_copied",
    "counters_updated" (the template's released counters and the budget), "before_commit".
    """


COUPON_FIELDS = [
    "code", "template", "request", "recipient", "partner", "sub_account", "kind",
    "cost_bearer", "currency", "amount", "balance", "voided_amount", "discount_rate",
    "uses_total", "uses_left", "min_bill_amount", "all_products", "product_codes",
    "valid_from", "valid_until", "status", "released_at", "void_reason",
]


def issuance_request_release(*, request_id: int) -> IssuanceRequest:
    """Release an approved request: every coupon or none. Safe to run twice or at once:
    the request row lock serialises runs and a released request is left as it is."""
    with transaction.atomic():
        request = issuance_request_lock(request_id)
        if request.status != Status.APPROVED:
            return request
        # The template row only, not its partner's (the lock is `of` the template).
        template = (
            coupon_templates_for_update().select_related("partner").get(pk=request.template_id)
        )
        problem = _release_problem(request, template)
        budget = None
        if problem is None and request.cost_bearer == CostBearer.PLATFORM:
            budget = platform_budgets_for_update().filter(
                partner_id=request.partner_id, currency=request.currency,
            ).first()
            problem = (budget or PlatformBudget.none_granted(
                partner=request.partner, currency=request.currency,
            )).consume_refusal(request.total_amount)
        _fault("locked")
        if problem:
            request.reason = problem
            issuance_request_move(request=request, to=Status.FAILED, actor=None, reason=problem,
                                  fields=("reason",))
            transaction.on_commit(lambda: notifications.notify_partner(request_id), robust=True)
            return request

        now = timezone.now()
        valid_from, valid_until = template.validity_if_released(timezone.localdate())
        codes = (
            sorted(template.products.values_list("code", flat=True))
            if not template.all_products else []
        )
        amount = template.unit_value
        is_discount = template.kind == CouponKind.DISCOUNT
        uses = template.discount_uses if is_discount else None
        recipients = IssuanceRecipient.objects.filter(request=request).values_list(
            "pk", "sub_account_id",
        ).order_by("pk")
        rows = []
        progress_key = f"release-progress:{request_id}"
        # One fetch: the rows below hold every recipient anyway, so a server-side cursor
        # would only add round trips.
        for i, (recipient_id, sub_account_id) in enumerate(list(recipients), start=1):
            rows.append((
                new_coupon_code(), template.pk, request.pk, recipient_id, request.partner_id,
                sub_account_id, template.kind, template.cost_bearer, template.currency,
                amount, amount, Decimal("0"), template.discount_rate if is_discount else None,
                uses, uses, template.min_bill_amount, template.all_products, codes,
                valid_from, valid_until, Coupon.Status.AVAILABLE, now, "",
            ))
            if i % 2000 == 0:
                cache.set(progress_key, i, 3600)
        bulk_insert(Coupon, COUPON_FIELDS, rows)
        _fault("coupons_copied")
        count = len(rows)
        CouponTemplate.objects.filter(pk=template.pk).update(
            released_count=F("released_count") + count,
            released_amount=F("released_amount") + amount * count,
        )
        if budget is not None:
            PlatformBudget.objects.filter(pk=budget.pk).update(
                reserved=F("reserved") - request.total_amount,
                consumed=F("consumed") + request.total_amount,
            )
        _fault("counters_updated")
        request.issued_at = now
        request.released_so_far = count
        request.reason = ""
        request.postings_pending = True
        issuance_request_move(
            request=request, to=Status.ISSUED, actor=None,
            fields=("issued_at", "released_so_far", "reason", "postings_pending"),
        )
        sub_account_ids = [row[5] for row in rows]
        if len(rows) >= 2000:  # progress was written: the finished release clears it
            transaction.on_commit(lambda: cache.delete(progress_key), robust=True)
        transaction.on_commit(
            lambda: coupons_released.send(
                sender=IssuanceRequest, request_id=request_id, sub_account_ids=sub_account_ids,
            ),
            robust=True,
        )
        transaction.on_commit(lambda: notifications.notify_partner(request_id), robust=True)
        _fault("before_commit")
    return request


def release_sweep(*, older_than_seconds: int = 120) -> list[int]:
    """Release approved requests whose release was lost (broker down, worker killed)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        IssuanceRequest.objects.filter(status=Status.APPROVED, decided_at__lt=cutoff)
        .order_by("pk").values_list("pk", flat=True)
    )
    for request_id in ids:
        issuance_request_release(request_id=request_id)
    return ids
