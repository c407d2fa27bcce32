"""The Python side of the Simplified Chinese product (PRODUCT §14): service errors, form
errors, status labels, table headers, export headers and the BD admin's actions come out
in Chinese under `zh-hans`, with their placeholders filled, read from the compiled catalog
(locale/zh_Hans); without it, in the English they always had."""
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import RequestFactory
from django.utils import translation

from accounts.models import PlatformBudget
from approvals.models import PendingRequest
from billing.tables import CouponUsageTable
from billing.views import EXPORT_HEADER
from couponplatform.exceptions import ApplicationError, InvalidTransitionError
from coupons import services
from coupons.forms import CouponTemplateForm, PasteAccountsForm
from coupons.models import Coupon, CouponKind, CouponTemplate, IssuanceRequest
from coupons.tables import CouponTemplateTable
from tests import factories as f

pytestmark = pytest.mark.django_db

ZH = "zh-hans"


def headers(table) -> list[str]:
    return [str(column.header) for column in table.columns]


def template_form(**data) -> CouponTemplateForm:
    fields = {"name": "Spring", "kind": "cash", "currency": "USD", "face_value": "50",
              "validity_type": "relative", "valid_days": "30", "all_products": "on",
              "cost_bearer": "partner", "issue_limit": "one", **data}
    form = CouponTemplateForm(data=fields)
    form.is_valid()
    return form


def action_request(user):
    """A POST to the admin as `user`, with a message store the actions report into."""
    request = RequestFactory().post("/admin/")
    request.user = user
    request._messages = CookieStorage(request)
    return request


# ---------------------------------------------------------------------------------------
# Service errors


def test_a_service_refusal_is_in_chinese_under_zh_hans_and_english_without(dist_admin,
                                                                           distributor):
    template = f.make_template(distributor, dist_admin)
    services.coupon_template_disable(template=template, acting_user=dist_admin)
    with translation.override(ZH), pytest.raises(ApplicationError) as refused:
        services.coupon_template_disable(template=template, acting_user=dist_admin)
    assert refused.value.message == "此模板已停用。"
    with pytest.raises(ApplicationError) as refused:
        services.coupon_template_disable(template=template, acting_user=dist_admin)
    assert refused.value.message == "This template is already disabled."


def test_a_refused_selection_names_its_accounts_in_chinese(dist_admin, distributor, customers):
    template = f.make_template(distributor, dist_admin)
    with translation.override(ZH), f.nothing_written(), pytest.raises(ApplicationError) as refused:
        services.issuance_request_submit(
            template=template, acting_user=dist_admin,
            account_ids=[customers[0].account_id, "NOPE-1", "NOPE-2"])
    assert refused.value.message == "这些账号 ID 不是您的子账号：NOPE-1, NOPE-2。"


def test_the_budget_refusal_keeps_both_amounts_in_chinese(distributor):
    budget = PlatformBudget.objects.get(partner=distributor, currency="USD")
    with translation.override(ZH):
        refusal = budget.reserve_refusal(Decimal("12345.60"))
    assert refusal == "此申请合计 12,345.60 USD，超出剩余的平台承担预算 10,000.00 USD。"
    assert "%(" not in refusal


def test_a_wrong_status_move_says_the_status_and_the_verb_in_chinese(dist_admin, distributor,
                                                                      customers, bd):
    template = f.make_template(distributor, dist_admin)
    request = f.cancel(f.submitted(template, dist_admin, customers[:1]), dist_admin)
    with translation.override(ZH), pytest.raises(InvalidTransitionError) as refused:
        f.approve(request, bd)
    assert refused.value.message == (
        f"发放申请 {request.number} 的状态为已取消，无法通过。")


# ---------------------------------------------------------------------------------------
# Form errors


def test_a_template_form_error_is_in_chinese_with_the_field_named():
    with translation.override(ZH):
        form = template_form(face_value="-5")
        errors = form.errors["face_value"]
        label = str(form.fields["face_value"].label)
    assert errors == ["面值必须大于 0。"]
    assert label == "面值"
    assert template_form(face_value="-5").errors["face_value"] == [
        "The face value must be greater than 0."]


def test_a_paste_form_error_fills_every_placeholder_in_chinese(settings):
    settings.ISSUE_MAX_ACCOUNTS = 2
    pasted = "A" * 200
    with translation.override(ZH):
        form = PasteAccountsForm(data={"account_ids": pasted})
        assert not form.is_valid()
        error = form.errors["account_ids"][0]
    assert error == ("最多粘贴 68 个字符（一个申请最多包含 2 个账号 ID）；本次为 200 个字符。"
                     "未添加任何账号。")


def test_an_amount_typed_with_separators_is_refused_in_chinese():
    with translation.override(ZH):
        errors = template_form(face_value="1,000.00").errors["face_value"]
    assert errors == ["请输入不带千位分隔符的金额，例如 1000.50。"]


# ---------------------------------------------------------------------------------------
# Status labels and choices


def test_statuses_and_kinds_read_as_the_glossary_says():
    with translation.override(ZH):
        labels = {
            "pending": str(IssuanceRequest.Status.PENDING.label),
            "failed": str(IssuanceRequest.Status.FAILED.label),
            "rejected": str(IssuanceRequest.Status.REJECTED.label),
            "used_up": str(Coupon.Status.USED_UP.label),
            "voided": str(Coupon.Status.VOIDED.label),
            "threshold": str(CouponKind.THRESHOLD.label),
            "limited": str(CouponTemplate.IssueLimit.ONE.label),
        }
    assert labels == {"pending": "待审批", "failed": "审批通过但发放失败", "rejected": "已驳回",
                      "used_up": "已用完", "voided": "已作废", "threshold": "满减券",
                      "limited": "每个账号限 1 张"}
    assert str(IssuanceRequest.Status.PENDING.label) == "Pending approval"


