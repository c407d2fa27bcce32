"""The newcomer's path of issue 2 in a real browser: sign in as `distributor`, create a
template, find three accounts through the search box, issue, and see the request waiting
for the BD. With SCREENSHOTS=1 the pages are saved under docs/screenshots/."""
import pytest
from selenium.webdriver.common.by import By

from accounts.models import SubAccount
from coupons.models import CouponTemplate, IssuanceRequest
from demo.seeding import seed
from tests import factories as f
from tests.browser.helpers import (
    login,
    open_page,
    page_text,
    path_of,
    scroll_to,
    shot,
    submit_and_wait,
    wait_for,
)

pytestmark = pytest.mark.browser

TEMPLATE_NAME = "Browser welcome 25"


def _seed():
    seed(password="demo", accounts=300, log=f.demo_log)


def _field(browser, name):
    return browser.find_element(By.NAME, name)


def _choose(browser, name, value):
    radio = browser.find_element(By.CSS_SELECTOR, f"input[name={name}][value={value}]")
    scroll_to(browser, radio)
    radio.click()
    assert radio.is_selected()


def _fill(browser, name, text):
    element = _field(browser, name)
    element.clear()
    element.send_keys(text)


def _search_and_pick(browser, query: str, account_id: str) -> None:
    """Search the sub-accounts for `query` and tick `account_id` in the results: the tick
    adds it to Selected Accounts at once (static/js/issue.js), with no reload."""
    _fill(browser, "q", query)
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#search-form [type=submit]"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#pick-form tbody tr")
    assert any(account_id in row.text for row in rows), (
        f"searching {query!r} did not list {account_id}: {[r.text for r in rows]}"
    )
    assert not browser.find_element(By.ID, "move-ticked").is_displayed()
    tick_and_wait(browser, account_id)


def tick_and_wait(browser, account_id: str, *, on: bool = True) -> None:
    """Tick (or untick) the account's box and wait until Selected Accounts shows it (or no
    longer does): the page itself does not reload."""
    browser.execute_script("window.__cpSamePage = true")
    tick = browser.find_element(By.CSS_SELECTOR, f"#pick-form input.pick[value='{account_id}']")
    scroll_to(browser, tick)
    assert tick.is_selected() != on
    tick.click()
    wait_for(browser, lambda b: (account_id in b.find_element(By.ID, "selected-list").text) == on)
    assert browser.execute_script("return window.__cpSamePage === true")


def test_distributor_creates_template_issues_to_three_searched_accounts_and_sees_it_pending(
    browser,
):
    _seed()
    # Three accounts found by different searches: a name, an account ID, and another name.
    acme = SubAccount.objects.get(account_id="NW000001")
    by_id = SubAccount.objects.get(account_id="NW000002")
    by_name = SubAccount.objects.get(account_id="NW000003")

    login(browser, "distributor", before_submit=lambda b: shot(b, "login"))
    assert path_of(browser).startswith("/coupons/templates/")
    assert "distributor · Northwind Distribution (admin)" in page_text(browser)
    shot(browser, "template_list")

    # Create: first with bad amounts, which the page refuses with messages, writing nothing.
    submit_and_wait(browser, browser.find_element(By.LINK_TEXT, "Create template"))
    assert path_of(browser) == "/coupons/templates/new/"
    _fill(browser, "name", TEMPLATE_NAME)
    _fill(browser, "description", "Welcome credit for new customers, once per account.")
    _choose(browser, "kind", "cash")
    _fill(browser, "face_value", "25.005")
    _choose(browser, "validity_type", "relative")
    _fill(browser, "valid_days", "2000")
    _choose(browser, "cost_bearer", "partner")
    _choose(browser, "issue_limit", "one")
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#template-form [type=submit]"))
    text = page_text(browser)
    assert "The face value can have at most 2 decimal places." in text
    assert "Enter a number of days from 1 to 1,095." in text
    assert browser.find_elements(By.CSS_SELECTOR, "#template-form .is-invalid")
    assert not CouponTemplate.objects.filter(name=TEMPLATE_NAME).exists()
    shot(browser, "template_form_error")

    # The entered values survive the refusal; correct the two and create.
    assert _field(browser, "name").get_attribute("value") == TEMPLATE_NAME
    _fill(browser, "face_value", "25.00")
    _fill(browser, "valid_days", "90")
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#template-form [type=submit]"))
    template = CouponTemplate.objects.get(name=TEMPLATE_NAME)
    assert path_of(browser) == f"/coupons/templates/{template.pk}/"
    text = page_text(browser)
    assert f"Template “{TEMPLATE_NAME}” is ready for distribution." in text
    assert "90 days from release" in text
    assert "Partner-borne" in text and "Limited to 1" in text
    assert "25.00 USD" in text
    shot(browser, "template_detail")

    # Issue Coupon from the template's row in the list.
    open_page(browser, "/coupons/templates/")
    row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
        if TEMPLATE_NAME in r.text
    )
    submit_and_wait(browser, row.find_element(By.LINK_TEXT, "Issue Coupon"))
    assert path_of(browser) == f"/coupons/templates/{template.pk}/issue/"
    assert f"Issue Coupon: {TEMPLATE_NAME}" in page_text(browser)
    assert browser.find_element(By.ID, "selected-count").text == "0 selected"
    shot(browser, "issue_start")

    _search_and_pick(browser, "Acme Labs", acme.account_id)
    _search_and_pick(browser, by_id.account_id, by_id.account_id)
    _search_and_pick(browser, by_name.name, by_name.account_id)

    selected = browser.find_element(By.ID, "selected-list").text
    for account in (acme, by_id, by_name):
        assert account.account_id in selected and account.name in selected
    assert browser.find_element(By.ID, "selected-count").text == "3 selected"
    summary = browser.find_element(By.ID, "summary").text
    assert "Accounts\n3" in summary
    assert browser.find_element(By.ID, "summary-total").text == "25.00 × 3 = 75.00 USD"
    assert "Partner-borne" in summary
    assert "Needed: the request waits for" in summary
    shot(browser, "issue_selection")

    confirm = browser.find_element(By.CSS_SELECTOR, "#summary button[value=confirm]")
    assert confirm.is_enabled()
    submit_and_wait(browser, confirm)
    request_obj = IssuanceRequest.objects.get(template=template)
    assert path_of(browser) == f"/approvals/{request_obj.pk}/"
    text = page_text(browser)
    assert (f"Request {request_obj.number} for 3 accounts was submitted and waits for your "
            "BD's approval.") in text
    assert browser.find_element(By.ID, "request-status").text == "Pending approval"
    assert "25.00 × 3 = 75.00 USD" in text
    for account in (acme, by_id, by_name):
        assert account.account_id in text
    assert request_obj.status == IssuanceRequest.Status.PENDING
    assert request_obj.recipient_count == 3
    shot(browser, "request_detail")

    open_page(browser, "/approvals/")
    row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
        if f"#{template.pk}" in r.text and TEMPLATE_NAME in r.text
    )
    assert "Pending approval" in row.text
    assert "75.00 USD" in row.text
    assert row.find_element(By.LINK_TEXT, request_obj.number)
    shot(browser, "approval_status")


