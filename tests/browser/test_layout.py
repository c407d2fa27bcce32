"""Every page as its demo user meets it in a real browser at 1,280 and 1,440 px: the BD's
admin (the pending queue, a request's change and reject pages, the request list, the
partner's budgets and the read-only lists), the partner admin's and the operator's console
(templates, the form, Issue Coupon, Approval Status and a request's page, Coupon Usage, a
coupon's page and its void page, API keys) and the sub-account's Billing Management
(Coupons and its tabs, Bills, a daily and a monthly bill) scroll no page and no table
sideways, cut no header and break no amount, date, time or hyphenated label of a cell over
two lines; the form shows only the terms of the kind and validity chosen. With
SCREENSHOTS=1 the pages are saved under docs/screenshots/."""
import pytest
from django.contrib.auth import get_user_model
from selenium.webdriver.common.by import By

import demo.usage
from accounts.models import Partner
from api.keys import api_key_create, api_key_revoke
from api.models import ApiKey
from billing.coupon_status import coupon_void
from billing.models import DailyBill, MonthlyBill
from coupons.models import Coupon, CouponTemplate, IssuanceRequest
from demo.seeding import seed
from tests import factories as f
from tests.browser.helpers import admin_login, login, open_page, scroll_to, shot

pytestmark = pytest.mark.browser

WIDTHS = (1280, 1440)

# Every element scrolled sideways (the page, or a box that scrolls); every table header
# whose text is wider than its cell (cut); and every amount ("1,500.00 USD"), date
# ("2026-06-17", "2026-06"), time ("2026-06-17 10:00 +08") or hyphenated word of a cell
# ("Partner-borne", "Sub-account") that runs over more than one line. Each such piece is
# measured on its own, wherever it stands in the text, so a cell may wrap between pieces.
LAYOUT_PROBLEMS = r"""
const problems = [];
const de = document.documentElement;
if (de.scrollWidth > de.clientWidth + 1) {
  problems.push(`page ${de.scrollWidth} > ${de.clientWidth}`);
}
for (const e of document.querySelectorAll("*")) {
  const style = getComputedStyle(e);
  if (["auto", "scroll"].includes(style.overflowX) && e.scrollWidth > e.clientWidth + 1) {
    problems.push(`${e.tagName}.${e.className} scrolls: ${e.scrollWidth} > ${e.clientWidth}`);
  }
}
for (const th of document.querySelectorAll("th")) {
  if (th.offsetParent !== null && th.scrollWidth > th.clientWidth + 1) {
    problems.push(`header cut: ${th.innerText.replace(/\s+/g, " ")}`);
  }
}
const pieces = new RegExp([
  String.raw`\d{4}-\d\d-\d\d(?: \d\d:\d\d(?: [+-]\d\d(?::?\d\d)?| [A-Z]{2,5})?)?`,
  String.raw`\d{4}-\d\d(?![\d-])`,
  String.raw`(?:\d{1,3}(?:,\d{3})+|\d+)\.\d\d(?!\d)(?: [A-Z]{3}(?![A-Za-z]))?`,
  String.raw`[A-Za-z]+(?:-[A-Za-z]+)+`,
].join("|"), "g");
const CELLS = "td, th, dt, dd, label, legend, button, .btn, .badge, .nav-link";
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode;
  const parent = node.parentElement;
  if (!parent || !parent.getClientRects().length) continue;
  if (parent.closest("script, style, noscript, textarea, option")) continue;
  for (const m of node.data.matchAll(pieces)) {
    if (/^[A-Za-z]/.test(m[0]) && !parent.closest(CELLS)) continue;  // words: in cells only
    const range = document.createRange();
    range.setStart(node, m.index);
    range.setEnd(node, m.index + m[0].length);
    const lines = new Set([...range.getClientRects()].filter(r => r.width > 0)
                          .map(r => Math.round(r.top)));
    if (lines.size > 1) problems.push(`wrapped: ${m[0]}`);
  }
}
return problems;
"""


def _seed(monkeypatch, *, usage: bool = False):
    """The demo data; with `usage`, its 60 days of usage and bills for two Northwind
    accounts (Acme Labs among them) instead of seventy, which cost half a minute."""
    real_seed_usage = demo.usage.seed_usage

    def few_accounts(*, account_ids, **kwargs):
        if usage:
            real_seed_usage(account_ids=["NW000001", "NW000002"], **kwargs)

    monkeypatch.setattr(demo.usage, "seed_usage", few_accounts)
    seed(password="demo", accounts=60, log=f.demo_log)


