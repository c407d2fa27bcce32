"""The partner console pages of PRODUCT §3, §4 and §8: roles, tenants, bad input, queries."""
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import PlatformBudget, SubAccount
from audit.models import AuditLog
from coupons.issue_views import SELECTED_SHOWN
from coupons.models import CouponTemplate, IssuanceRecipient, IssuanceRequest
from coupons.services import coupon_template_disable
from tests import factories as f
from tests.coupons.helpers import template_form_data
from tests.factories import nothing_written

pytestmark = pytest.mark.django_db

OFF_MESSAGE = "Contact your BD to enable the Coupon Function"
HTML_NAME = '<script>alert("x")</script><b>bold</b>'
HTML_ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;"


def list_url():
    return reverse("coupons:template_list")


def create_url():
    return reverse("coupons:template_create")


def detail_url(template):
    return reverse("coupons:template_detail", args=[template.pk])


def disable_url(template):
    return reverse("coupons:template_disable", args=[template.pk])


def issue_url(template):
    return reverse("coupons:issue", args=[template.pk])


def request_url(request_obj):
    return reverse("approvals:detail", args=[request_obj.pk])


def page(response) -> str:
    return response.content.decode()


def summary_value(html: str, label: str) -> str:
    """The text of the Issue Coupon summary entry labelled `label`, tags stripped."""
    found = re.search(rf"<dt[^>]*>{re.escape(label)}</dt>\s*<dd[^>]*>(.*?)</dd>", html, re.S)
    assert found, f"no {label!r} in the summary"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def client_as(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def template(distributor, dist_admin):
    return f.make_template(distributor, dist_admin, name="Welcome cash",
                           face_value=Decimal("50.00"))


@pytest.fixture
def pending(template, dist_admin, customers):
    return f.submit(template, dist_admin, customers[:2])


@pytest.fixture
def users(dist_admin, dist_operator, dist_viewer):
    return {"admin": dist_admin, "operator": dist_operator, "viewer": dist_viewer}


@pytest.fixture
def platform_template(distributor, dist_admin):
    return f.make_template(distributor, dist_admin, name="Platform cash",
                           cost_bearer="platform", face_value=Decimal("100.00"))


@pytest.fixture
def tier2_account(distributor):
    return f.make_tier2(distributor)[1]


# ---------------------------------------------------------------------------------------
# Who may open what


@pytest.mark.parametrize("role", ["admin", "operator", "viewer"])
def test_read_pages_render_for_every_partner_role(client, users, template, pending, role):
    client_as(client, users[role])
    for url in (list_url(), detail_url(template), reverse("approvals:list"),
                request_url(pending)):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Welcome cash" in page(response), url


@pytest.mark.parametrize("role", ["admin", "operator"])
def test_write_pages_render_for_admin_and_operator(client, users, template, role):
    client_as(client, users[role])
    assert client.get(create_url()).status_code == 200
    response = client.get(issue_url(template))
    assert response.status_code == 200
    assert "Selected Accounts" in page(response)


def test_viewer_sees_no_create_issue_or_disable_controls(client, dist_viewer, template):
    client_as(client, dist_viewer)
    listing = page(client.get(list_url()))
    assert "Create template" not in listing
    assert issue_url(template) not in listing
    detail = page(client.get(detail_url(template)))
    assert disable_url(template) not in detail
    assert issue_url(template) not in detail


def test_admin_sees_create_issue_and_disable_controls(client, dist_admin, template):
    client_as(client, dist_admin)
    assert issue_url(template) in page(client.get(list_url()))
    assert "Create template" in page(client.get(list_url()))
    detail = page(client.get(detail_url(template)))
    assert disable_url(template) in detail and issue_url(template) in detail


def test_viewer_gets_403_on_every_write_page_and_writes_nothing(client, dist_viewer, template,
                                                                customers):
    client_as(client, dist_viewer)
    assert client.get(create_url()).status_code == 403
    assert client.get(issue_url(template)).status_code == 403
    with nothing_written():
        assert client.post(create_url(), template_form_data()).status_code == 403
        assert client.post(disable_url(template)).status_code == 403
        for action in ("paste", "confirm"):
            response = client.post(issue_url(template), {
                "action": action, "account_ids": customers[0].account_id,
            })
            assert response.status_code == 403


def test_sub_account_user_gets_403_on_every_partner_page(client, template, pending, customers):
    client_as(client, f.make_subaccount_user(customers[0]))
    for url in (list_url(), create_url(), detail_url(template), issue_url(template),
                reverse("approvals:list"), request_url(pending)):
        assert client.get(url).status_code == 403, url
    with nothing_written():
        assert client.post(disable_url(template)).status_code == 403


def test_bd_without_partner_membership_gets_403_on_partner_pages(client, bd, template):
    client_as(client, bd)
    for url in (list_url(), detail_url(template), issue_url(template)):
        assert client.get(url).status_code == 403, url


def test_partner_with_coupon_function_off_gets_403_and_the_contact_message(client, template,
                                                                          pending, distributor,
                                                                          dist_admin):
    distributor.coupon_enabled = False
    distributor.save(update_fields=["coupon_enabled"])
    client_as(client, dist_admin)
    for url in (list_url(), create_url(), detail_url(template), issue_url(template),
                reverse("approvals:list"), request_url(pending)):
        response = client.get(url)
        assert response.status_code == 403, url
        assert OFF_MESSAGE in page(response), url
        assert "Coupon Management" in page(response), url
    with nothing_written():
        assert client.post(create_url(), template_form_data()).status_code == 403
        assert client.post(disable_url(template)).status_code == 403
        assert client.post(issue_url(template), {"action": "confirm"}).status_code == 403


def test_partner_home_redirects_to_contact_page_when_function_off(client):
    partner = f.make_partner(coupon_enabled=False)
    client_as(client, f.make_member(partner, "admin"))
    response = client.get(reverse("coupons:home"), follow=True)
    assert response.status_code == 403
    assert OFF_MESSAGE in page(response)


def test_anonymous_is_sent_to_login(client, template, pending):
    for url in (list_url(), create_url(), detail_url(template), issue_url(template),
                reverse("approvals:list"), request_url(pending)):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"/accounts/login/?next={url}"), url
    with nothing_written():
        response = client.post(disable_url(template))
        assert response.status_code == 302


