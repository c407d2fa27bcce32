"""Which bills a coupon can pay: its account's daily bills dated inside its validity whose
month is not closed (a closed month's bills are final). The posting asks `bill_payable`
bill by bill; the pages show `payable_bills`, so what partners read is what the posting
does (docs/WHICH_COUPON_PAYS.md, "Which bills a coupon can pay")."""
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from django.utils import timezone

from billing.models import ClosedMonth
from billing.periods import month_end, month_start


def bill_open(*, bill_date: date, closed: Container[date]) -> bool:
    """Whether coupons may still pay a bill of `bill_date`: its month is not closed
    (`closed` holds the first days of the closed months)."""
    return month_start(bill_date) not in closed


def bill_payable(
    *, bill_date: date, valid_from: date, valid_until: date, closed: Container[date],
) -> bool:
    """Whether a coupon valid from `valid_from` to `valid_until` (both days included) may pay
    a daily bill of `bill_date`."""
    return valid_from <= bill_date <= valid_until and bill_open(bill_date=bill_date, closed=closed)


@dataclass(frozen=True)
class PayableBills:
    """What a coupon valid from `valid_from` to `valid_until` can pay, seen on `today`."""

    valid_from: date
    valid_until: date
    today: date
    # Months (first days) inside the validity: closed (their bills are final and never
    # paid), and ended but not closed yet (paid only if the coupon comes before the close).
    closed: tuple[date, ...] = ()
    ended_open: tuple[date, ...] = ()

    def pays(self, bill_date: date) -> bool:
        return bill_payable(bill_date=bill_date, valid_from=self.valid_from,
                            valid_until=self.valid_until, closed=set(self.closed))

    @property
    def ranges(self) -> list[tuple[date, date]]:
        """The bill dates it can pay, as (first, last) ranges: the validity less the days of
        closed months."""
        ranges: list[tuple[date, date]] = []
        first = self.valid_from
        for month in sorted(self.closed):
            if first < month:
                ranges.append((first, min(month - timedelta(days=1), self.valid_until)))
            first = max(first, month_end(month) + timedelta(days=1))
        if first <= self.valid_until:
            ranges.append((first, self.valid_until))
        return ranges

    @property
    def pays_nothing(self) -> bool:
        return not self.ranges

    @property
    def starts_in_past(self) -> bool:
        """Bills dated before today inside the validity: paid at release if still owing."""
        return bool(self.ranges) and self.ranges[0][0] < self.today


def payable_bills(
    *, valid_from: date, valid_until: date, today: date | None = None,
    closed_months: Iterable[date] | None = None,
) -> PayableBills:
    """Which bills a coupon of this validity can pay, with the closed months as they stand
    (read here, or given: a page showing many coupons reads them once)."""
    today = today or timezone.localdate()
    if closed_months is None:
        closed_months = ClosedMonth.objects.filter(
            month__gte=month_start(valid_from), month__lte=valid_until,
        ).values_list("month", flat=True)
    closed = sorted(m for m in closed_months if month_start(valid_from) <= m <= valid_until)
    # A month is closed soon after it ends, so an ended month still open is one of the last
    # few: looking back a year bounds the walk however early the validity starts.
    ended_open, month = [], month_start(max(valid_from, today - timedelta(days=366)))
    while month < month_start(today) and month <= valid_until:
        if month not in closed:
            ended_open.append(month)
        month = month_end(month) + timedelta(days=1)
    return PayableBills(valid_from=valid_from, valid_until=valid_until, today=today,
                        closed=tuple(closed), ended_open=tuple(ended_open))


def closed_months_all() -> set[date]:
    """Every closed month (one row per month ever closed: a few dozen)."""
    return set(ClosedMonth.objects.values_list("month", flat=True))