def test_partner_without_coupon_function_is_told_to_contact_its_bd(browser):
    _seed()
    login(browser, "nocoupons")
    assert "Contact your BD to enable the Coupon Function" in page_text(browser)
    assert "Coupon Management" in browser.find_element(By.TAG_NAME, "nav").text
    shot(browser, "nocoupons")
    # Every coupon URL refuses, even typed in directly.
    open_page(browser, "/coupons/templates/new/")
    assert "Contact your BD to enable the Coupon Function" in page_text(browser)
    assert not browser.find_elements(By.ID, "template-form")


def test_ticks_are_kept_across_pages_and_the_summary_follows_each_tick(browser):
    """Tick on page 1, page 2 and a search; untick one; every tick is in Selected Accounts
    and the summary at once, and still there after paging back and reloading."""
    _seed()
    template = CouponTemplate.objects.get(name="Welcome cash 50")
    login(browser, "distributor")
    open_page(browser, f"/coupons/templates/{template.pk}/issue/?sort=account_id")
    rows = browser.find_elements(By.CSS_SELECTOR, "#pick-form input.pick[name=pick]")
    first, second = rows[0].get_attribute("value"), rows[1].get_attribute("value")
    tick_and_wait(browser, first)
    tick_and_wait(browser, second)
    submit_and_wait(browser, browser.find_element(By.LINK_TEXT, "2"))
    on_page_two = browser.find_element(
        By.CSS_SELECTOR, "#pick-form input.pick[name=pick]").get_attribute("value")
    tick_and_wait(browser, on_page_two)
    assert browser.find_element(By.ID, "summary-count").text == "3"
    assert browser.find_element(By.ID, "summary-total").text == "50.00 × 3 = 150.00 USD"
    assert browser.find_element(By.ID, "confirm-button").text == "Confirm 3 accounts"
    tick_and_wait(browser, on_page_two, on=False)
    assert browser.find_element(By.ID, "summary-count").text == "2"
    assert browser.find_element(By.ID, "selected-count").text == "2 selected"
    submit_and_wait(browser, browser.find_element(By.LINK_TEXT, "1"))
    for account_id in (first, second):
        box = browser.find_element(By.CSS_SELECTOR, f"input.pick[value='{account_id}']")
        assert box.is_selected() and box.is_enabled()
    browser.refresh()
    assert browser.find_element(By.ID, "summary-total").text == "50.00 × 2 = 100.00 USD"
    confirm = browser.find_element(By.ID, "confirm-button")
    submit_and_wait(browser, confirm)
    request_obj = IssuanceRequest.objects.get(template=template, recipient_count=2)
    assert sorted(request_obj.recipients.values_list("sub_account__account_id", flat=True)) == (
        sorted([first, second]))