def test_another_partners_template_and_request_answer_404(client, template, pending, other_admin):
    client_as(client, other_admin)
    for url in (detail_url(template), issue_url(template), request_url(pending)):
        assert client.get(url).status_code == 404, url
    with nothing_written():
        assert client.post(disable_url(template)).status_code == 404
        for action in ("add", "paste", "remove", "clear", "confirm"):
            response = client.post(issue_url(template), {"action": action})
            assert response.status_code == 404, action


def test_unknown_ids_answer_404(client, dist_admin):
    client_as(client, dist_admin)
    assert client.get(reverse("coupons:template_detail", args=[999999])).status_code == 404
    assert client.get(reverse("coupons:issue", args=[999999])).status_code == 404
    assert client.get(reverse("approvals:detail", args=[999999])).status_code == 404


def test_lists_show_no_rows_of_another_partner(client, template, pending, other_partner,
                                               other_admin):
    other_template = f.make_template(other_partner, other_admin, name="Foreign template")
    f.submit(other_template, other_admin, f.make_accounts(other_partner, 1))
    client_as(client, other_admin)
    listing = page(client.get(list_url()))
    assert "Foreign template" in listing and "Welcome cash" not in listing
    approvals = page(client.get(reverse("approvals:list")))
    assert "Foreign template" in approvals and "Welcome cash" not in approvals


# ---------------------------------------------------------------------------------------
# Templates: list, create, detail, disable


def test_template_list_filters_by_kind_status_and_name(client, distributor, dist_admin):
    f.make_template(distributor, dist_admin, name="Alpha cash")
    f.make_template(distributor, dist_admin, name="Beta discount", kind="discount",
                    discount_rate=Decimal("10"), discount_uses=2)
    gone = f.make_template(distributor, dist_admin, name="Gamma gone")
    coupon_template_disable(template=gone, acting_user=dist_admin)
    client_as(client, dist_admin)
    by_kind = page(client.get(list_url(), {"kind": "discount"}))
    assert "Beta discount" in by_kind and "Alpha cash" not in by_kind
    by_status = page(client.get(list_url(), {"status": "disabled"}))
    assert "Gamma gone" in by_status and "Alpha cash" not in by_status
    by_name = page(client.get(list_url(), {"q": "alpha"}))
    assert "Alpha cash" in by_name and "Beta discount" not in by_name


