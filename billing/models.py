"""Usage, daily and monthly bills, and the deductions coupons make on them.

Amounts are Decimal(18, 2) beside a currency; the database holds the arithmetic of every
line (payable = original − deduction) so a bug elsewhere can not write an impossible row.
"""
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Product, SubAccount
from couponplatform.money import CURRENCIES, money_field
from coupons.models import Coupon

ZERO = Decimal("0")
HALF_CENT = Decimal("0.005")


def _line_checks(prefix: str) -> list[models.CheckConstraint]:
    """0 ≤ deduction ≤ original and payable = original − deduction, for a bill or a line."""
    return [
        models.CheckConstraint(
            name=f"{prefix}_original_gte_0", condition=Q(original_amount__gte=0),
        ),
        models.CheckConstraint(
            name=f"{prefix}_deduction_in_range",
            condition=Q(deduction_amount__gte=0, deduction_amount__lte=F("original_amount")),
        ),
        # SQLite computes with binary floats, where 0.30 − 0.10 ≠ 0.20; within half a cent
        # is the same rule as equality for the exact two-place amounts PostgreSQL stores.
        models.CheckConstraint(
            name=f"{prefix}_payable_is_rest",
            condition=Q(
                payable_amount__gte=F("original_amount") - F("deduction_amount") - HALF_CENT,
                payable_amount__lte=F("original_amount") - F("deduction_amount") + HALF_CENT,
            ),
        ),
    ]


class UsageImport(models.Model):
    """One imported file (or one generator run); its records arrive together or not at all."""

    class Source(models.TextChoices):
        CSV = "csv", _("CSV import")
        UPLOAD = "upload", _("Upload page")
        DEMO = "demo", _("Demo generator")

    source = models.CharField(verbose_name=_("source"), max_length=10, choices=Source.choices,
                              default=Source.CSV)
    file_name = models.CharField(verbose_name=_("file name"), max_length=255, blank=True)
    # SHA-256 of the file: importing the same file twice would bill its usage twice.
    digest = models.CharField(verbose_name=_("digest"), max_length=64, unique=True, null=True,
                              blank=True)
    record_count = models.PositiveIntegerField(verbose_name=_("record count"), default=0)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("imported by"), null=True, blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("usage import")
        verbose_name_plural = _("usage imports")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return _("Usage import #%(id)s (%(name)s)") % {
            "id": self.pk, "name": self.file_name or self.source}


class DailyBill(models.Model):
    """One sub-account's bill for one day in the platform time zone; totals of its lines."""

    # Indexed by dailybill_one_per_day, which starts with it.
    sub_account = models.ForeignKey(
        SubAccount, verbose_name=_("sub-account"), on_delete=models.PROTECT,
        related_name="daily_bills", db_index=False,
    )
    date = models.DateField(verbose_name=_("date"))
    currency = models.CharField(verbose_name=_("currency"), max_length=3, choices=CURRENCIES)
    original_amount = money_field(verbose_name=_("original amount"), default=ZERO)
    deduction_amount = money_field(verbose_name=_("deduction amount"), default=ZERO)
    payable_amount = money_field(verbose_name=_("payable amount"), default=ZERO)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    # Set by the first posting; a bill still null here has not been offered to coupons yet
    # (a lost task), which the sweeper and the month close look for.
    posted_at = models.DateTimeField(verbose_name=_("posted at"), null=True, blank=True)

    class Meta:
        verbose_name = _("daily bill")
        verbose_name_plural = _("daily bills")
        ordering = ["-date", "-pk"]
        # Each index's query and its measured benefit: docs/BENCHMARKS.md ("The write path"
        # and the indexes benchmark). The sub-account's bills newest first are the unique
        # (sub_account, date) index read backwards.
        indexes = [
            # A month's bills: the month close, the ledger's checks. 0.8× of a scan in the
            # benchmark, whose 90 days of bills make a month a third of them; kept for the
            # years of bills a month is a small part of.
            models.Index(fields=["date", "sub_account"], name="dailybill_date"),
            # Bills never posted: posting's and expiry's of an account, the sweeper's (0.3 ms
            # against 148 ms at 270,000 bills). Only those rows, so it stays small; posting
            # sets posted_at once per bill (that update is never HOT), and its other updates
            # of a bill touch no indexed column. Owing bills inside a coupon's validity are
            # dailybill_one_per_day's range of the account's days.
            models.Index(fields=["sub_account", "date"], name="dailybill_unposted",
                         condition=Q(posted_at__isnull=True)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["sub_account", "date"], name="dailybill_one_per_day"),
            *_line_checks("dailybill"),
        ]

    def __str__(self) -> str:
        return f"{self.sub_account.account_id} {self.date:%Y-%m-%d}"


