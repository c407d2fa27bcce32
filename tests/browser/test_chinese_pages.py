"""The main pages in Simplified Chinese in a real browser (QUALITY "Languages": screenshots
read right): each role switches with the header's own button, and every page, at 1,280 and
1,440 px, shows Chinese in a CJK font, scrolls no page or table sideways and breaks no
amount or time over two lines. With SCREENSHOTS=1 each page is saved at both widths under
docs/screenshots/zh-hans/ (Debian's fonts-noto-cjk draws the Chinese: `make i18n-deps`)."""
import os
import shutil
from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By

from billing.models import DailyBill, MonthlyBill
from coupons.models import CouponTemplate, IssuanceRequest
from tests.browser.helpers import (
    admin_login,
    login,
    open_page,
    page_text,
    path_of,
    shot,
    submit_and_wait,
)
from tests.browser.test_billing_flow import _seed
from tests.browser.test_layout import LAYOUT_PROBLEMS

pytestmark = pytest.mark.browser

WIDTHS = (1280, 1440)

# Whether the page's Chinese is drawn in a font that has it: a glyph missing from the
# font falls back to a box of another width, so two different characters measure alike.
CJK_DRAWN = r"""
const canvas = document.createElement("canvas").getContext("2d");
canvas.font = getComputedStyle(document.body).fontSize + " " +
              getComputedStyle(document.body).fontFamily;
const tofu = canvas.measureText("\u{10FFFF}").width;
return ["优", "惠", "券"].every(ch => canvas.measureText(ch).width !== tofu);
"""


def _cjk_font_or_skip():
    if shutil.which("fc-list") and os.popen("fc-list :lang=zh").read().strip():
        return
    if os.environ.get("CI"):
        pytest.fail("CI must draw the Chinese pages, but no CJK font is installed")
    pytest.skip("no CJK font: `make i18n-deps` (as root) installs Debian's fonts-noto-cjk")


def _switch_to_chinese(browser):
    """The header's 简体中文 button, as a person would press it; back on the same page."""
    before = path_of(browser)
    button = browser.find_element(By.CSS_SELECTOR, ".language-switch button[value='zh-hans']")
    submit_and_wait(browser, button)
    assert path_of(browser) == before
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-hans"


def _check(browser, name: str, path: str, must_show: str) -> None:
    for width in WIDTHS:
        browser.set_window_size(width, 900)
        open_page(browser, path)
        text = page_text(browser)
        assert must_show in text, f"{path}: {must_show!r} not in {text[:300]!r}"
        assert browser.execute_script(CJK_DRAWN), f"{path}: Chinese drawn without a CJK font"
        shot(browser, f"zh-hans/{name}-{width}")  # before the check: a failure is seen too
        problems = browser.execute_script(LAYOUT_PROBLEMS)
        assert not problems, f"{path} in Chinese at {width} px: {problems}"


def _webhook_endpoint(partner):
    """An endpoint of `partner` with a delivered, a failing and a refused delivery in its
    log, the platform's own errors among them (logged in English, shown in Chinese)."""
    from django.test import override_settings
    from django.utils import timezone

    from accounts.models import User
    from api.models import WebhookDelivery
    from api.webhooks import (
        ANSWERED,
        LOOPBACK,
        NOT_PUBLIC,
        REFUSED,
        webhook_endpoint_create,
        webhook_events_record,
    )

    admin = User.objects.get(username="distributor")
    with override_settings(WEBHOOK_ALLOW_LOCAL=True):
        endpoint, _secret = webhook_endpoint_create(
            partner=partner, acting_user=admin, url="http://127.0.0.1:9/coupon-events",
            events=["request.issued", "request.rejected", "coupon.voided"],
            description="ERP")
    ids = webhook_events_record(partner_id=partner.pk, type="request.issued",
                                objects=[{"n": n} for n in range(3)], endpoints=[endpoint])
    now = timezone.now()
    delivered, failing, refused = WebhookDelivery.objects.filter(pk__in=ids).order_by("pk")
    WebhookDelivery.objects.filter(pk=delivered.pk).update(
        status="succeeded", attempts=1, last_status_code=200, last_error="", delivered_at=now,
        next_attempt_at=None, locked_until=None)
    WebhookDelivery.objects.filter(pk=failing.pk).update(
        status="pending", attempts=4, last_status_code=503, last_error=ANSWERED % {"code": 503},
        next_attempt_at=now + timedelta(minutes=4), locked_until=None)
    WebhookDelivery.objects.filter(pk=refused.pk).update(
        status="failed", attempts=9, last_status_code=None, next_attempt_at=None,
        locked_until=None, last_error=REFUSED % {"why": NOT_PUBLIC % {
            "host": "erp.partner.example", "address": "127.0.0.1", "why": LOOPBACK}})
    return endpoint