def test_create_page_makes_a_template_and_shows_it(client, distributor, dist_operator):
    client_as(client, dist_operator)
    response = client.post(create_url(), template_form_data(name="Page made", face_value="19.99"),
                           follow=True)
    assert response.status_code == 200
    template = CouponTemplate.objects.get(name="Page made")
    assert response.redirect_chain[-1][0] == detail_url(template)
    assert template.partner == distributor and template.created_by == dist_operator
    assert template.face_value == Decimal("19.99")
    assert "ready for distribution" in page(response)
    assert AuditLog.objects.filter(action="template.create", actor=dist_operator,
                                   object_id=str(template.pk)).count() == 1


def test_create_page_makes_each_kind_with_chosen_products(client, dist_admin):
    ecs = f.make_product("ecs")
    client_as(client, dist_admin)
    today = timezone.localdate()
    client.post(create_url(), template_form_data(
        name="Discount page", kind="discount", upper_limit="30.00", discount_rate="12.5",
        discount_uses="3", validity_type="fixed", valid_from=today.isoformat(),
        valid_until=(today + timedelta(days=5)).isoformat(), valid_days=None,
        all_products=None, products=[str(ecs.pk)], release_cap_count="100",
    ))
    client.post(create_url(), template_form_data(
        name="Threshold page", kind="threshold", face_value="20.00", min_bill_amount="200.00",
    ))
    discount = CouponTemplate.objects.get(name="Discount page")
    assert discount.discount_rate == Decimal("12.50") and discount.discount_uses == 3
    assert list(discount.products.all()) == [ecs]
    assert discount.valid_until == today + timedelta(days=5)
    assert discount.release_cap_count == 100
    threshold = CouponTemplate.objects.get(name="Threshold page")
    assert threshold.min_bill_amount == Decimal("200.00")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"face_value": "0"}, "greater than 0"),
        ({"face_value": "-1.00"}, "greater than 0"),
        ({"face_value": "1000000.01"}, "at most 1,000,000.00"),
        ({"face_value": "10.005"}, "at most 2 decimal places"),
        ({"face_value": "NaN"}, "Enter a number"),
        ({"face_value": "Infinity"}, "Enter a number"),
        ({"face_value": "1e20"}, "at most"),
        ({"face_value": "abc"}, "Enter a number"),
        ({"face_value": ""}, "Enter the face value"),
        ({"kind": "discount", "discount_rate": "0", "discount_uses": "1"}, "between 1 and 99"),
        ({"kind": "discount", "discount_rate": "100", "discount_uses": "1"}, "between 1 and 99"),
        ({"kind": "discount", "discount_rate": "10", "discount_uses": "0"}, "1 to 1,000 times"),
        ({"kind": "discount", "discount_rate": "10.005", "discount_uses": "1"},
         "at most 2 decimal places"),
        ({"kind": "threshold", "min_bill_amount": ""}, "minimum bill amount"),
        ({"valid_days": "0"}, "from 1 to 1,095"),
        ({"valid_days": "1096"}, "from 1 to 1,095"),
        ({"valid_days": "1.5"}, "whole number"),
        ({"valid_days": ""}, "from 1 to 1,095"),
        ({"validity_type": "fixed", "valid_from": "2030-05-02", "valid_until": "2030-05-01"},
         "Valid until can not be before valid from"),
        ({"validity_type": "fixed", "valid_from": "2030-02-30", "valid_until": "2030-03-01"},
         "There is no such day as 2030-02-30"),
        ({"all_products": None}, "Choose the products"),
        ({"all_products": None, "products": ["999999"]}, "Select a valid choice"),
        ({"release_cap_count": "0"}, "at least 1 coupon"),
        ({"release_cap_amount": "0.001"}, "at most 2 decimal places"),
        ({"currency": "XYZ"}, "Select a valid choice"),
        ({"name": ""}, "This field is required"),
        ({"name": "x" * 121}, "at most 120 characters"),
    ],
    ids=lambda v: v if isinstance(v, str) else "+".join(f"{k}={str(x)[:12]}" for k, x in v.items()),
)
def test_create_page_refuses_bad_input_with_a_message_and_writes_nothing(client, dist_admin,
                                                                        overrides, message):
    client_as(client, dist_admin)
    with nothing_written():
        response = client.post(create_url(), template_form_data(**overrides))
    assert response.status_code == 200
    assert message in page(response)


def test_create_page_offers_only_partner_borne_to_a_tier2_reseller(client, distributor):
    reseller, _account = f.make_tier2(distributor, budget="5000.00")
    client_as(client, f.make_member(reseller, "admin"))
    form = page(client.get(create_url()))
    assert 'value="partner"' in form and 'value="platform"' not in form
    with nothing_written():
        response = client.post(create_url(), template_form_data(cost_bearer="platform"))
    assert response.status_code == 200
    assert "Select a valid choice" in page(response)