class DailyBillLine(models.Model):
    # No index of their own: dailyline_one_per_product starts with the bill, and lines are
    # never looked up by product (products are never deleted).
    bill = models.ForeignKey(DailyBill, verbose_name=_("bill"), on_delete=models.PROTECT,
                             related_name="lines",
                             db_index=False)
    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.PROTECT,
                                related_name="+",
                                db_index=False)
    original_amount = money_field(verbose_name=_("original amount"))
    deduction_amount = money_field(verbose_name=_("deduction amount"), default=ZERO)
    payable_amount = money_field(verbose_name=_("payable amount"))

    class Meta:
        verbose_name = _("daily bill line")
        verbose_name_plural = _("daily bill lines")
        ordering = ["bill_id", "product__code", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["bill", "product"], name="dailyline_one_per_product"),
            *_line_checks("dailyline"),
        ]

    def __str__(self) -> str:
        return f"{self.bill} {self.product.code}"


class UsageRecord(models.Model):
    """A sub-account's usage of a product on a day; billed into exactly one daily line."""

    batch = models.ForeignKey(
        UsageImport, verbose_name=_("batch"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="records",
    )
    sub_account = models.ForeignKey(
        SubAccount, verbose_name=_("sub-account"), on_delete=models.PROTECT,
        related_name="usage_records",
    )
    usage_date = models.DateField(verbose_name=_("usage date"),
                                  help_text=_("The day in the platform's time zone."))
    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.PROTECT,
                                related_name="+")
    amount = money_field(verbose_name=_("amount"))
    currency = models.CharField(verbose_name=_("currency"), max_length=3, choices=CURRENCIES)
    line = models.ForeignKey(
        DailyBillLine, verbose_name=_("line"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="usage_records", help_text=_("Empty until the day's bill is made."),
    )

    class Meta:
        verbose_name = _("usage record")
        verbose_name_plural = _("usage records")
        ordering = ["usage_date", "pk"]
        indexes = [
            models.Index(fields=["usage_date", "sub_account"], name="usage_date_account"),
            models.Index(fields=["sub_account", "usage_date"], name="usage_account_date"),
            models.Index(
                fields=["usage_date"], name="usage_unbilled", condition=Q(line__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(name="usage_amount_gte_0", condition=Q(amount__gte=0)),
        ]

    def __str__(self) -> str:
        return f"{self.sub_account_id} {self.usage_date} {self.amount}"


class Deduction(models.Model):
    """Money a coupon paid on a bill line. One per (coupon, line): reposting can not add one."""

    # The foreign keys' own indexes are left out (db_index=False): the indexes below start
    # with coupon, line and sub_account, and no query looks deductions up by partner.
    coupon = models.ForeignKey(Coupon, verbose_name=_("coupon"), on_delete=models.PROTECT,
                               related_name="deductions",
                               db_index=False)
    line = models.ForeignKey(DailyBillLine, verbose_name=_("line"), on_delete=models.PROTECT,
                             related_name="deductions",
                             db_index=False)
    # Copied from the coupon and the bill so the month close and the chart read one table
    # instead of joining bills and coupons per row.
    sub_account = models.ForeignKey(SubAccount, verbose_name=_("sub-account"),
                                    on_delete=models.PROTECT, related_name="+",
                                    db_index=False)
    partner = models.ForeignKey(
        "accounts.Partner", verbose_name=_("partner"), on_delete=models.PROTECT, related_name="+",
        db_index=False,
    )
    bill_date = models.DateField(verbose_name=_("bill date"))
    amount = money_field(verbose_name=_("amount"))
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("deduction")
        verbose_name_plural = _("deductions")
        ordering = ["-bill_date", "-pk"]
        # Each index's query and its measured benefit: docs/BENCHMARKS.md ("The write path"
        # and the indexes benchmark).
        indexes = [
            # A coupon's deductions: the sub-account's Coupons page (6 ms against 135 ms),
            # the statistics' triggers, Coupon Usage's chart of a sub-account search.
            models.Index(fields=["coupon", "bill_date"], name="deduction_coupon"),
            # The month close's deductions of its accounts (79 ms against 184 ms).
            models.Index(fields=["sub_account", "bill_date"], name="deduction_account_day"),
        ]
        constraints = [
            # Line first: the same index serves posting's "what already paid these lines"
            # (13 ms against 124 ms for a batch).
            models.UniqueConstraint(fields=["line", "coupon"], name="deduction_once_per_line"),
            models.CheckConstraint(name="deduction_amount_gt_0", condition=Q(amount__gt=0)),
        ]

    def __str__(self) -> str:
        return _("%(coupon)s paid %(amount)s on line %(line)s") % {
            "coupon": self.coupon_id, "amount": self.amount, "line": self.line_id}


class ClosedMonth(models.Model):
    """A month whose monthly bills are made; its daily bills and usage are final."""

    month = models.DateField(verbose_name=_("month"), unique=True,
                             help_text=_("The first day of the month."))
    closed_at = models.DateTimeField(verbose_name=_("closed at"), auto_now_add=True)

    class Meta:
        verbose_name = _("closed month")
        verbose_name_plural = _("closed months")
        ordering = ["-month"]
        constraints = [
            models.CheckConstraint(name="closedmonth_first_day", condition=Q(month__day=1)),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}"


class MonthlyBill(models.Model):
    """A sub-account's month: the sum of its daily bills, per product and per coupon."""

    # Indexed by monthlybill_one_per_month, which starts with it; newest first is that index
    # read backwards.
    sub_account = models.ForeignKey(
        SubAccount, verbose_name=_("sub-account"), on_delete=models.PROTECT,
        related_name="monthly_bills", db_index=False,
    )
    month = models.DateField(verbose_name=_("month"), help_text=_("The first day of the month."))
    currency = models.CharField(verbose_name=_("currency"), max_length=3, choices=CURRENCIES)
    original_amount = money_field(verbose_name=_("original amount"))
    deduction_amount = money_field(verbose_name=_("deduction amount"))
    payable_amount = money_field(verbose_name=_("payable amount"))
    daily_bill_count = models.PositiveSmallIntegerField(verbose_name=_("daily bill count"))
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("monthly bill")
        verbose_name_plural = _("monthly bills")
        ordering = ["-month", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["sub_account", "month"], name="monthlybill_one_per_month",
            ),
            models.CheckConstraint(name="monthlybill_first_day", condition=Q(month__day=1)),
            *_line_checks("monthlybill"),
        ]

    def __str__(self) -> str:
        return f"{self.sub_account.account_id} {self.month:%Y-%m}"


class MonthlyBillLine(models.Model):
    # As the daily lines: monthlyline_one_per_product starts with the bill.
    bill = models.ForeignKey(MonthlyBill, verbose_name=_("bill"), on_delete=models.PROTECT,
                             related_name="lines",
                             db_index=False)
    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.PROTECT,
                                related_name="+",
                                db_index=False)
    original_amount = money_field(verbose_name=_("original amount"))
    deduction_amount = money_field(verbose_name=_("deduction amount"))
    payable_amount = money_field(verbose_name=_("payable amount"))

    class Meta:
        verbose_name = _("monthly bill line")
        verbose_name_plural = _("monthly bill lines")
        ordering = ["bill_id", "product__code", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["bill", "product"], name="monthlyline_one_per_product",
            ),
            *_line_checks("monthlyline"),
        ]

    def __str__(self) -> str:
        return f"{self.bill} {self.product.code}"


