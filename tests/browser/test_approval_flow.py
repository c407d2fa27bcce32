"""The approval path of issue 3 in a real browser: `distributor` submits a platform-borne
request, `bd` approves it in the Django admin's pending queue, and `distributor` sees it
issued; `bd2` never sees it; `reseller`, whose partner needs no BD approval for
partner-borne coupons, has its request approved by the system and issued at once.
With SCREENSHOTS=1 the pages are saved under docs/screenshots/."""
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By

from accounts.models import PlatformBudget
from approvals.models import Approval
from coupons.models import Coupon, IssuanceRequest
from demo.seeding import seed
from tests import factories as f
from tests.browser.helpers import (
    admin_login,
    login,
    logout,
    open_page,
    page_text,
    path_of,
    scroll_to,
    shot,
    submit_and_wait,
)

pytestmark = pytest.mark.browser

PLATFORM_TEMPLATE = "POC credit 500 (platform)"
LOYALTY_TEMPLATE = "Bluebird loyalty 25"
QUEUE = "/admin/approvals/pendingrequest/"


def _seed(monkeypatch):
    """The demo data without its 60 days of usage and billing, which this flow never reads
    (and which costs half a minute)."""
    monkeypatch.setattr("demo.usage.seed_usage", lambda **kwargs: None)
    seed(password="demo", accounts=60, log=f.demo_log)


def _issue(browser, template_name: str, account_ids: list[str]) -> IssuanceRequest:
    """From the Templates list: Issue Coupon on `template_name`, paste `account_ids`,
    confirm; return the request the page landed on."""
    open_page(browser, "/coupons/templates/")
    row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
        if template_name in r.text
    )
    submit_and_wait(browser, row.find_element(By.LINK_TEXT, "Issue Coupon"))
    assert f"Issue Coupon: {template_name}" in page_text(browser)

    paste = browser.find_element(By.NAME, "account_ids")
    scroll_to(browser, paste)
    paste.send_keys("\n".join(account_ids))
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "button[value=paste]"))
    added = f"{len(account_ids)} account" + ("s" if len(account_ids) > 1 else "")
    assert f"Added {added} to Selected Accounts." in page_text(browser)
    selected = browser.find_element(By.ID, "selected-list").text
    assert all(account_id in selected for account_id in account_ids), selected

    before = set(IssuanceRequest.objects.values_list("pk", flat=True))
    confirm = browser.find_element(By.CSS_SELECTOR, "#summary button[value=confirm]")
    assert confirm.is_enabled()
    submit_and_wait(browser, confirm)
    request_obj = IssuanceRequest.objects.exclude(pk__in=before).get()
    assert path_of(browser) == f"/approvals/{request_obj.pk}/"
    return request_obj


def _bd_login(browser, username: str) -> None:
    """Sign in through the console's login form, which sends staff to the admin, and open
    the pending queue from the admin's index."""
    login(browser, username)
    assert path_of(browser) == "/admin/"
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, f"a[href='{QUEUE}']"))
    assert path_of(browser) == QUEUE


def _change_link(row, request_id: int):
    """The link of a queue row to request `request_id`'s change page, or None."""
    return next(
        (a for a in row.find_elements(By.CSS_SELECTOR, "th a, td a")
         if urlsplit(a.get_attribute("href")).path == f"{QUEUE}{request_id}/change/"),
        None,
    )


def _queue_row(browser, request_id: int):
    """The pending queue's row of request `request_id`, or None."""
    return next(
        (row for row in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
         if _change_link(row, request_id)),
        None,
    )