def test_create_page_refuses_platform_borne_in_a_currency_without_budget(client, dist_admin):
    client_as(client, dist_admin)
    with nothing_written():
        response = client.post(create_url(),
                               template_form_data(cost_bearer="platform", currency="EUR"))
    assert response.status_code == 200
    assert "no platform-borne budget in EUR" in page(response)


def test_create_page_makes_platform_borne_for_tier1_with_budget(client, dist_admin):
    client_as(client, dist_admin)
    client.post(create_url(), template_form_data(name="Platform page", cost_bearer="platform"))
    assert CouponTemplate.objects.get(name="Platform page").is_platform_borne


def test_html_in_template_name_is_escaped_on_every_page(client, distributor, dist_admin,
                                                        customers):
    client_as(client, dist_admin)
    client.post(create_url(), template_form_data(name=HTML_NAME, description=HTML_NAME))
    template = CouponTemplate.objects.get(name=HTML_NAME)
    request_obj = f.submit(template, dist_admin, customers[:1])
    for url in (list_url(), detail_url(template), issue_url(template),
                reverse("approvals:list"), request_url(request_obj)):
        html = page(client.get(url))
        assert HTML_ESCAPED in html, url
        assert "<script>alert" not in html, url
        assert "<b>bold</b>" not in html, url


def test_template_detail_shows_terms_and_freezes_after_a_request(client, dist_admin, template,
                                                                customers):
    client_as(client, dist_admin)
    before = page(client.get(detail_url(template)))
    assert "50.00 USD" in before and "30 days from release" in before
    assert "can no longer change" not in before
    f.submit(template, dist_admin, customers[:1])
    assert "can no longer change" in page(client.get(detail_url(template)))


def test_disable_page_disables_and_audits(client, dist_admin, template):
    # Disabling is the partner admin's act (docs/ROLES.md).
    client_as(client, dist_admin)
    response = client.post(disable_url(template), follow=True)
    assert response.status_code == 200
    assert "is disabled" in page(response)
    template.refresh_from_db()
    assert template.status == CouponTemplate.Status.DISABLED
    assert AuditLog.objects.filter(action="template.disable", actor=dist_admin).count() == 1


def test_disable_page_twice_shows_a_message_and_writes_nothing(client, dist_admin, template):
    client_as(client, dist_admin)
    client.post(disable_url(template))
    with nothing_written():
        response = client.post(disable_url(template), follow=True)
    assert "already disabled" in page(response)


def test_disable_answers_405_to_get_and_changes_nothing(client, dist_admin, template):
    client_as(client, dist_admin)
    with nothing_written():
        assert client.get(disable_url(template)).status_code == 405


def test_post_without_csrf_token_is_refused(dist_admin, template):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(dist_admin)
    with nothing_written():
        assert strict.post(disable_url(template)).status_code == 403
        assert strict.post(create_url(), template_form_data()).status_code == 403


# ---------------------------------------------------------------------------------------
# Issue Coupon


def selection(client, template) -> list[str]:
    return list(client.session.get(f"issue_selection:{template.pk}", []))


def issue(client, template, action, **data):
    return client.post(issue_url(template), {"action": action, **data}, follow=True)


def test_issue_page_searches_by_name_and_account_id_and_filters_by_type(
    client, dist_admin, template, distributor, tier2_account,
):
    f.make_accounts(distributor, 3, prefix="ZEB-", name="Zebra")
    f.make_accounts(distributor, 3, prefix="YAK-", name="Yak")
    client_as(client, dist_admin)
    by_name = page(client.get(issue_url(template), {"q": "zebra"}))
    assert "ZEB-000000" in by_name and "YAK-000000" not in by_name
    by_id = page(client.get(issue_url(template), {"q": "YAK-000001"}))
    assert "YAK-000001" in by_id and "YAK-000002" not in by_id and "ZEB-" not in by_id
    by_type = page(client.get(issue_url(template), {"type": "tier2_reseller"}))
    assert tier2_account.account_id in by_type and "ZEB-" not in by_type