class MonthlyCouponDeduction(models.Model):
    """What one coupon paid on one monthly bill: the "deduction per coupon" of the bill."""

    # monthlycoupon_once starts with the bill; nothing looks these up by coupon.
    bill = models.ForeignKey(
        MonthlyBill, verbose_name=_("bill"), on_delete=models.PROTECT,
        related_name="coupon_deductions", db_index=False,
    )
    coupon = models.ForeignKey(Coupon, verbose_name=_("coupon"), on_delete=models.PROTECT,
                               related_name="+",
                               db_index=False)
    amount = money_field(verbose_name=_("amount"))
    deduction_count = models.PositiveIntegerField(verbose_name=_("deduction count"))

    class Meta:
        verbose_name = _("monthly coupon deduction")
        verbose_name_plural = _("monthly coupon deductions")
        ordering = ["bill_id", "coupon_id"]
        constraints = [
            models.UniqueConstraint(fields=["bill", "coupon"], name="monthlycoupon_once"),
            models.CheckConstraint(name="monthlycoupon_amount_gt_0", condition=Q(amount__gt=0)),
        ]

    def __str__(self) -> str:
        return _("%(bill)s: coupon %(coupon)s paid %(amount)s") % {
            "bill": self.bill, "coupon": self.coupon_id, "amount": self.amount}


