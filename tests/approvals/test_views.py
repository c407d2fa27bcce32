"""The partner's Approval Status pages: the list with its filters, a request's detail,
cancel with a confirmation, retry and withdraw, and the release progress (PRODUCT §5, §10)."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.services import partner_coupon_settings_update, platform_budget_set
from coupons.models import Coupon, IssuanceRequest
from tests import factories as f
from tests.approvals import helpers as h

Status = IssuanceRequest.Status
pytestmark = pytest.mark.django_db

LIST = reverse("approvals:list")


def url(name, request_or_pk):
    pk = getattr(request_or_pk, "pk", request_or_pk)
    return reverse(f"approvals:{name}", args=[pk])


def listed(response) -> list[int]:
    assert response.status_code == 200
    return [row.record.pk for row in response.context["table"].paginated_rows]


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def status_of(request) -> str:
    return IssuanceRequest.objects.get(pk=request.pk).status


@pytest.fixture
def admin_client(client, dist_admin):
    client.force_login(dist_admin)
    return client


@pytest.fixture
def spread(distributor, dist_admin, customers, platform_template, partner_template, bd):
    """Requests of two templates in several statuses, submitted on different days."""
    now = timezone.now()
    pending = f.submitted(platform_template, dist_admin, customers[:2])
    issued = f.approve(f.submitted(partner_template, dist_admin, customers[:2]), bd)
    rejected = f.reject(f.submitted(platform_template, dist_admin, customers[2:4]), bd)
    IssuanceRequest.objects.filter(pk=issued.pk).update(submitted_at=now - timedelta(days=10))
    IssuanceRequest.objects.filter(pk=rejected.pk).update(submitted_at=now - timedelta(days=40))
    return {"pending": pending, "issued": issued, "rejected": rejected}


# ---------------------------------------------------------------------------------------
# The list and its filters


def test_list_shows_the_partners_requests_newest_first_and_no_other_partners(
    admin_client, spread, other_partner, other_admin,
):
    foreign_template = f.make_template(other_partner, other_admin)
    f.submitted(foreign_template, other_admin, f.make_accounts(other_partner, 1))
    assert listed(admin_client.get(LIST)) == [
        spread["pending"].pk, spread["issued"].pk, spread["rejected"].pk,
    ]


def test_list_filters_by_template_id_and_template_name(
    admin_client, spread, platform_template, partner_template,
):
    assert listed(admin_client.get(LIST, {"template": platform_template.pk})) == [
        spread["pending"].pk, spread["rejected"].pk,
    ]
    assert listed(admin_client.get(LIST, {"template_name": "partner CA"})) == [
        spread["issued"].pk,
    ]
    assert listed(admin_client.get(LIST, {"template_name": "no such template"})) == []


@pytest.mark.parametrize("status", ["pending", "issued", "rejected"])
def test_list_filters_by_status(admin_client, spread, status):
    assert listed(admin_client.get(LIST, {"status": status})) == [spread[status].pk]


def test_list_filters_by_submission_dates(admin_client, spread):
    today = timezone.localdate()
    since = (today - timedelta(days=15)).isoformat()
    until = (today - timedelta(days=5)).isoformat()
    assert listed(admin_client.get(LIST, {"submitted_from": since})) == [
        spread["pending"].pk, spread["issued"].pk,
    ]
    assert listed(admin_client.get(LIST, {"submitted_to": until})) == [
        spread["issued"].pk, spread["rejected"].pk,
    ]
    assert listed(admin_client.get(LIST, {"submitted_from": since, "submitted_to": until})) == [
        spread["issued"].pk,
    ]


def test_list_with_bad_filter_values_answers_without_error(admin_client, spread):
    for params in ({"template": "abc"}, {"status": "bogus"}, {"submitted_from": "2024-13-45"},
                   {"template_name": "<script>alert(1)</script>"}):
        response = admin_client.get(LIST, params)
        assert response.status_code == 200, params
        assert "<script>alert(1)</script>" not in response.content.decode()


def test_list_query_count_does_not_grow_with_its_rows(admin_client, partner_template,
                                                      dist_admin, customers):
    f.submitted(partner_template, dist_admin, customers[:1])

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(LIST).status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    for account in customers[1:]:
        f.submitted(partner_template, dist_admin, [account])
    assert queries() == few


def test_viewer_sees_the_list_and_the_detail(client, dist_viewer, spread):
    client.force_login(dist_viewer)
    assert len(listed(client.get(LIST))) == 3
    response = client.get(url("detail", spread["pending"]))
    assert response.status_code == 200
    assert response.context["can_write"] is False
    assert url("cancel", spread["pending"]) not in response.content.decode()


# ---------------------------------------------------------------------------------------
# Detail


def test_detail_shows_accounts_totals_route_approver_times_and_reason(
    admin_client, spread, customers, bd,
):
    response = admin_client.get(url("detail", spread["rejected"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["req"].pk == spread["rejected"].pk
    assert [r.sub_account.account_id for r in response.context["recipients"]] == [
        customers[2].account_id, customers[3].account_id,
    ]
    for text in ("50.00 × 2 = 100.00 USD", "Platform-borne", "BD approval", bd.username,
                 "Not this quarter.", "Rejected", customers[2].account_id):
        assert text in html, text


def test_detail_of_an_auto_approved_request_names_the_system_as_approver(
    admin_client, distributor, partner_template, dist_admin, customers, bd,
):
    partner_coupon_settings_update(partner=distributor, acting_user=bd, coupon_enabled=True,
                                   requires_bd_approval=False)
    request = f.submitted(partner_template, dist_admin, customers[:1])
    html = admin_client.get(url("detail", request)).content.decode()
    assert "Auto-approved by <strong>the system</strong>" in html
    assert "Issued" in html


def test_detail_of_a_failed_request_shows_why_and_offers_retry_and_withdraw(
    admin_client, partner_template, dist_admin, customers, bd,
):
    request = f.approve_and_fail(f.submitted(partner_template, dist_admin, customers[:1]), bd,
                                 dist_admin)
    html = admin_client.get(url("detail", request)).content.decode()
    assert "Approved but failed to issue" in html
    assert request.reason in html
    assert url("retry", request) in html and url("withdraw", request) in html
    assert url("cancel", request) not in html


# ---------------------------------------------------------------------------------------
# Cancel, retry, withdraw


def test_cancel_asks_for_confirmation_on_get_and_cancels_on_post(
    admin_client, distributor, spread,
):
    pending = spread["pending"]
    with f.nothing_written():
        page = admin_client.get(url("cancel", pending))
    assert page.status_code == 200
    assert "Yes, cancel the request" in page.content.decode()
    assert status_of(pending) == Status.PENDING

    with f.committed():
        response = admin_client.post(url("cancel", pending))
    assert response.status_code == 302 and response.url == url("detail", pending)
    assert messages_of(response) == [f"Request {pending.number} was cancelled."]
    assert status_of(pending) == Status.CANCELLED
    assert h.budget_of(distributor).reserved == Decimal("0.00")


def test_operator_can_cancel(client, dist_operator, spread):
    client.force_login(dist_operator)
    with f.committed():
        client.post(url("cancel", spread["pending"]))
    assert status_of(spread["pending"]) == Status.CANCELLED


def test_cancel_of_a_decided_request_says_why_and_writes_nothing(admin_client, spread):
    for key in ("issued", "rejected"):
        with f.nothing_written(), f.committed():
            response = admin_client.post(url("cancel", spread[key]))
        assert response.status_code == 302
        assert messages_of(response)[-1] == (
            f"Request {spread[key].number} is {key}; it can not be cancelled."
        )


def test_retry_of_a_failed_request_after_the_cause_is_fixed_issues_it(
    admin_client, distributor, platform_template, dist_admin, customers, bd,
):
    request = f.submitted(platform_template, dist_admin, customers[:2])
    platform_budget_set(partner=distributor, acting_user=bd, currency="USD",
                        amount=Decimal("10.00"))
    request = f.approve(request, bd)
    assert request.status == Status.FAILED
    assert admin_client.get(url("retry", request)).status_code == 200
    platform_budget_set(partner=distributor, acting_user=bd, currency="USD",
                        amount=Decimal("1000.00"))
    with f.committed():
        response = admin_client.post(url("retry", request))
    assert response.status_code == 302
    assert messages_of(response) == [f"Request {request.number} was sent to issuing again."]
    assert status_of(request) == Status.ISSUED
    assert Coupon.objects.filter(request=request).count() == 2


def test_withdraw_of_a_failed_request_frees_it(
    admin_client, distributor, platform_template, dist_admin, customers, bd,
):
    request = f.approve_and_fail(f.submitted(platform_template, dist_admin, customers[:2]), bd,
                                 dist_admin)
    page = admin_client.get(url("withdraw", request))
    assert page.status_code == 200 and "Yes, withdraw" in page.content.decode()
    with f.committed():
        response = admin_client.post(url("withdraw", request))
    assert messages_of(response) == [f"Request {request.number} was withdrawn."]
    assert status_of(request) == Status.WITHDRAWN
    assert h.budget_of(distributor).reserved == Decimal("0.00")


def test_retry_or_withdraw_of_a_pending_request_says_why_and_writes_nothing(
    admin_client, spread,
):
    pending = spread["pending"]
    for action, verb in (("retry", "retried"), ("withdraw", "withdrawn")):
        with f.nothing_written(), f.committed():
            response = admin_client.post(url(action, pending))
        assert messages_of(response)[-1] == (
            f"Request {pending.number} is pending approval; it can not be {verb}."
        )


@pytest.mark.parametrize("action", ["cancel", "retry", "withdraw"])
def test_viewer_gets_403_on_cancel_retry_and_withdraw_posts(
    action, client, dist_viewer, platform_template, dist_admin, customers, bd,
):
    status = Status.PENDING if action == "cancel" else Status.FAILED
    request = f.request_in(status, template=platform_template, partner_user=dist_admin, bd=bd,
                           accounts=customers[:2])
    client.force_login(dist_viewer)
    with f.nothing_written(), f.committed():
        assert client.post(url(action, request)).status_code == 403


@pytest.mark.parametrize("name", ["detail", "progress", "cancel", "retry", "withdraw"])
def test_another_partners_request_and_a_forged_id_answer_404(
    name, client, other_admin, spread,
):
    client.force_login(other_admin)
    with f.nothing_written(), f.committed():
        for request_or_pk in (spread["pending"], 999999):
            assert client.get(url(name, request_or_pk)).status_code == 404
            if name not in ("detail", "progress"):
                assert client.post(url(name, request_or_pk)).status_code == 404
    assert status_of(spread["pending"]) == Status.PENDING


def test_non_partner_users_can_not_open_approval_status(client, spread, customers, bd):
    detail = url("detail", spread["pending"])
    response = client.get(LIST)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    client.force_login(f.make_subaccount_user(customers[0]))
    assert client.get(LIST).status_code == 403
    assert client.get(detail).status_code == 403
    client.force_login(bd)
    assert client.get(LIST).status_code == 403
    with f.nothing_written(), f.committed():
        assert client.post(url("cancel", spread["pending"])).status_code == 403


def test_partner_with_the_coupon_function_off_gets_403_on_approval_status(
    admin_client, distributor, spread, bd,
):
    partner_coupon_settings_update(partner=distributor, acting_user=bd, coupon_enabled=False,
                                   requires_bd_approval=True)
    response = admin_client.get(LIST)
    assert response.status_code == 403
    assert "Contact your BD to enable the Coupon Function" in response.content.decode()
    with f.nothing_written(), f.committed():
        assert admin_client.post(url("cancel", spread["pending"])).status_code == 403


# ---------------------------------------------------------------------------------------
# Release progress


def test_progress_endpoint_reports_an_issued_request_as_complete(admin_client, spread):
    response = admin_client.get(url("progress", spread["issued"]))
    assert response.status_code == 200
    assert response.json() == {"status": "issued", "status_display": "Issued",
                               "released": 2, "total": 2}


def test_progress_endpoint_reports_a_running_release_from_the_cache(
    admin_client, partner_template, dist_admin, customers, bd,
):
    request = f.request_in(Status.APPROVED, template=partner_template, partner_user=dist_admin,
                           bd=bd, accounts=customers)
    key = f"release-progress:{request.pk}"
    assert admin_client.get(url("progress", request)).json() == {
        "status": "approved", "status_display": "Approved", "released": 0, "total": 5,
    }
    cache.set(key, 3, 60)
    try:
        assert admin_client.get(url("progress", request)).json()["released"] == 3
        page = admin_client.get(url("detail", request))
        assert page.context["releasing"] is True and page.context["progress"] == 3
        assert url("progress", request) in page.content.decode()
    finally:
        cache.delete(key)


def test_progress_endpoint_of_a_pending_request_reports_nothing_released(admin_client, spread):
    assert admin_client.get(url("progress", spread["pending"])).json() == {
        "status": "pending", "status_display": "Pending approval", "released": 0, "total": 2,
    }