def test_issue_page_pages_through_thousands(client, dist_admin, template, distributor):
    f.make_accounts(distributor, 1200, prefix="MANY-", name="Many")
    client_as(client, dist_admin)
    last = page(client.get(issue_url(template), {"sort": "account_id", "page": 48}))
    assert "MANY-001199" in last and "MANY-000000" not in last
    first = page(client.get(issue_url(template), {"sort": "account_id"}))
    assert "MANY-000000" in first and "MANY-001199" not in first


def test_issue_page_lists_only_own_sub_accounts(client, dist_admin, template, customers,
                                                other_partner, distributor):
    foreign = f.make_accounts(other_partner, 1, prefix="FOREIGN-")[0]
    reseller, _acc = f.make_tier2(distributor)
    resellers_customer = f.make_accounts(reseller, 1, prefix="T2CUST-")[0]
    client_as(client, dist_admin)
    html = page(client.get(issue_url(template), {"per_page": 100}))
    assert customers[0].account_id in html
    assert foreign.account_id not in html
    assert resellers_customer.account_id not in html


def test_issue_page_marks_tier2_accounts_not_selectable_for_platform_borne(
    client, dist_admin, platform_template, tier2_account,
):
    client_as(client, dist_admin)
    html = page(client.get(issue_url(platform_template), {"type": "tier2_reseller"}))
    assert tier2_account.account_id in html
    assert "Not selectable" in html
    assert f'name="pick" value="{tier2_account.account_id}"' not in html


def test_issue_page_marks_accounts_holding_a_limited_template(client, dist_admin, template,
                                                              customers):
    f.submit(template, dist_admin, customers[:1])
    client_as(client, dist_admin)
    html = page(client.get(issue_url(template), {"q": customers[0].account_id}))
    assert "Already holds this coupon" in html
    assert f'name="pick" value="{customers[0].account_id}"' not in html


def test_add_remove_and_clear_move_accounts_through_the_session(client, dist_admin, template,
                                                                customers):
    client_as(client, dist_admin)
    with nothing_written():
        response = issue(client, template, "add",
                         pick=[customers[0].account_id, customers[1].account_id])
        assert "Added 2 accounts" in page(response)
        assert selection(client, template) == [customers[0].account_id,
                                               customers[1].account_id]
        summary = page(response)
        assert summary_value(summary, "Total") == "50.00 × 2 = 100.00 USD"
        assert summary_value(summary, "Accounts") == "2"
        assert summary_value(summary, "Cost bearer") == "Partner-borne"
        assert summary_value(summary, "BD approval").startswith("Needed")
        issue(client, template, "remove", account_id=customers[0].account_id)
        assert selection(client, template) == [customers[1].account_id]
        response = issue(client, template, "clear")
        assert selection(client, template) == []
        assert "Selected Accounts is empty again" in page(response)


def test_add_without_ticks_says_so(client, dist_admin, template):
    client_as(client, dist_admin)
    response = issue(client, template, "add")
    assert response.status_code == 200
    assert "Tick the accounts to add first" in page(response)


def test_unknown_action_says_so_and_writes_nothing(client, dist_admin, template):
    client_as(client, dist_admin)
    with nothing_written():
        response = issue(client, template, "explode")
    assert response.status_code == 200 and "Unknown action." in page(response)


def test_paste_names_each_unknown_foreign_duplicate_and_tier2_id(
    client, dist_admin, platform_template, customers, other_partner, tier2_account,
):
    foreign = f.make_accounts(other_partner, 1, prefix="FOREIGN-")[0]
    good = customers[0].account_id
    pasted = f"{good}, NOPE-1\n{foreign.account_id} {tier2_account.account_id};{good}"
    client_as(client, dist_admin)
    with nothing_written():
        response = issue(client, platform_template, "paste", account_ids=pasted)
    html = page(response)
    assert response.status_code == 200
    assert selection(client, platform_template) == [good]
    assert "Added 1 account " in html
    assert f"listed twice: {good}." in html
    assert "not among your sub-accounts" in html
    assert "NOPE-1" in html and foreign.account_id in html
    assert f"platform-borne coupons can not be issued to them): {tier2_account.account_id}" in html


def test_paste_names_accounts_already_holding_a_limited_template(client, dist_admin, template,
                                                                 customers):
    f.submit(template, dist_admin, customers[:1])
    client_as(client, dist_admin)
    response = issue(client, template, "paste", account_ids=customers[0].account_id)
    assert f"Limited to 1): {customers[0].account_id}" in page(response)
    assert selection(client, template) == []


