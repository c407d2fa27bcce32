"""The pages as a BD and a partner meet them in a real browser at 1,280 and 1,440 px: the
BD's pending queue, a request's page, the templates list and the create-template form
scroll no page and no table sideways and break no amount or time over two lines; the form
shows only the terms of the kind and validity chosen. With SCREENSHOTS=1 the pages are
saved under docs/screenshots/."""
import pytest
from selenium.webdriver.common.by import By

from coupons.models import IssuanceRequest
from demo.seeding import seed
from tests import factories as f
from tests.browser.helpers import admin_login, login, open_page, scroll_to, shot

pytestmark = pytest.mark.browser

WIDTHS = (1280, 1440)

# Every element scrolled sideways (the page, or a box that scrolls), and every short piece
# of text holding an amount ("1,500.00") or a time ("2026-06-17 10:00") that runs over more
# than one line.
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
const amount = /\d\.\d\d(?!\d)|\d{4}-\d\d-\d\d \d\d:\d\d/;
for (const e of document.querySelectorAll("td, th, dd, span, a, button")) {
  if (e.offsetParent === null || e.children.length) continue;
  const text = e.innerText || "";
  if (!amount.test(text) || text.length > 40) continue;
  const range = document.createRange();
  range.selectNodeContents(e);
  const lines = new Set([...range.getClientRects()].filter(r => r.width > 0)
                        .map(r => Math.round(r.top)));
  if (lines.size > 1) problems.push(`wrapped: ${text.replace(/\s+/g, " ")}`);
}
return problems;
"""


def _seed(monkeypatch):
    monkeypatch.setattr("demo.usage.seed_usage", lambda **kwargs: None)
    seed(password="demo", accounts=60, log=f.demo_log)


def _check(browser, path: str, name: str | None = None) -> None:
    """No sideways scroll, no broken amount or time, at each width; `name`: the page's
    screenshot (the flows of the other browser tests take the rest)."""
    for width in WIDTHS:
        browser.set_window_size(width, 900)
        open_page(browser, path)
        problems = browser.execute_script(LAYOUT_PROBLEMS)
        assert not problems, f"{path} at {width} px: {problems}"
    if name:
        browser.set_window_size(1440, 900)
        open_page(browser, path)
        shot(browser, name)


def test_the_bds_queue_and_request_pages_fit_without_sideways_scroll(browser, monkeypatch):
    _seed(monkeypatch)
    pending = IssuanceRequest.objects.filter(status="pending", cost_bearer="platform").first()
    issued = IssuanceRequest.objects.filter(status="issued").order_by("pk").first()
    admin_login(browser, "bd")
    _check(browser, "/admin/approvals/pendingrequest/")
    _check(browser, f"/admin/approvals/pendingrequest/{pending.pk}/change/")
    _check(browser, "/admin/coupons/issuancerequest/", "admin_request_list")
    _check(browser, f"/admin/coupons/issuancerequest/{issued.pk}/change/")


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
