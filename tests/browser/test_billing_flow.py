"""The billing path of issue 4 in a real browser: `customer` (Acme Labs, NW000001) finds a
coupon's deductions on Billing Management → Coupons, follows one to its daily bill and on
to the monthly bill; `distributor` filters Coupon Usage and exports it as CSV. Every amount
is checked against the Deduction rows, not against numbers written here.
With SCREENSHOTS=1 the pages are saved under docs/screenshots/."""
import csv
from decimal import Decimal

import pytest
from django.db.models import Sum
from selenium.webdriver.common.by import By

import demo.usage
from billing.models import DailyBill, Deduction, MonthlyBill
from coupons.models import Coupon
from demo.seeding import seed
from tests import factories as f
from tests.browser.helpers import (
    allow_downloads,
    login,
    page_text,
    path_of,
    scroll_to,
    shot,
    submit_and_wait,
    wait_for_download,
)

pytestmark = pytest.mark.browser

ACCOUNT_ID = "NW000001"
COUPON_TEMPLATE = "Autumn promo 100"
# The export's columns, as partners' spreadsheets read them (PRODUCT §8).
EXPORT_HEADER = ["Code", "Sub-account ID", "Sub-account", "Template", "Cost bearer",
                 "Currency", "Amount", "Used", "Remaining", "Voided", "Valid from",
                 "Valid until", "Status", "Released", "Kind", "Discount rate (%)",
                 "Cap per use", "Uses left", "Voided at", "Voided by", "Void reason"]


def _seed(monkeypatch):
    """The demo data with its 60 days of usage and billing, for three accounts instead of
    seventy: the demo's full usage costs about half a minute on its own."""
    real_seed_usage = demo.usage.seed_usage

    def few_accounts(*, account_ids, **kwargs):
        return real_seed_usage(account_ids=[ACCOUNT_ID, "NW000002", "BB000001"], **kwargs)

    monkeypatch.setattr(demo.usage, "seed_usage", few_accounts)
    seed(password="demo", accounts=60, log=f.demo_log)


def _money(text: str) -> Decimal:
    """'1,234.50 USD' → Decimal('1234.50')."""
    return Decimal(text.split()[0].replace(",", ""))


def _cells(row) -> list[str]:
    return [td.text for td in row.find_elements(By.TAG_NAME, "td")]


def _column(browser, table: str, name: str) -> int:
    """The index of the column headed `name` (any case) in the table matched by `table`."""
    headers = [th.text.strip().lower()
               for th in browser.find_elements(By.CSS_SELECTOR, f"{table} thead th")]
    assert name.lower() in headers, f"{table} has no {name!r} column: {headers}"
    return headers.index(name.lower())


def test_customer_sees_a_coupons_deductions_on_coupons_and_on_the_daily_and_monthly_bills(
    browser, monkeypatch,
):
    _seed(monkeypatch)
    coupon = Coupon.objects.get(sub_account__account_id=ACCOUNT_ID,
                                template__name=COUPON_TEMPLATE)
    deductions = list(
        Deduction.objects.filter(coupon=coupon).select_related("line__product")
        .order_by("bill_date", "pk"),
    )
    assert deductions, "the seed's usage should have drawn on the customer's coupon"
    first = deductions[0]

    login(browser, "customer")
    assert path_of(browser).startswith("/billing/coupons/")
    assert "customer · Acme Labs" in page_text(browser)

    # The coupon's tab (a used-up coupon is not on the default Available tab).
    tab = browser.find_element(By.CSS_SELECTOR, f".nav-tabs a[href='?status={coupon.status}']")
    assert tab.text.split()[-1] == str(
        Coupon.objects.filter(sub_account=coupon.sub_account, status=coupon.status).count(),
    )
    if "active" not in tab.get_attribute("class"):
        submit_and_wait(browser, tab)
    card = next(
        c for c in browser.find_elements(By.CSS_SELECTOR, ".coupon-card")
        if coupon.code in c.text
    )
    assert COUPON_TEMPLATE in card.text
    assert f"{coupon.balance} {coupon.currency}" in card.text
    used = sum((d.amount for d in deductions), Decimal("0"))
    assert f"used {used}" in card.text

    details = card.find_element(By.TAG_NAME, "details")
    summary = details.find_element(By.TAG_NAME, "summary")
    word = "deduction" if len(deductions) == 1 else "deductions"
    assert summary.text == f"{len(deductions)} {word}"
    assert details.get_attribute("open") is None
    scroll_to(browser, summary)
    summary.click()
    assert details.get_attribute("open") is not None
    rows = details.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == len(deductions)
    date, product, bill, amount = _cells(rows[0])
    assert date == f"{first.bill_date:%Y-%m-%d}"
    assert product == f"{first.line.product.name} {first.line.product.code}"
    assert bill == f"Daily bill {first.bill_date:%Y-%m-%d}"
    assert _money(amount) == first.amount > 0
    shot(browser, "billing_coupons_deductions")

    # Its daily bill: the line of that product shows the coupon deduction and who paid it.
    submit_and_wait(browser, rows[0].find_element(By.TAG_NAME, "a"))
    assert path_of(browser) == f"/billing/bills/daily/{first.bill_date:%Y-%m-%d}/"
    daily = DailyBill.objects.get(sub_account=coupon.sub_account, date=first.bill_date)
    original_col = _column(browser, "#bill-lines", "Original")
    deduction_col = _column(browser, "#bill-lines", "Coupon deduction")
    payable_col = _column(browser, "#bill-lines", "Payable")
    line_row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "#bill-lines tbody tr")
        if r.text.split()[0] == first.line.product.code
    )
    cells = _cells(line_row)
    assert _money(cells[deduction_col]) == first.line.deduction_amount > 0
    assert _money(cells[payable_col]) == first.line.payable_amount
    paid_by = cells[_column(browser, "#bill-lines", "Paid by coupons")]
    assert f"{coupon.template.name} {coupon.code}: {first.amount}" in paid_by
    total = _cells(browser.find_element(By.CSS_SELECTOR, "#bill-lines tfoot tr"))
    assert _money(total[deduction_col]) == daily.deduction_amount > 0
    assert _money(total[original_col]) == daily.original_amount
    shot(browser, "billing_daily_bill")

    # Its monthly bill: the per-coupon deduction is the coupon's deductions of that month.
    month = first.bill_date.replace(day=1)
    submit_and_wait(browser, browser.find_element(By.LINK_TEXT, f"Monthly bill {month:%Y-%m}"))
    assert path_of(browser) == f"/billing/bills/monthly/{month:%Y-%m}/"
    monthly = MonthlyBill.objects.get(sub_account=coupon.sub_account, month=month)
    in_month = Deduction.objects.filter(
        coupon=coupon, bill_date__year=month.year, bill_date__month=month.month,
    )
    coupon_row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "#coupon-deductions tbody tr")
        if coupon.code in r.text
    )
    cells = _cells(coupon_row)
    deducted = cells[_column(browser, "#coupon-deductions", "Deducted")]
    uses = cells[_column(browser, "#coupon-deductions", "Deductions")]
    assert _money(deducted) == in_month.aggregate(s=Sum("amount"))["s"] > 0
    assert int(uses) == in_month.count()
    product_row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "#bill-lines tbody tr")
        if r.text.split()[0] == first.line.product.code
    )
    product_deducted = Deduction.objects.filter(
        sub_account=coupon.sub_account, line__product=first.line.product,
        bill_date__year=month.year, bill_date__month=month.month,
    ).aggregate(s=Sum("amount"))["s"]
    deduction_col = _column(browser, "#bill-lines", "Coupon deduction")
    assert _money(_cells(product_row)[deduction_col]) == product_deducted
    total = _cells(browser.find_element(By.CSS_SELECTOR, "#bill-lines tfoot tr"))
    assert _money(total[deduction_col]) == monthly.deduction_amount == Deduction.objects.filter(
        sub_account=coupon.sub_account, bill_date__year=month.year,
        bill_date__month=month.month,
    ).aggregate(s=Sum("amount"))["s"]
    shot(browser, "billing_monthly_bill")

    # The Bills list has the same totals.
    submit_and_wait(browser, browser.find_element(By.LINK_TEXT, "Bills"))
    month_row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "#monthly-bills tbody tr")
        if r.text.startswith(f"{month:%Y-%m}")
    )
    assert _money(_cells(month_row)[_column(browser, "#monthly-bills", "Coupon deduction")]) == (
        monthly.deduction_amount
    )
    shot(browser, "billing_bills")