def _rejected_and_voided() -> tuple[IssuanceRequest, Coupon]:
    """The demo's pending Welcome request rejected by its BD and Acme Labs' Welcome coupon
    voided, through the services, so the pages show a reason and a void."""
    users = get_user_model().objects
    bd = users.get(username="bd")
    pending = IssuanceRequest.objects.get(status="pending", template__name="Welcome cash 50")
    rejected = f.reject(pending, bd, reason="Welcome credits are spent for this quarter.")
    coupon = Coupon.objects.get(sub_account__account_id="NW000001",
                                template__name="Welcome cash 50")
    voided = coupon_void(coupon=coupon, acting_user=users.get(username="distributor"),
                         reason="Issued to the wrong account; reissued to its parent.")
    return rejected, voided


def _check(browser, path: str, name: str | None = None) -> None:
    """No sideways scroll, no cut header, no broken amount, date, time or label, at each
    width, on the page itself (not an error page); `name`: the page's screenshot (the
    flows of the other browser tests take the rest)."""
    for width in WIDTHS:
        browser.set_window_size(width, 900)
        open_page(browser, path)
        assert not browser.title.startswith(("Not found", "Not allowed", "Server Error")), (
            f"{path}: {browser.title}")
        problems = browser.execute_script(LAYOUT_PROBLEMS)
        assert not problems, f"{path} at {width} px: {problems}"
    if name:
        browser.set_window_size(1440, 900)
        open_page(browser, path)
        shot(browser, name)


def test_the_bds_admin_pages_fit_without_sideways_scroll(browser, monkeypatch):
    _seed(monkeypatch)
    rejected, _ = _rejected_and_voided()
    pending = IssuanceRequest.objects.filter(status="pending", cost_bearer="platform").first()
    issued = IssuanceRequest.objects.filter(status="issued").order_by("pk").first()
    northwind = Partner.objects.get(name="Northwind Distribution")
    admin_login(browser, "bd")
    _check(browser, "/admin/")
    _check(browser, "/admin/approvals/pendingrequest/")
    _check(browser, f"/admin/approvals/pendingrequest/{pending.pk}/change/")
    _check(browser, f"/admin/approvals/pendingrequest/{pending.pk}/reject/")
    _check(browser, "/admin/coupons/issuancerequest/", "admin_request_list")
    _check(browser, f"/admin/coupons/issuancerequest/{issued.pk}/change/")
    _check(browser, f"/admin/coupons/issuancerequest/{rejected.pk}/change/")
    _check(browser, "/admin/approvals/approval/")
    _check(browser, "/admin/accounts/partner/")
    _check(browser, f"/admin/accounts/partner/{northwind.pk}/change/", "admin_partner_budget")
    # The budget's figures are amounts as everywhere: grouped, two places, the currency
    # beside them (the pending platform-borne request reserves 5 × 500.00).
    budget = browser.find_element(By.CSS_SELECTOR, "#budgets-group").text
    assert "2,500.00 USD" in budget and "247,500.00 USD" in budget
    assert "250000.00 USD" not in budget
    _check(browser, "/admin/accounts/subaccount/")
    _check(browser, "/admin/coupons/coupontemplate/")
    _check(browser, "/admin/coupons/coupon/")


def _template(name: str) -> int:
    return CouponTemplate.objects.get(partner__name="Northwind Distribution", name=name).pk


def test_the_partner_admins_pages_fit_without_sideways_scroll(browser, monkeypatch):
    _seed(monkeypatch, usage=True)
    rejected, voided = _rejected_and_voided()
    pending = IssuanceRequest.objects.filter(status="pending", partner=rejected.partner).first()
    issued = IssuanceRequest.objects.filter(status="issued", partner=rejected.partner).first()
    cash = Coupon.objects.get(sub_account__account_id="NW000001",
                              template__name="Autumn promo 100")
    discount = Coupon.objects.filter(kind="discount", partner=rejected.partner).first()
    login(browser, "distributor")
    _check(browser, f"/coupons/templates/{_template('Autumn promo 100')}/")
    _check(browser, f"/coupons/templates/{_template('15% off storage')}/")
    _check(browser, f"/coupons/templates/{_template('Welcome cash 50')}/issue/")
    _check(browser, f"/coupons/templates/{_template('POC credit 500 (platform)')}/issue/")
    for request in (pending, issued, rejected):
        _check(browser, f"/approvals/{request.pk}/")
    _check(browser, f"/approvals/{pending.pk}/cancel/")
    _check(browser, "/coupons/usage/")
    _check(browser, f"/coupons/usage/?template={_template('15% off storage')}")
    for coupon in (cash, discount, voided):
        _check(browser, f"/coupons/usage/{coupon.pk}/")
    _check(browser, f"/coupons/usage/{cash.pk}/void/")
    admin = get_user_model().objects.get(username="distributor")
    for name, role in (("Nightly reconciliation job", "read_only"), ("CRM", "operator")):
        api_key_create(partner=rejected.partner, acting_user=admin, name=name, role=role)
    api_key_revoke(key=ApiKey.objects.get(name="CRM"), acting_user=admin)
    _check(browser, "/coupons/api-keys/")


