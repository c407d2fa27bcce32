"""Coupon Usage's chart series (billing/chart.daily_series): every day of the window, a
zero where nothing was deducted, one series per currency, to the cent; and the page draws
it with its axes, currency and a table of every day."""
import json
from datetime import date, timedelta

import pytest

from billing.chart import daily_series
from tests.billing.page_helpers import D

FIRST, LAST = date(2026, 2, 26), date(2026, 3, 3)  # across a month end (28 days)


def row(day, currency, total):
    return {"bill_date": day, "currency": currency, "total": D(total)}


def test_every_day_of_the_window_is_present_and_days_without_deductions_are_zero():
    chart = daily_series([row(date(2026, 2, 27), "USD", "12.50"),
                          row(date(2026, 3, 2), "USD", "3.10")], first=FIRST, last=LAST)
    assert chart.days == (date(2026, 2, 26), date(2026, 2, 27), date(2026, 2, 28),
                          date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3))
    [usd] = chart.series
    assert usd.currency == "USD"
    assert usd.values == (D("0.00"), D("12.50"), D("0.00"), D("0.00"), D("3.10"), D("0.00"))
    assert (usd.total, usd.peak) == (D("15.60"), D("12.50"))
    assert chart.table(usd)[1] == (date(2026, 2, 27), D("12.50"))


def test_one_series_per_currency_never_added_together():
    chart = daily_series([row(date(2026, 3, 1), "USD", "10.00"),
                          row(date(2026, 3, 1), "EUR", "7.00"),
                          row(date(2026, 3, 2), "EUR", "1.00")], first=FIRST, last=LAST)
    assert [s.currency for s in chart.series] == ["EUR", "USD"]
    eur, usd = chart.series
    assert eur.values[3:5] == (D("7.00"), D("1.00")) and eur.total == D("8.00")
    assert usd.values[3] == D("10.00") and usd.total == D("10.00")


def test_rows_of_a_day_add_up_to_the_cent_and_rows_outside_the_window_are_left_out():
    chart = daily_series([row(date(2026, 3, 1), "USD", "0.1"), row(date(2026, 3, 1), "USD", "0.2"),
                          row(date(2026, 2, 25), "USD", "99.00"),
                          row(date(2026, 3, 4), "USD", "99.00"),
                          {"bill_date": date(2026, 3, 2), "currency": "USD", "total": 1.005}],
                         first=FIRST, last=LAST)
    [usd] = chart.series
    assert usd.values[3] == D("0.30")
    assert usd.total == D("1.31")  # 0.30 + 1.005 rounded half up to 1.01 (SQLite's floats)


def test_no_rows_is_no_series_and_a_window_of_one_day_works():
    assert daily_series([], first=FIRST, last=LAST).series == ()
    one = daily_series([row(FIRST, "SGD", "4.00")], first=FIRST, last=FIRST)
    assert one.days == (FIRST,) and one.series[0].values == (D("4.00"),)
    with pytest.raises(ValueError):
        daily_series([], first=LAST, last=FIRST)


def test_the_scripts_data_has_amounts_as_text_with_two_decimals():
    chart = daily_series([row(date(2026, 3, 1), "USD", "10")], first=FIRST, last=LAST)
    data = json.loads(json.dumps(chart.as_json()))
    assert data["days"][0] == "2026-02-26" and len(data["days"]) == 6
    assert data["series"] == [{"currency": "USD", "total": "10.00",
                               "values": ["0.00", "0.00", "0.00", "10.00", "0.00", "0.00"]}]


@pytest.mark.django_db
def test_the_page_has_a_zero_filled_series_per_currency_axes_and_a_table_of_every_day(
    client, distributor, dist_admin,
):
    from django.utils import timezone

    from tests import factories as f
    from tests.billing import page_helpers as ph

    f.make_product("ecs")
    [account] = f.make_accounts(distributor, 1, prefix="CH-")
    today = timezone.localdate()
    f.make_coupon(account, amount="50.00", valid_from=today - timedelta(days=30),
                  valid_until=today)
    billed = [today - timedelta(days=10), today - timedelta(days=3)]
    f.bill_usage([(account, day, "ecs", "4.25") for day in billed])
    client.force_login(dist_admin)
    response = client.get("/coupons/usage/")
    series = response.context["series"]
    assert series.last == today and len(series.days) == 61
    [usd] = series.series
    assert sum(1 for v in usd.values if v) == 2 and usd.total == D("8.50")
    root = ph.parse(response)
    data = json.loads(root.find("script", id="usage-chart-data").text())
    assert data == series.as_json()
    canvas = root.find("canvas")
    assert canvas.attrs["data-currency"] == "USD"
    assert "USD" in canvas.attrs["aria-label"] and "8.50" in canvas.attrs["aria-label"]
    rows = ph.table_rows(root, id="usage-chart-table-USD")
    assert len(rows) == 61  # every day, zeros included
    assert rows[0] == [f"{series.first:%Y-%m-%d}", "0.00 USD"]
    assert [r[1] for r in rows if r[1] != "0.00 USD"] == ["4.25 USD", "4.25 USD"]
    scripts = [s.attrs.get("src", "") for s in root.find_all("script")]
    assert any(src.endswith("vendor/chartjs/chart.umd.min.js") for src in scripts)
    assert not any(src.startswith(("http:", "https:", "//")) for src in scripts)