def test_paste_of_nothing_gives_a_message(client, dist_admin, template):
    client_as(client, dist_admin)
    for blank in ("", " ,, \n "):
        response = issue(client, template, "paste", account_ids=blank)
        assert response.status_code == 200
        text = page(response)
        assert "This field is required." in text or "Paste at least one account ID." in text


def test_paste_of_more_than_the_maximum_adds_nothing(client, dist_admin, template, customers,
                                                     settings):
    limit = settings.ISSUE_MAX_ACCOUNTS
    pasted = "\n".join([customers[0].account_id] + [f"X-{i:06d}" for i in range(limit)])
    client_as(client, dist_admin)
    response = issue(client, template, "paste", account_ids=pasted)
    assert f"at most {limit:,} accounts; nothing was added" in page(response)
    assert selection(client, template) == []


def test_paste_of_the_maximum_with_duplicates_and_foreign_ids_names_them(
    client, dist_admin, template, customers, other_partner, settings,
):
    limit = settings.ISSUE_MAX_ACCOUNTS
    foreign = f.make_accounts(other_partner, 3, prefix="FOREIGN-")
    own = [a.account_id for a in customers]
    ids = own + own[:2] + [a.account_id for a in foreign]
    ids += [f"GHOST-{i:06d}" for i in range(limit - len(ids))]
    assert len(ids) == limit
    client_as(client, dist_admin)
    with nothing_written():
        response = issue(client, template, "paste", account_ids="\n".join(ids))
    html = page(response)
    assert selection(client, template) == own
    assert f"listed twice: {own[0]}, {own[1]}." in html
    assert foreign[0].account_id in html
    assert "more." in html  # thousands of unknown ids are summarised, not all listed


def test_confirm_creates_one_pending_request_and_shows_it(client, dist_admin, template,
                                                         customers):
    client_as(client, dist_admin)
    issue(client, template, "paste", account_ids=" ".join(a.account_id for a in customers[:3]))
    response = issue(client, template, "confirm")
    request_obj = IssuanceRequest.objects.get()
    assert response.redirect_chain[-1][0] == request_url(request_obj)
    html = page(response)
    assert f"Request {request_obj.number} for 3 account" in html
    assert "waits for your BD&#x27;s approval" in html
    assert "Pending approval" in html
    assert request_obj.recipient_count == 3 and request_obj.total_amount == Decimal("150.00")
    assert request_obj.submitted_by == dist_admin
    assert selection(client, template) == []
    assert "Pending approval" in page(client.get(reverse("approvals:list")))


def test_confirm_with_nothing_selected_gives_a_message_and_writes_nothing(client, dist_admin,
                                                                         template):
    client_as(client, dist_admin)
    with nothing_written():
        response = issue(client, template, "confirm")
    assert response.status_code == 200
    assert "Select at least one account." in page(response)


def test_confirm_over_budget_shows_remaining_and_writes_nothing(client, distributor,
                                                                dist_admin, platform_template,
                                                                customers):
    client_as(client, dist_admin)
    issue(client, platform_template, "paste",
          account_ids=" ".join(a.account_id for a in customers[:3]))
    assert len(selection(client, platform_template)) == 3
    PlatformBudget.objects.filter(partner=distributor).update(amount=Decimal("250.00"))
    preview = page(client.get(issue_url(platform_template)))
    assert "remaining platform-borne budget of 250.00 USD" in preview
    with nothing_written():
        response = issue(client, platform_template, "confirm")
    assert response.status_code == 200
    assert "remaining platform-borne budget of 250.00 USD" in page(response)
    assert len(selection(client, platform_template)) == 3


def test_confirm_after_the_template_was_disabled_is_refused(client, dist_admin, template,
                                                           customers):
    client_as(client, dist_admin)
    issue(client, template, "paste", account_ids=customers[0].account_id)
    coupon_template_disable(template=template, acting_user=dist_admin)
    with nothing_written():
        response = issue(client, template, "confirm")
    assert "This template is disabled" in page(response)


def test_confirm_for_an_expired_window_is_refused(client, distributor, dist_admin, customers):
    expired = f.ended(f.make_template(distributor, dist_admin, **f.fixed_window(-20, 20)),
                      days=10)
    client_as(client, dist_admin)
    html = page(client.get(issue_url(expired)))
    assert "validity ended on" in html
    issue(client, expired, "paste", account_ids=customers[0].account_id)
    with nothing_written():
        response = issue(client, expired, "confirm")
    assert "validity ended on" in page(response)