def test_bd_approves_a_platform_borne_request_in_the_admin_and_the_partner_sees_it_issued(
    browser, monkeypatch,
):
    _seed(monkeypatch)
    accounts = ["NW000002", "NW000003"]

    # distributor: a platform-borne request always goes to the BD.
    login(browser, "distributor")
    request_obj = _issue(browser, PLATFORM_TEMPLATE, accounts)
    text = page_text(browser)
    assert (f"Request {request_obj.number} for 2 accounts was submitted and waits for your BD's "
            "approval.") in text
    assert browser.find_element(By.ID, "request-status").text == "Pending approval"
    assert "500.00 × 2 = 1,000.00 USD" in text
    assert "Platform-borne" in text
    assert request_obj.status == IssuanceRequest.Status.PENDING
    assert request_obj.route == IssuanceRequest.Route.BD
    assert not Coupon.objects.filter(request=request_obj).exists()
    logout(browser)

    # bd2 is a BD too, but not Northwind's: the queue does not list the request and its
    # page is not found, even typed in directly.
    _bd_login(browser, "bd2")
    assert _queue_row(browser, request_obj.pk) is None
    assert "Northwind" not in browser.find_element(By.ID, "content").text
    open_page(browser, f"{QUEUE}{request_obj.pk}/change/")
    assert not browser.find_elements(By.CSS_SELECTOR, "input[name=_approve]")
    assert "Not Found" in browser.title or "not found" in page_text(browser).lower(), (
        page_text(browser)[:300]
    )
    browser.delete_all_cookies()

    # bd: the request waits in the queue, with its partner, total and remaining budget.
    _bd_login(browser, "bd")
    row = _queue_row(browser, request_obj.pk)
    assert row is not None, page_text(browser)[:1000]
    assert "Northwind Distribution" in row.text
    assert PLATFORM_TEMPLATE in row.text
    assert "500.00 × 2 = 1,000.00 USD" in row.text
    assert "Platform-borne" in row.text
    budget = PlatformBudget.objects.get(partner=request_obj.partner, currency="USD")
    assert f"{budget.amount - budget.reserved - budget.consumed:,.2f} USD" in row.text
    pending_ids = set(IssuanceRequest.objects.filter(
        partner__bd__username="bd", status=IssuanceRequest.Status.PENDING,
    ).values_list("pk", flat=True))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == len(
        pending_ids,
    )
    shot(browser, "admin_pending_queue")

    # Search narrows the queue to the request by its id.
    search = browser.find_element(By.ID, "searchbar")
    search.send_keys(str(request_obj.pk))
    submit_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#changelist-search "
                                                                  "[type=submit]"))
    row = _queue_row(browser, request_obj.pk)
    assert row is not None, page_text(browser)[:2000]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 1

    submit_and_wait(browser, _change_link(row, request_obj.pk))
    change_page = f"{QUEUE}{request_obj.pk}/change/"
    assert urlsplit(browser.current_url).path == change_page
    content = browser.find_element(By.ID, "content").text
    for account_id in accounts:
        assert account_id in content
    assert "Pending approval" in content
    approve = browser.find_element(By.CSS_SELECTOR, "input[name=_approve]")
    shot(browser, "admin_request_approve")
    submit_and_wait(browser, approve)

    request_obj.refresh_from_db()
    assert request_obj.status != IssuanceRequest.Status.PENDING, (
        "Approve on the request's admin page did not approve it; the page said: "
        + " / ".join(m.text for m in browser.find_elements(By.CSS_SELECTOR, ".messagelist li"))
    )
    assert request_obj.status == IssuanceRequest.Status.ISSUED, request_obj.reason
    assert request_obj.decided_by.username == "bd"
    assert Approval.objects.get(request=request_obj).status == Approval.Status.APPROVED
    coupons = Coupon.objects.filter(request=request_obj)
    assert sorted(coupons.values_list("sub_account__account_id", flat=True)) == accounts
    # The BD lands on a page that says what happened (not on a "Not found" page: the
    # request has left the pending queue).
    text = page_text(browser)
    assert f"Request {request_obj.number} (#{request_obj.pk}) approved" in text, text[:600]
    assert "Not found" not in text, f"{path_of(browser)}: {text[:600]}"
    shot(browser, "admin_request_approved")
    logout(browser)

    # distributor: the request is issued, approved by bd.
    login(browser, "distributor")
    open_page(browser, f"/approvals/{request_obj.pk}/")
    assert browser.find_element(By.ID, "request-status").text == "Issued"
    summary = browser.find_element(By.CSS_SELECTOR, "dl.summary").text
    assert "Decision\nApproved by Bea Dalton · " in summary  # the BD by full name
    assert not browser.find_elements(By.ID, "release-progress")
    assert not browser.find_elements(By.LINK_TEXT, "Cancel request")
    shot(browser, "request_issued")

    open_page(browser, "/approvals/")
    row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
        if r.find_elements(By.LINK_TEXT, request_obj.number)
    )
    assert "Issued" in row.text


def test_partner_borne_request_of_a_partner_without_bd_approval_is_issued_at_once(
    browser, monkeypatch,
):
    _seed(monkeypatch)
    login(browser, "reseller")
    request_obj = _issue(browser, LOYALTY_TEMPLATE, ["BB000011"])

    request_obj.refresh_from_db()
    assert request_obj.route == IssuanceRequest.Route.AUTO
    assert request_obj.status == IssuanceRequest.Status.ISSUED, request_obj.reason
    assert request_obj.decided_by is None
    coupon = Coupon.objects.get(request=request_obj)
    assert coupon.sub_account.account_id == "BB000011"
    assert coupon.balance == coupon.amount == request_obj.unit_value

    text = page_text(browser)
    assert (f"Request {request_obj.number} for 1 account was approved at once (no BD approval "
            "needed) and issued.") in text
    assert "waits for your BD" not in text
    assert browser.find_element(By.ID, "request-status").text == "Issued"
    summary = browser.find_element(By.CSS_SELECTOR, "dl.summary").text
    assert "Decision\nAuto-approved by the system · " in summary
    assert "25.00 × 1 = 25.00 USD" in summary
    shot(browser, "request_auto_issued")


def test_bd_signs_in_on_the_admin_login_page(browser, monkeypatch):
    """A BD who opens /admin/ signed out is sent to the admin's own login form."""
    _seed(monkeypatch)
    open_page(browser, "/admin/")
    assert path_of(browser).startswith("/admin/login/"), path_of(browser)
    assert browser.find_elements(By.ID, "login-form"), page_text(browser)[:300]
    admin_login(browser, "bd", next_path=QUEUE)
    assert path_of(browser) == QUEUE