def test_the_partner_and_sub_account_pages_read_right_in_chinese(browser, monkeypatch):
    _cjk_font_or_skip()
    _seed(monkeypatch)
    open_page(browser, "/accounts/login/")
    _switch_to_chinese(browser)
    _check(browser, "login", "/accounts/login/", "登录")

    login(browser, "distributor")
    template = CouponTemplate.objects.filter(partner__name="Northwind Distribution",
                                             status="active").order_by("pk").first()
    issued = IssuanceRequest.objects.filter(partner=template.partner,
                                            status="issued").order_by("pk").first()
    for name, path, must_show in [
        ("template_list", "/coupons/templates/", "优惠券模板"),
        ("template_form", "/coupons/templates/new/", "创建优惠券模板"),
        ("template_detail", f"/coupons/templates/{template.pk}/", "发放上限"),
        ("issue", f"/coupons/templates/{template.pk}/issue/", "已选账号"),
        ("approval_status", "/approvals/", "审批状态"),
        ("request_detail", f"/approvals/{issued.pk}/", "历史记录"),
        ("coupon_usage", "/coupons/usage/", "筛选出的优惠券合计"),
        ("api_keys", "/coupons/api-keys/", "API 密钥"),
        ("webhooks", "/coupons/webhooks/", "Webhook 回调"),
        ("webhook_detail", f"/coupons/webhooks/{_webhook_endpoint(template.partner).pk}/",
         "推送记录"),
    ]:
        _check(browser, name, path, must_show)

    browser.delete_all_cookies()
    login(browser, "customer")
    account = DailyBill.objects.filter(sub_account__account_id="NW000001")
    day = account.order_by("-date").values_list("date", flat=True).first()
    month = (MonthlyBill.objects.filter(sub_account__account_id="NW000001")
             .order_by("-month").values_list("month", flat=True).first())
    _switch_to_chinese(browser)
    for name, path, must_show in [
        ("billing_coupons", "/billing/coupons/", "可用余额"),
        ("billing_bills", "/billing/bills/", "日账单"),
        ("billing_daily_bill", f"/billing/bills/daily/{day:%Y-%m-%d}/", "优惠券抵扣"),
        ("billing_monthly_bill", f"/billing/bills/monthly/{month:%Y-%m}/", "按产品"),
    ]:
        _check(browser, name, path, must_show)

    browser.delete_all_cookies()
    login(browser, "nocoupons")
    _switch_to_chinese(browser)
    _check(browser, "nocoupons", "/coupons/templates/", "优惠券功能")


def test_the_bds_admin_reads_right_in_chinese(browser, monkeypatch):
    _cjk_font_or_skip()
    _seed(monkeypatch)
    pending = IssuanceRequest.objects.filter(status="pending", cost_bearer="platform").first()
    admin_login(browser, "bd")
    _switch_to_chinese(browser)
    for name, path, must_show in [
        ("admin_index", "/admin/", "优惠券管理 — BD 管理后台"),
        ("admin_pending_queue", "/admin/approvals/pendingrequest/", "优惠券管理 — BD 管理后台"),
        ("admin_request", f"/admin/approvals/pendingrequest/{pending.pk}/change/", "通过"),
    ]:
        _check(browser, name, path, must_show)
