"""Tenancy: users, partners (tiers, BD, coupon function), sub-accounts, roles, products."""
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import ExpressionWrapper, F, Q
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from couponplatform.money import CURRENCIES, fmt, money_field

BD_GROUP = "BD"


class User(AbstractUser):
    """A person who signs in: partner user, sub-account user, BD or platform operator."""

    # The language they chose with the header's switch (accounts/middleware.py applies it
    # on every page once they are signed in); blank: their browser's, or the cookie's.
    language = models.CharField(gettext_lazy("language"), max_length=10, blank=True,
                                default="", choices=settings.LANGUAGES)

    def __str__(self) -> str:
        # How the admin and the pages name a person (a BD, an approver, a submitter): by
        # their full name when they have one, else by their username.
        return self.get_full_name() or self.username

    @property
    def is_bd(self) -> bool:
        return self.is_staff and self.groups.filter(name=BD_GROUP).exists()


class Partner(models.Model):
    class Kind(models.TextChoices):
        DISTRIBUTOR = "distributor", _("Distributor")
        RESELLER = "reseller", _("Reseller")

    class Tier(models.IntegerChoices):
        TIER1 = 1, _("Tier 1")
        TIER2 = 2, _("Tier 2")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    tier = models.PositiveSmallIntegerField(_("tier"), choices=Tier.choices, default=Tier.TIER1)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="tier2_resellers",
        verbose_name=_("parent"), help_text=_("The distributor a tier-2 reseller sits under."),
    )
    bd = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="bd_partners", verbose_name=_("assigned BD"),
    )
    coupon_enabled = models.BooleanField(_("coupon function"), default=False)
    requires_bd_approval = models.BooleanField(
        _("requires BD approval"), default=True,
        help_text=_("Partner-borne issuance requests wait for the BD's approval."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("partner")
        verbose_name_plural = _("partners")
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                name="partner_tier2_is_reseller_under_distributor",
                condition=(Q(tier=1, parent__isnull=True))
                | Q(tier=2, kind="reseller", parent__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_tier2(self) -> bool:
        return self.tier == self.Tier.TIER2


class PlatformBudget(models.Model):
    """What platform-borne coupons released to a partner's sub-accounts may total, per currency.

    `reserved` holds pending, approved and failed requests; `consumed` released coupons.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="budgets",
                                verbose_name=_("partner"))
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES)
    amount = money_field(verbose_name=_("amount"))
    reserved = money_field(verbose_name=_("reserved"), default=Decimal("0"))
    consumed = money_field(verbose_name=_("consumed"), default=Decimal("0"))

    class Meta:
        verbose_name = _("platform budget")
        verbose_name_plural = _("platform budgets")
        constraints = [
            models.UniqueConstraint(fields=["partner", "currency"], name="budget_one_per_currency"),
            models.CheckConstraint(name="budget_amount_gte_0", condition=Q(amount__gte=0)),
            models.CheckConstraint(name="budget_reserved_gte_0", condition=Q(reserved__gte=0)),
            models.CheckConstraint(name="budget_consumed_gte_0", condition=Q(consumed__gte=0)),
            # Released coupons can never exceed the budget. Reservations may, for a while:
            # a BD can lower a budget below what pending requests reserved, and the release
            # of those requests then fails to issue instead of overspending.
            models.CheckConstraint(
                name="budget_consumed_within_amount", condition=Q(amount__gte=F("consumed")),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partner} {fmt(self.amount, self.currency)}"

    @classmethod
    def none_granted(cls, *, partner, currency: str) -> "PlatformBudget":
        """What a partner without a budget in `currency` has: an (unsaved) budget of 0."""
        return cls(partner=partner, currency=currency, amount=Decimal("0"))

    @staticmethod
    def remaining_expression() -> ExpressionWrapper:
        """`remaining` in SQL, before it is clamped at zero: for lists that show it."""
        return ExpressionWrapper(
            F("amount") - F("reserved") - F("consumed"), output_field=money_field(),
        )

    @property
    def remaining(self) -> Decimal:
        """What a new request may still reserve (never shown below zero)."""
        return max(self.amount - self.reserved - self.consumed, Decimal("0"))

    def reserve_refusal(self, total: Decimal) -> str | None:
        """Why a request of `total` can not reserve this budget (at submit), or None."""
        if total <= self.remaining:
            return None
        return gettext(
            "This request totals %(total)s, more than the remaining platform-borne budget of "
            "%(remaining)s.") % {"total": fmt(total, self.currency),
                                 "remaining": fmt(self.remaining, self.currency)}

    def consume_refusal(self, total: Decimal) -> str | None:
        """Why the release of a request of `total` (which reserved it) can not consume
        this budget, or None: the BD may have lowered the budget since the submit."""
        if self.consumed + total <= self.amount:
            return None
        left = max(self.amount - self.consumed, Decimal("0"))
        return gettext(
            "The platform-borne budget is used up: %(left)s left, %(needed)s needed.",
        ) % {"left": fmt(left, self.currency), "needed": fmt(total, self.currency)}


class SubAccount(models.Model):
    """An account under a partner that receives coupons and bills."""

    class Type(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        TIER2_RESELLER = "tier2_reseller", _("Tier-2 reseller")

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="sub_accounts",
                                verbose_name=_("partner"))
    account_id = models.CharField(_("account ID"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200)
    type = models.CharField(_("type"), max_length=20, choices=Type.choices,
                            default=Type.CUSTOMER)
    reseller = models.OneToOneField(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="account",
        verbose_name=_("reseller"),
        help_text=_("For a tier-2 reseller's account: the reseller it is."),
    )
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES, default="USD")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("sub-account")
        verbose_name_plural = _("sub-accounts")
        ordering = ["name", "pk"]
        indexes = [
            models.Index(fields=["partner", "name", "id"], name="subaccount_partner_name"),
            models.Index(fields=["partner", "type", "name", "id"], name="subaccount_partner_type"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.account_id})"


class PartnerMembership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", pgettext_lazy("partner role", "Admin")
        OPERATOR = "operator", pgettext_lazy("partner role", "Operator")
        VIEWER = "viewer", pgettext_lazy("partner role", "Viewer")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="partner_membership",
        verbose_name=_("user"),
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="memberships",
                                verbose_name=_("partner"))
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)

    class Meta:
        verbose_name = _("partner membership")
        verbose_name_plural = _("partner memberships")

    def __str__(self) -> str:
        return f"{self.user} — {self.partner} ({self.role})"

    @property
    def can_write(self) -> bool:
        """Whether the role changes anything in the partner console; what it may change
        is the table's (accounts/permissions.ACTIONS)."""
        from accounts.permissions import role_writes

        return role_writes(self.role)


class SubAccountMembership(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subaccount_membership",
        verbose_name=_("user"),
    )
    sub_account = models.ForeignKey(SubAccount, on_delete=models.CASCADE, related_name="users",
                                    verbose_name=_("sub-account"))

    class Meta:
        verbose_name = _("sub-account membership")
        verbose_name_plural = _("sub-account memberships")

    def __str__(self) -> str:
        return f"{self.user} — {self.sub_account}"


class Product(models.Model):
    """An entry of the product catalogue; coupons apply to all or a chosen set."""

    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"