def test_distributor_filters_coupon_usage_and_exports_it_as_csv(browser, monkeypatch, tmp_path):
    _seed(monkeypatch)
    coupon = Coupon.objects.get(sub_account__account_id=ACCOUNT_ID,
                                template__name=COUPON_TEMPLATE)
    used = Deduction.objects.filter(coupon=coupon).aggregate(s=Sum("amount"))["s"]
    assert used and used > 0

    login(browser, "distributor")
    submit_and_wait(browser, browser.find_element(By.LINK_TEXT, "Coupon Usage"))
    assert path_of(browser) == "/coupons/usage/"
    shot(browser, "coupon_usage")

    # Filter to the customer's account; the table and the export follow the filter.
    sub_account = browser.find_element(By.NAME, "sub_account")
    sub_account.send_keys(ACCOUNT_ID)
    submit_and_wait(browser, sub_account.find_element(By.XPATH, "ancestor::form//button"))
    rows = browser.find_elements(By.CSS_SELECTOR, "table.table-hover tbody tr")
    holds = Coupon.objects.filter(sub_account__account_id=ACCOUNT_ID).count()
    assert len(rows) == holds
    row = next(r for r in rows if coupon.code in r.text)
    assert f"{ACCOUNT_ID} Acme Labs" in row.text
    table = "table.table-hover"
    cells = _cells(row)
    assert _money(cells[_column(browser, table, "Used")]) == used
    assert _money(cells[_column(browser, table, "Remaining")]) == coupon.balance
    shot(browser, "coupon_usage_filtered")

    allow_downloads(browser, tmp_path)
    export = browser.find_element(By.LINK_TEXT, "Export CSV")
    assert f"sub_account={ACCOUNT_ID}" in export.get_attribute("href")
    scroll_to(browser, export)
    export.click()
    path = wait_for_download(tmp_path, ".csv")
    assert path.name.startswith("coupon-usage-")

    with path.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == EXPORT_HEADER
    records = [dict(zip(EXPORT_HEADER, line, strict=True)) for line in table[1:]]
    assert len(records) == holds
    assert {r["Sub-account ID"] for r in records} == {ACCOUNT_ID}
    record = next(r for r in records if r["Code"] == coupon.code)
    assert record["Sub-account"] == "Acme Labs"
    assert record["Template"] == COUPON_TEMPLATE
    assert record["Currency"] == coupon.currency
    assert Decimal(record["Amount"]) == coupon.amount
    assert Decimal(record["Used"]) == used
    assert Decimal(record["Remaining"]) == coupon.balance == coupon.amount - used - (
        coupon.voided_amount
    )
    assert record["Valid until"] == f"{coupon.valid_until:%Y-%m-%d}"
    assert record["Status"] == coupon.get_status_display()