def test_confirm_when_another_request_took_the_account_meanwhile(client, dist_admin, template,
                                                                customers):
    client_as(client, dist_admin)
    issue(client, template, "paste", account_ids=customers[0].account_id)
    f.submit(template, dist_admin, customers[:1])
    with nothing_written():
        response = issue(client, template, "confirm")
    assert f"already hold it or wait for it: {customers[0].account_id}" in page(response)
    assert IssuanceRecipient.objects.filter(sub_account=customers[0]).count() == 1


def test_issue_page_preview_says_no_bd_approval_when_not_required(client):
    partner = f.make_partner(requires_bd_approval=False)
    user = f.make_member(partner, "admin")
    accounts = f.make_accounts(partner, 1)
    template = f.make_template(partner, user)
    client_as(client, user)
    issue(client, template, "paste", account_ids=accounts[0].account_id)
    bd_approval = summary_value(page(client.get(issue_url(template))), "BD approval")
    assert bd_approval.startswith("Not needed")


def test_html_in_account_names_and_pasted_ids_is_escaped(client, distributor, dist_admin,
                                                         template):
    account = SubAccount.objects.create(partner=distributor, account_id="HTML-1",
                                        name=HTML_NAME)
    client_as(client, dist_admin)
    html = page(client.get(issue_url(template), {"q": "HTML-1"}))
    assert HTML_ESCAPED in html and "<script>alert" not in html
    response = issue(client, template, "paste",
                     account_ids="HTML-1 <img/src=x/onerror=alert(1)>")
    html = page(response)
    assert "<img/src=x" not in html
    assert "&lt;img/src=x/onerror=alert(1)&gt;" in html
    request_obj = f.submit(template, dist_admin, [account])
    detail = page(client.get(request_url(request_obj)))
    assert HTML_ESCAPED in detail and "<script>alert" not in detail


# ---------------------------------------------------------------------------------------
# Query counts do not grow with the rows


def count_queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_template_list_query_count_does_not_grow_with_rows(client, distributor, dist_admin):
    for i in range(5):
        f.make_template(distributor, dist_admin, name=f"Few {i}")
    client_as(client, dist_admin)
    client.get(list_url())  # warm up the session and caches
    params = {"per_page": 100}
    few = count_queries(client, list_url(), params)
    for i in range(55):
        kind = ["cash", "threshold", "discount"][i % 3]
        f.make_template(distributor, dist_admin, name=f"Many {i}", kind=kind,
                        min_bill_amount=Decimal("10.00"), discount_rate=Decimal("5"),
                        discount_uses=2, **(f.fixed_window(0, 9) if i % 2 else {}))
    response = client.get(list_url(), params)
    assert page(response).count("Many ") >= 55  # every row is on the page being measured
    many = count_queries(client, list_url(), params)
    assert many <= few, f"{few} queries for 5 templates, {many} for 60"
    assert few <= 12


def test_issue_page_account_search_query_count_does_not_grow_with_rows(
    client, distributor, dist_admin, template, customers,
):
    # Some of the accounts hold the limited template, some are selected, one is tier-2.
    f.submit(template, dist_admin, customers[:2])
    f.make_tier2(distributor)
    client_as(client, dist_admin)
    issue(client, template, "paste", account_ids=customers[2].account_id)
    params = {"q": "Customer", "per_page": 100}
    client.get(issue_url(template), params)
    few = count_queries(client, issue_url(template), params)
    more = f.make_accounts(distributor, 55, name="Customer")
    f.submit(template, dist_admin, more[:10])
    issue(client, template, "paste", account_ids=" ".join(a.account_id for a in more[10:40]))
    response = client.get(issue_url(template), params)
    assert page(response).count('name="pick"') >= 15  # the rows are on the measured page
    many = count_queries(client, issue_url(template), params)
    assert many <= few, f"{few} queries for 5 accounts, {many} for 60"
    assert few <= ISSUE_PAGE_QUERIES


# The Issue Coupon page's queries with accounts in Selected Accounts: session, user, the
# membership (with its partner and BD), the template, the search's count and rows, the
# first selected accounts' names, the selection check's accounts and holders, and the
# closed months inside the template's validity (which bills its coupons can pay). A
# platform-borne template adds its budget (the summary's and the check's).
ISSUE_PAGE_QUERIES = 10