def test_the_operators_pages_fit_without_sideways_scroll(browser, monkeypatch):
    _seed(monkeypatch)
    coupon = Coupon.objects.filter(partner__name="Northwind Distribution").first()
    login(browser, "operator")
    _check(browser, "/coupons/templates/")
    _check(browser, f"/coupons/templates/{_template('Spend 200 save 20 on ECS')}/")
    _check(browser, f"/coupons/templates/{_template('Welcome cash 50')}/issue/")
    _check(browser, "/approvals/")
    _check(browser, "/coupons/usage/")
    _check(browser, f"/coupons/usage/{coupon.pk}/")


def test_the_sub_accounts_billing_pages_fit_without_sideways_scroll(browser, monkeypatch):
    _seed(monkeypatch, usage=True)
    _rejected_and_voided()
    bills = DailyBill.objects.filter(sub_account__account_id="NW000001")
    latest = bills.order_by("-date").first()
    closed = MonthlyBill.objects.filter(sub_account__account_id="NW000001").first()
    assert latest and closed, "the demo's usage should have made daily bills and closed a month"
    login(browser, "customer")
    for status in ("available", "used_up", "expired", "voided"):
        _check(browser, f"/billing/coupons/?status={status}")
    _check(browser, "/billing/bills/")
    _check(browser, f"/billing/bills/daily/{latest.date:%Y-%m-%d}/")
    _check(browser, f"/billing/bills/monthly/{latest.date:%Y-%m}/")  # not closed yet
    _check(browser, f"/billing/bills/monthly/{closed.month:%Y-%m}/")


def test_the_templates_list_and_form_fit_and_the_form_shows_only_the_kinds_terms(
        browser, monkeypatch):
    _seed(monkeypatch)
    login(browser, "distributor")
    _check(browser, "/coupons/templates/")
    _check(browser, "/approvals/")
    _check(browser, "/coupons/templates/new/", "template_form")

    def shown(name: str) -> bool:
        return browser.find_element(By.NAME, name).is_displayed()

    def choose(name: str, value: str) -> None:
        radio = browser.find_element(By.CSS_SELECTOR, f"input[name={name}][value={value}]")
        scroll_to(browser, radio)
        radio.click()

    assert shown("face_value") and shown("valid_days")
    assert not any(shown(n) for n in ("upper_limit", "discount_rate", "min_bill_amount",
                                      "valid_from", "valid_until", "products"))
    choose("kind", "discount")
    assert shown("upper_limit") and shown("discount_rate") and shown("discount_uses")
    assert not shown("face_value") and not shown("min_bill_amount")
    choose("kind", "threshold")
    assert shown("face_value") and shown("min_bill_amount") and not shown("upper_limit")
    choose("validity_type", "fixed")
    assert shown("valid_from") and shown("valid_until") and not shown("valid_days")
    box = browser.find_element(By.NAME, "all_products")
    scroll_to(browser, box)
    box.click()
    assert shown("products")
    # A window that starts before the platform's today is noted, not refused.
    start = browser.find_element(By.NAME, "valid_from")
    today = start.get_attribute("data-today")
    browser.execute_script(
        "arguments[0].value = '2020-01-01';"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}))", start)
    note = browser.find_element(By.ID, "valid-from-past").text
    assert f"Starts before today ({today})" in note
    # The required marks: one style, the asterisk right after the label.
    label = browser.find_element(By.CSS_SELECTOR, "label[for=id_valid_from]")
    mark = browser.execute_script(
        "return getComputedStyle(arguments[0], '::after').content", label)
    assert mark == '"*"'