# ---------------------------------------------------------------------------------------
# Coupon Usage statistics (docs/ARCHITECTURE.md "Usage statistics")


class UsageStatKey(models.Model):
    """The coupon attributes Coupon Usage filters on, the key of both statistics tables.

    Rows are deltas written by database triggers (billing/migrations/0003_usage_stats.py) on
    every insert, update and delete of coupons and deductions; a key's figures are the sum
    of its rows. No unique constraint: writers only insert, so they never wait on each other;
    `coupon_stats_compact` (billing/stats.py) folds each key's rows into one every minute.
    The ids are plain numbers, not foreign keys: a delta row is derived data and needs no
    check per insert.
    """

    partner_id = models.BigIntegerField()
    template_id = models.BigIntegerField()
    status = models.CharField(max_length=10)
    cost_bearer = models.CharField(max_length=10)
    currency = models.CharField(max_length=3)
    # The release day in the platform's time zone (settings.TIME_ZONE, as the SQL function
    # couponplatform_tz() holds it): what the page's "Released from/to" filters compare.
    released_on = models.DateField()
    valid_until = models.DateField()
    # False on the triggers' rows until a compaction has folded them into their key's row.
    compacted = models.BooleanField(default=False, db_default=False)

    class Meta:
        abstract = True


class CouponStat(UsageStatKey):
    """Coupons per key: how many, and the sums of their amount, balance and voided amount."""

    coupons = models.BigIntegerField()
    amount = money_field()
    balance = money_field()
    voided = money_field()

    class Meta:
        indexes = [
            # The page reads a partner's rows (by template first when it filters by one);
            # the compaction finds a key's rows by the whole key.
            models.Index(
                fields=["partner_id", "template_id", "status", "cost_bearer", "currency",
                        "released_on", "valid_until"],
                name="couponstat_key",
            ),
            models.Index(fields=["id"], name="couponstat_pending",
                         condition=Q(compacted=False)),
        ]

    def __str__(self) -> str:
        return f"{self.partner_id}/{self.template_id}/{self.status} {self.coupons} coupons"


class DeductionStat(UsageStatKey):
    """Deductions per bill day of the coupons of a key: the Coupon Usage chart."""

    bill_date = models.DateField()
    amount = money_field()

    class Meta:
        indexes = [
            models.Index(
                fields=["partner_id", "bill_date", "template_id", "status", "cost_bearer",
                        "currency", "released_on", "valid_until"],
                name="deductionstat_key",
            ),
            models.Index(fields=["id"], name="deductionstat_pending",
                         condition=Q(compacted=False)),
        ]

    def __str__(self) -> str:
        return f"{self.partner_id}/{self.template_id}/{self.status} {self.bill_date} {self.amount}"
