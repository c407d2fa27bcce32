"""Coupon templates, issuance requests with their recipients, and coupons."""
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Partner, Product, SubAccount
from couponplatform.money import CURRENCIES, money_field, quantize


class CouponKind(models.TextChoices):
    CASH = "cash", pgettext_lazy("coupon kind", "Cash")
    THRESHOLD = "threshold", pgettext_lazy("coupon kind", "Threshold cash")
    DISCOUNT = "discount", pgettext_lazy("coupon kind", "Discount")


class CostBearer(models.TextChoices):
    PLATFORM = "platform", _("Platform-borne")
    PARTNER = "partner", _("Partner-borne")


class CouponTemplate(models.Model):
    class ValidityType(models.TextChoices):
        FIXED = "fixed", _("Fixed window")
        RELATIVE = "relative", _("Days from release")

    class IssueLimit(models.TextChoices):
        ONE = "one", _("Limited to 1")
        UNLIMITED = "unlimited", _("Unlimited")

    class Status(models.TextChoices):
        ACTIVE = "active", pgettext_lazy("template status", "Active")
        DISABLED = "disabled", pgettext_lazy("template status", "Disabled")

    # Fields that carry money or its terms; frozen once a coupon has been issued.
    MONEY_FIELDS = (
        "kind", "currency", "face_value", "discount_rate", "discount_uses", "min_bill_amount",
        "validity_type", "valid_from", "valid_until", "valid_days", "all_products",
        "cost_bearer", "issue_limit", "release_cap_count", "release_cap_amount",
    )

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="templates",
                                verbose_name=_("partner"))
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True, max_length=2000)
    kind = models.CharField(_("kind"), max_length=20, choices=CouponKind.choices)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES)
    face_value = money_field(
        verbose_name=_("face value"),
        help_text=_("Cash and threshold cash: the coupon's value. Discount: the cap per use."),
    )
    discount_rate = models.DecimalField(
        _("discount rate"), max_digits=5, decimal_places=2, null=True, blank=True,
        help_text=_("Percent off, 1–99."),
    )
    discount_uses = models.PositiveIntegerField(_("discount uses"), null=True, blank=True)
    min_bill_amount = money_field(verbose_name=_("minimum bill amount"), null=True, blank=True)
    validity_type = models.CharField(_("validity type"), max_length=10,
                                     choices=ValidityType.choices)
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    valid_days = models.PositiveSmallIntegerField(_("valid days"), null=True, blank=True)
    all_products = models.BooleanField(_("all products"), default=True)
    products = models.ManyToManyField(Product, blank=True, related_name="+",
                                      verbose_name=_("products"))
    cost_bearer = models.CharField(_("cost bearer"), max_length=10, choices=CostBearer.choices)
    issue_limit = models.CharField(_("issue limit"), max_length=10, choices=IssueLimit.choices)
    release_cap_count = models.PositiveIntegerField(_("release cap count"), null=True,
                                                    blank=True)
    release_cap_amount = money_field(verbose_name=_("release cap amount"), null=True,
                                     blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices,
                              default=Status.ACTIVE)
    # Counters moved with F() under the template's row lock at release.
    released_count = models.PositiveIntegerField(_("released count"), default=0)
    released_amount = money_field(verbose_name=_("released amount"), default=Decimal("0"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["partner", "-created_at", "-id"], name="template_partner")]
        constraints = [
            models.CheckConstraint(
                name="template_face_value_range",
                condition=Q(face_value__gt=0, face_value__lte=Decimal("1000000.00")),
            ),
            models.CheckConstraint(
                name="template_discount_terms",
                condition=~Q(kind="discount")
                | Q(discount_rate__gte=1, discount_rate__lte=99, discount_uses__gte=1),
            ),
            models.CheckConstraint(
                name="template_threshold_minimum",
                condition=~Q(kind="threshold") | Q(min_bill_amount__gt=0),
            ),
            models.CheckConstraint(
                name="template_validity",
                condition=Q(
                    validity_type="fixed", valid_from__isnull=False, valid_until__isnull=False,
                    valid_until__gte=F("valid_from"),
                )
                | Q(validity_type="relative", valid_days__gte=1, valid_days__lte=1095),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("coupons:template_detail", args=[self.pk])

    @property
    def unit_value(self) -> Decimal:
        """The most one coupon of this template can ever deduct."""
        if self.kind == CouponKind.DISCOUNT:
            return self.face_value * (self.discount_uses or 0)
        return self.face_value

    @property
    def is_platform_borne(self) -> bool:
        return self.cost_bearer == CostBearer.PLATFORM

    def validity_if_released(self, day: date) -> tuple[date, date]:
        """(valid from, valid until) of a coupon of this template released on `day`:
        the fixed window, or N days counting the release day as day 1."""
        if self.validity_type == self.ValidityType.FIXED:
            return self.valid_from, self.valid_until
        return day, day + timedelta(days=self.valid_days - 1)

    @property
    def is_limited(self) -> bool:
        return self.issue_limit == self.IssueLimit.ONE


class IssuanceRequest(models.Model):
    """One Issue Coupon confirmation: a template, a list of recipients, and its approval path.

    The status moves only through the transition services (`approvals`), following
    TRANSITIONS below.
    """

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("request status", "Pending approval")
        APPROVED = "approved", pgettext_lazy("request status", "Approved")
        ISSUED = "issued", pgettext_lazy("request status", "Issued")
        FAILED = "failed", pgettext_lazy("request status", "Approved but failed to issue")
        REJECTED = "rejected", pgettext_lazy("request status", "Rejected")
        CANCELLED = "cancelled", pgettext_lazy("request status", "Cancelled")
        WITHDRAWN = "withdrawn", pgettext_lazy("request status", "Withdrawn")

    class Route(models.TextChoices):
        BD = "bd", _("BD approval")
        AUTO = "auto", _("Auto-approved")

    TRANSITIONS: dict[str, set[str]] = {
        Status.PENDING: {Status.APPROVED, Status.REJECTED, Status.CANCELLED},
        Status.APPROVED: {Status.ISSUED, Status.FAILED},
        Status.FAILED: {Status.APPROVED, Status.WITHDRAWN},
        Status.ISSUED: set(),
        Status.REJECTED: set(),
        Status.CANCELLED: set(),
        Status.WITHDRAWN: set(),
    }
    OPEN_STATUSES = (Status.PENDING, Status.APPROVED, Status.FAILED)

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="requests",
                                verbose_name=_("partner"))
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="requests",
                                 verbose_name=_("template"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices,
                              default=Status.PENDING)
    route = models.CharField(_("route"), max_length=10, choices=Route.choices)
    cost_bearer = models.CharField(_("cost bearer"), max_length=10, choices=CostBearer.choices)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES)
    unit_value = money_field(verbose_name=_("unit value"))
    recipient_count = models.PositiveIntegerField(_("recipient count"))
    total_amount = money_field(verbose_name=_("total amount"))
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("submitted by"),
    )
    submitted_at = models.DateTimeField(_("submitted at"), auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("decided by"),
        help_text=_("Empty for an auto-approved request."),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True,
                              help_text=_("Reject reason, or why issuing failed."))
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    # Progress of a release done by a task, for the page to show.
    released_so_far = models.PositiveIntegerField(_("released so far"), default=0)
    # Set in the release's transaction, cleared once the accounts' outstanding bills were
    # offered to the new coupons: the durable record that a sweeper finds when the task
    # that should post them was never published (broker down) or lost.
    postings_pending = models.BooleanField(default=False)
    # Issue Coupon's one-time token of the selection it was confirmed from: a Confirm sent
    # twice (a double click, two tabs, a replay) finds the request made by the first.
    submission_key = models.CharField(max_length=64, null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("issuance request")
        verbose_name_plural = _("issuance requests")
        ordering = ["-submitted_at", "-pk"]
        indexes = [
            models.Index(fields=["partner", "-submitted_at", "-id"], name="request_partner"),
            models.Index(fields=["status", "-submitted_at"], name="request_status"),
            models.Index(fields=["issued_at"], name="request_postings_pending",
                         condition=Q(postings_pending=True)),
        ]
        constraints = [
            models.CheckConstraint(name="request_total_gt_0", condition=Q(total_amount__gt=0)),
            models.CheckConstraint(name="request_count_gt_0", condition=Q(recipient_count__gt=0)),
            # One selection makes at most one request, however many Confirms race.
            models.UniqueConstraint(
                fields=["submitted_by", "submission_key"], name="request_once_per_submission",
                condition=Q(submission_key__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return _("Request %(number)s — %(template)s × %(count)s") % {
            "number": self.number, "template": self.template, "count": self.recipient_count}

    def get_absolute_url(self) -> str:
        return reverse("approvals:detail", args=[self.pk])

    @property
    def number(self) -> str:
        """The partner's own number of the request ("ND-000123"), given at submit by
        approvals (`partner_number`, approvals/numbers.py); "#<id>" for one without."""
        own = getattr(self, "partner_number", None)
        return own.label if own is not None else f"#{self.pk}"

    def can_move_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.status, set())


class IssuanceRecipient(models.Model):
    """One selected account of a request.

    `holds` is true while the account is in a pending request or holds the coupon. For a
    "Limited to 1" template a partial unique index over (template, sub_account) where holds
    makes the rule race-proof: the second insert fails in the database.
    """

    request = models.ForeignKey(
        IssuanceRequest, on_delete=models.CASCADE, related_name="recipients",
        verbose_name=_("issuance request"),
    )
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("template"))
    sub_account = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("sub-account"))
    limited = models.BooleanField(_("limited"))
    holds = models.BooleanField(_("holds"), default=True)

    class Meta:
        verbose_name = _("issuance recipient")
        verbose_name_plural = _("issuance recipients")
        constraints = [
            models.UniqueConstraint(
                fields=["request", "sub_account"], name="recipient_once_per_request",
            ),
            models.UniqueConstraint(
                fields=["template", "sub_account"],
                condition=Q(limited=True, holds=True),
                name="recipient_limit_one_per_template",
            ),
        ]

    def __str__(self) -> str:
        return _("%(account)s in request #%(id)s") % {"account": self.sub_account,
                                                      "id": self.request_id}


class Coupon(models.Model):
    """One released coupon of one sub-account. Its status moves only through
    coupons/transitions.coupons_move, following TRANSITIONS below."""

    class Status(models.TextChoices):
        AVAILABLE = "available", pgettext_lazy("coupon status", "Available")
        USED_UP = "used_up", pgettext_lazy("coupon status", "Used up")
        EXPIRED = "expired", pgettext_lazy("coupon status", "Expired")
        VOIDED = "voided", pgettext_lazy("coupon status", "Voided")

    # The posting marks a coupon used up, expiry expires it, a partner admin voids it.
    # Nothing reopens: a used-up coupon has nothing left to pay with, an expired one's
    # balance is breakage and a voided one's was withdrawn; each of them is final.
    TRANSITIONS: dict[str, set[str]] = {
        Status.AVAILABLE: {Status.USED_UP, Status.EXPIRED, Status.VOIDED},
        Status.USED_UP: set(),
        Status.EXPIRED: set(),
        Status.VOIDED: set(),
    }

    # Unique by the constraint below, which needs no second (pattern) index.
    code = models.CharField(_("code"), max_length=24)
    # The foreign keys' own indexes are left out (db_index=False): the indexes below start
    # with the same column, and a request's coupons are never looked up.
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons",
                                 db_index=False, verbose_name=_("template"))
    request = models.ForeignKey(IssuanceRequest, on_delete=models.PROTECT, related_name="coupons",
                                db_index=False, verbose_name=_("issuance request"))
    # One coupon per recipient: releasing twice can not make a second one.
    recipient = models.OneToOneField(
        IssuanceRecipient, on_delete=models.PROTECT, related_name="coupon",
        verbose_name=_("recipient"),
    )
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+",
                                db_index=False, verbose_name=_("partner"))
    sub_account = models.ForeignKey(SubAccount, on_delete=models.PROTECT, related_name="coupons",
                                    db_index=False, verbose_name=_("sub-account"))
    kind = models.CharField(_("kind"), max_length=20, choices=CouponKind.choices)
    cost_bearer = models.CharField(_("cost bearer"), max_length=10, choices=CostBearer.choices)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES)
    amount = money_field(verbose_name=_("amount"))
    balance = money_field(verbose_name=_("balance"))
    voided_amount = money_field(verbose_name=_("voided amount"), default=Decimal("0"))
    discount_rate = models.DecimalField(_("discount rate"), max_digits=5, decimal_places=2,
                                        null=True, blank=True)
    uses_total = models.PositiveIntegerField(_("uses total"), null=True, blank=True)
    uses_left = models.PositiveIntegerField(_("uses left"), null=True, blank=True)
    min_bill_amount = money_field(verbose_name=_("minimum bill amount"), null=True, blank=True)
    all_products = models.BooleanField(_("all products"), default=True)
    product_codes = models.JSONField(_("product codes"), default=list, blank=True)
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices,
                              default=Status.AVAILABLE)
    released_at = models.DateTimeField(_("released at"))
    # Who voided it, when and why: written by the void service only
    # (billing/coupon_status.coupon_void), shown on the pages, the exports and the admin.
    void_reason = models.TextField(_("void reason"), blank=True)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("voided by"),
    )

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["-released_at", "-pk"]
        # Every index is written by every release (one entry per coupon) and, unless the
        # update is HOT, by every change of a coupon; none holds balance, uses_left or status,
        # the columns posting, expiry and voiding change, so those updates can be HOT
        # (heap-only: no index entry) when the page has room (the table's fillfactor,
        # migration 0006). Each index's query and its measured benefit: docs/BENCHMARKS.md,
        # "The write path" and the indexes benchmark.
        indexes = [
            # Coupon Usage newest first (the default), by release days and by status (read in
            # this order, the status checked per row); every other read by partner (the
            # admin's, the exports). At 1M coupons: 4 ms against 2.8 s without it.
            models.Index(fields=["partner", "-released_at", "-id"], name="coupon_partner"),
            # The sub-account's coupons: posting's lock of an account's available coupons,
            # the Coupons page (by valid until; 2 ms against 433 ms), Coupon Usage's
            # sub-account search.
            models.Index(fields=["sub_account", "valid_until", "id"], name="coupon_account_until"),
            # Coupon Usage filtered by template, newest first (1.5 ms against 30 ms).
            models.Index(fields=["template", "-released_at", "-id"], name="coupon_template"),
            # Coupon Usage filtered by cost bearer (alone or with a status, bounded by the
            # statistics: billing/selectors.coupon_usage_narrowed), newest first (146 ms
            # against 697 ms unbounded; 0.2 ms bounded).
            models.Index(fields=["partner", "cost_bearer", "-released_at", "-id"],
                         name="coupon_bearer"),
            # Coupon Usage sorted by amount and by valid until: a page read in index order
            # instead of sorting the partner's coupons (2.6 and 6 ms against 3 s each;
            # neither column ever changes).
            models.Index(fields=["partner", "amount", "id"], name="coupon_partner_amount"),
            models.Index(fields=["partner", "valid_until", "id"], name="coupon_partner_until"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="coupon_code_unique"),
            models.CheckConstraint(name="coupon_amount_gt_0", condition=Q(amount__gt=0)),
            models.CheckConstraint(
                name="coupon_balance_in_range",
                condition=Q(balance__gte=0, balance__lte=F("amount")),
            ),
            models.CheckConstraint(
                name="coupon_voided_in_range",
                condition=Q(voided_amount__gte=0, voided_amount__lte=F("amount")),
            ),
            models.CheckConstraint(
                name="coupon_uses_in_range",
                condition=Q(uses_left__isnull=True) | Q(uses_left__lte=F("uses_total")),
            ),
            models.CheckConstraint(
                name="coupon_validity", condition=Q(valid_until__gte=F("valid_from")),
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def used_amount(self) -> Decimal:
        return self.amount - self.balance - self.voided_amount

    @property
    def cap_per_use(self) -> Decimal | None:
        """A discount's most per use (its template's upper limit): a discount coupon's
        amount is cap per use × uses (docs/ARCHITECTURE.md, Decisions). None otherwise."""
        if self.kind != CouponKind.DISCOUNT or not self.uses_total:
            return None
        return quantize(self.amount / self.uses_total)

    @property
    def uses_available(self) -> int | None:
        """A discount's uses it can still make: none once voided (the void withdraws them,
        while `uses_left` keeps counting the uses not made, as the ledger's rule of uses =
        deductions needs). None for cash."""
        if self.kind != CouponKind.DISCOUNT:
            return None
        return 0 if self.status == self.Status.VOIDED else self.uses_left or 0

    def can_move_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.status, set())
