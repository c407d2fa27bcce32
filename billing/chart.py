"""Coupon Usage's chart: deductions per bill day as a daily series, every day of the window
present (a day without deductions is a 0, not a gap), one series per currency. A pure
function of the per-day sums the selectors read (billing/selectors.py), so the page, its
table fallback and the tests share it."""
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from couponplatform.money import ZERO, quantize


@dataclass(frozen=True)
class Series:
    """One currency's deductions, one value per day of the window, to the cent."""

    currency: str
    values: tuple[Decimal, ...]
    total: Decimal
    peak: Decimal


@dataclass(frozen=True)
class DailySeries:
    days: tuple[date, ...]  # every day from first to last, in order
    series: tuple[Series, ...]  # by currency code

    @property
    def first(self) -> date:
        return self.days[0]

    @property
    def last(self) -> date:
        return self.days[-1]

    def as_json(self) -> dict:
        """For the page's script: days as YYYY-MM-DD, amounts as text with two decimals
        (never floats: the script parses them to draw, and shows the text)."""
        return {
            "days": [f"{d:%Y-%m-%d}" for d in self.days],
            "series": [{"currency": s.currency, "values": [f"{v:.2f}" for v in s.values],
                        "total": f"{s.total:.2f}"} for s in self.series],
        }

    def table(self, series: Series) -> list[tuple[date, Decimal]]:
        return list(zip(self.days, series.values, strict=True))


def daily_series(rows: Iterable[Mapping], *, first: date, last: date) -> DailySeries:
    """Rows of {bill_date, currency, total} (a day and currency may repeat: they add up)
    as one zero-filled series per currency over first … last inclusive. Rows outside the
    window are left out. A currency appears only if it has a row in the window."""
    if last < first:
        raise ValueError("the window ends before it starts")
    days = tuple(first + timedelta(days=n) for n in range((last - first).days + 1))
    index = {day: n for n, day in enumerate(days)}
    sums: dict[str, list[Decimal]] = {}
    for row in rows:
        n = index.get(row["bill_date"])
        if n is None:
            continue
        values = sums.setdefault(row["currency"], [ZERO] * len(days))
        values[n] += Decimal(str(row["total"]))  # SQLite may sum to a float
    series = []
    for currency in sorted(sums):
        values = tuple(quantize(v) for v in sums[currency])
        series.append(Series(currency=currency, values=values,
                             total=quantize(sum(values, ZERO)), peak=max(values)))
    return DailySeries(days=days, series=tuple(series))