def test_a_request_shows_its_status_in_chinese(dist_admin, distributor, customers):
    request = f.submitted(f.make_template(distributor, dist_admin), dist_admin, customers[:2])
    with translation.override(ZH):
        assert str(request.get_status_display()) == "待审批"
        assert str(request) == f"发放申请 {request.number} — {request.template.name} × 2"


# ---------------------------------------------------------------------------------------
# Table and export headers


def test_table_headers_are_in_chinese_and_unchanged_in_english():
    with translation.override(ZH):
        templates = headers(CouponTemplateTable(CouponTemplate.objects.none()))
        usage = headers(CouponUsageTable(Coupon.objects.none(), can_void=True))
    assert templates == ["ID", "名称", "券类型", "优惠内容", "费用承担方", "发放限制", "有效期",
                         "已发放", "状态", "创建时间", ""]
    assert usage == ["券码", "子账号", "模板", "费用承担方", "金额", "已使用", "剩余", "有效期",
                     "状态", "发放时间", ""]
    assert headers(CouponTemplateTable(CouponTemplate.objects.none())) == [
        "ID", "Name", "Kind", "Value", "Cost bearer", "Issue limit", "Validity", "Issued",
        "Status", "Created", ""]


def test_export_headers_are_read_in_the_language_of_the_export():
    with translation.override(ZH):
        chinese = [str(name) for name in EXPORT_HEADER]
    assert chinese[:5] == ["券码", "子账号 ID", "子账号", "模板", "费用承担方"]
    assert str(EXPORT_HEADER[0]) == "Code"


# ---------------------------------------------------------------------------------------
# The BD admin


def test_the_queue_actions_and_their_report_are_in_chinese(dist_admin, distributor, customers,
                                                           bd):
    template = f.make_template(distributor, dist_admin, cost_bearer="platform")
    request = f.submitted(template, dist_admin, customers[:3])
    model_admin = admin.site._registry[PendingRequest]
    http = action_request(bd)
    with translation.override(ZH):
        actions = {name: str(description)
                   for name, (_func, _name, description) in model_admin.get_actions(http).items()}
        with f.committed():
            model_admin.approve_selected(http, PendingRequest.objects.filter(pk=request.pk))
        reported = [str(message) for message in http._messages]
        title = str(model_admin.changelist_title)
    assert actions["approve_selected"] == "通过所选申请"
    assert actions["reject_selected"] == "驳回所选申请"
    assert reported == [f"已通过 1 个申请：#{request.pk}。"]
    assert title == "待审批队列：勾选申请后通过或驳回，或打开单个申请"
    assert str(model_admin.get_actions(action_request(bd))["approve_selected"][2]) == (
        "Approve selected requests")


def test_an_admin_skip_keeps_the_request_and_its_reason_in_chinese(dist_admin, distributor,
                                                                    customers, bd):
    template = f.make_template(distributor, dist_admin, cost_bearer="platform")
    request = f.cancel(f.submitted(template, dist_admin, customers[:1]), dist_admin)
    model_admin = admin.site._registry[IssuanceRequest]
    http = action_request(bd)
    with translation.override(ZH):
        model_admin.approve_selected(http, IssuanceRequest.objects.filter(pk=request.pk))
        reported = [str(message) for message in http._messages]
    assert reported == [
        f"已跳过 #{request.pk}: 发放申请 {request.number} 的状态为已取消，无法通过。"]


# ---------------------------------------------------------------------------------------
# Webhooks


def test_a_delivery_logs_its_error_in_english_and_shows_it_in_chinese():
    from api.webhooks import ANSWERED, LOOPBACK, NOT_PUBLIC, REFUSED, delivery_error_text

    logged = REFUSED % {"why": NOT_PUBLIC % {"host": "hooks.partner.example",
                                             "address": "127.0.0.1", "why": LOOPBACK}}
    assert logged == ("Refused: hooks.partner.example resolves to 127.0.0.1, a loopback "
                      "address; webhooks are sent to public addresses only.")
    with translation.override(ZH):
        shown = delivery_error_text(logged)
        answered = delivery_error_text(ANSWERED % {"code": 503})
        library = delivery_error_text("ConnectionRefusedError: [Errno 111] Connection refused")
    assert shown == ("已拒绝：hooks.partner.example 解析为 127.0.0.1，这是环回地址；"
                     "Webhook 回调只推送到公网地址。")
    assert answered == "接收地址返回了 503。"
    assert library == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert delivery_error_text(logged) == logged


def test_a_refused_endpoint_url_is_explained_in_chinese(dist_admin, distributor, settings):
    from api.webhooks import webhook_endpoint_create

    settings.WEBHOOK_ALLOW_LOCAL = False  # as in production: HTTPS only

    with translation.override(ZH), f.nothing_written(), pytest.raises(ApplicationError) as refused:
        webhook_endpoint_create(partner=distributor, acting_user=dist_admin,
                                url="http://hooks.partner.example/in", events=[])
    assert refused.value.extra["errors"] == {
        "events": "请至少选择一个要接收的事件。",
        "url": "URL 必须以 https:// 开头（Webhook 回调只通过 HTTPS 推送）。"}