def issue_page_queries(client, template, params) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(issue_url(template), params)
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def test_issue_page_runs_a_fixed_number_of_queries_whatever_the_selection_and_page(
    client, distributor, dist_admin, template, settings,
):
    accounts = f.make_accounts(distributor, 130, prefix="QC-", name="Query count")
    f.submit(template, dist_admin, accounts[:3])
    f.make_tier2(distributor)
    client_as(client, dist_admin)
    views = [
        {}, {"page": 2}, {"page": 6}, {"page": 999}, {"sort": "-account_id", "page": 3},
        {"q": "Query count", "type": "customer", "page": 2}, {"q": "no such account"},
        {"per_page": 100, "sort": "type"},
    ]
    empty = [len(issue_page_queries(client, template, params)) for params in views]
    assert max(empty) <= ISSUE_PAGE_QUERIES - 3  # no names and no check to read
    counts = {}
    for size in (1, SELECTED_SHOWN, SELECTED_SHOWN + 60):
        ids = " ".join(a.account_id for a in accounts[3:3 + size])
        issue(client, template, "clear")
        issue(client, template, "paste", account_ids=ids)
        assert len(selection(client, template)) == size
        for i, params in enumerate(views):
            sqls = issue_page_queries(client, template, params)
            # A search without matches has no rows to read: one query fewer.
            assert len(sqls) <= ISSUE_PAGE_QUERIES, (size, params, sqls)
            assert counts.setdefault(i, len(sqls)) == len(sqls), (size, params, sqls)
            assert i == views.index({"q": "no such account"}) or len(sqls) == (
                ISSUE_PAGE_QUERIES
            )
            # Neither the template's products (not shown) nor its partner (the
            # membership's) are read for the page.
            assert not any("coupontemplate_products" in sql for sql in sqls)
            assert sum('FROM "accounts_partner"' in sql for sql in sqls) == 0
            assert sum('JOIN "accounts_partner"' in sql for sql in sqls) == 1


def test_issue_page_for_a_platform_borne_template_adds_only_its_budget(
    client, dist_admin, platform_template, customers,
):
    client_as(client, dist_admin)
    issue(client, platform_template, "paste", account_ids=customers[0].account_id)
    sqls = issue_page_queries(client, platform_template, {"q": "C-"})
    budget = [sql for sql in sqls if "accounts_platformbudget" in sql]
    assert len(sqls) == ISSUE_PAGE_QUERIES + len(budget) and len(budget) <= 2, sqls


def test_issue_page_shows_the_first_selected_accounts_in_the_order_they_were_added(
    client, distributor, dist_admin, template,
):
    accounts = f.make_accounts(distributor, SELECTED_SHOWN + 5, prefix="ORD-")
    added = list(reversed(accounts))
    client_as(client, dist_admin)
    issue(client, template, "paste", account_ids=" ".join(a.account_id for a in added))
    html = page(client.get(issue_url(template)))
    listed = re.findall(r'name="account_id" value="([^"]+)"', html)
    assert listed == [a.account_id for a in added[:SELECTED_SHOWN]]
    assert "… and 5 more" in html
    assert summary_value(html, "Accounts") == str(SELECTED_SHOWN + 5)


def test_approval_list_query_count_does_not_grow_with_rows(client, distributor, dist_admin,
                                                           template, customers):
    f.submit(template, dist_admin, customers[:1])
    client_as(client, dist_admin)
    client.get(reverse("approvals:list"))
    few = count_queries(client, reverse("approvals:list"), {"per_page": 100})
    accounts = f.make_accounts(distributor, 30)
    for account in accounts:
        f.submit(template, dist_admin, [account])
    many = count_queries(client, reverse("approvals:list"), {"per_page": 100})
    assert many <= few, f"{few} queries for 1 request, {many} for 31"


def test_template_page_shows_the_cap_left_as_the_submit_counts_it(
    client, distributor, dist_admin, customers,
):
    """Pending requests hold their places under the release caps: the page says what a new
    request may still take, the same figure the submit refuses beyond."""
    template = f.make_template(distributor, dist_admin, issue_limit="unlimited",
                               release_cap_count=5, release_cap_amount=Decimal("1000.00"))
    f.submit(template, dist_admin, customers[:2])
    client_as(client, dist_admin)
    text = re.sub(r"\s+", " ", page(client.get(detail_url(template))))
    face = template.face_value
    assert "3 of the 5-coupon cap left for new requests" in text
    assert f"{1000 - 2 * face:,.2f} USD of the amount cap left for new requests" in text
    assert "0 coupons, 0.00 USD" in text
