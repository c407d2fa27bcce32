"""Issue Coupon's tick endpoint (coupons/issue_views.IssueSelectionView): a tick changes the
session's selection at once, so it survives paging and searching; the answer's summary is
the submit's own selection check; every rule is checked there and again on Confirm."""
from decimal import Decimal

import pytest
from django.urls import reverse

from coupons import rules
from coupons.models import IssuanceRequest
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(distributor, dist_admin):
    return f.make_template(distributor, dist_admin, name="Welcome cash", issue_limit="one",
                           face_value=Decimal("50.00"))


@pytest.fixture
def platform_template(distributor, dist_admin):
    return f.make_template(distributor, dist_admin, name="Platform cash",
                           cost_bearer="platform", face_value=Decimal("100.00"))


@pytest.fixture
def admin(client, dist_admin):
    client.force_login(dist_admin)
    return client


def tick(client, template, action, *ids):
    return client.post(reverse("coupons:issue_selection", args=[template.pk]),
                       {"action": action, "account_id": list(ids)})


def selection(client, template) -> list[str]:
    return list(client.session.get(f"issue_selection:{template.pk}", []))


def test_a_tick_is_kept_across_pages_and_searches(admin, template, distributor):
    accounts = f.make_accounts(distributor, 60, prefix="TK-")
    page = reverse("coupons:issue", args=[template.pk])
    assert tick(admin, template, "add", accounts[0].account_id).status_code == 200
    admin.get(page, {"page": 2})
    assert tick(admin, template, "add", accounts[40].account_id).status_code == 200
    admin.get(page, {"q": accounts[59].account_id})
    tick(admin, template, "add", accounts[59].account_id)
    assert selection(admin, template) == [a.account_id for a in (accounts[0], accounts[40],
                                                                  accounts[59])]
    # Every page shows the ticks: ticked and, for the script to enable, disabled.
    html = admin.get(page, {"sort": "account_id"}).content.decode()
    assert f'value="{accounts[0].account_id}" checked disabled' in html
    html = admin.get(page, {"sort": "account_id", "page": 2}).content.decode()
    assert f'value="{accounts[40].account_id}" checked disabled' in html
    tick(admin, template, "remove", accounts[40].account_id)
    assert selection(admin, template) == [accounts[0].account_id, accounts[59].account_id]


def test_the_answer_carries_the_summary_of_the_submits_own_check(
    admin, platform_template, distributor, customers, monkeypatch,
):
    calls = []
    real = rules.issuance_selection_check

    def spy(**kwargs):
        calls.append(kwargs["account_ids"])
        return real(**kwargs)

    monkeypatch.setattr(rules, "issuance_selection_check", spy)
    data = tick(admin, platform_template, "add", *[a.account_id for a in customers[:3]]).json()
    assert calls[-1] == [a.account_id for a in customers[:3]]  # the summary's check
    assert data["added"] == [a.account_id for a in customers[:3]]
    assert data["selected"] == data["added"]
    summary = data["summary"]
    assert summary["count"] == 3
    assert summary["total_text"] == "100.00 × 3 = 300.00 USD"
    assert summary["budget_text"] == "10,000.00 USD"
    assert summary["budget_after_text"] == "9,700.00 USD"
    assert summary["needs_bd_approval"] is True
    assert summary["can_confirm"] is True and summary["problems"] == []
    assert summary["confirm_text"] == "Confirm 3 accounts"
    assert [a["account_id"] for a in data["selected_shown"]] == data["added"]
    one = tick(admin, platform_template, "remove", customers[1].account_id,
               customers[2].account_id).json()
    assert one["summary"]["confirm_text"] == "Confirm 1 account"
    assert one["summary"]["selected_text"] == "1 selected"


def test_a_budget_too_small_shows_as_a_problem_and_confirm_stays_off(
    admin, platform_template, distributor, bd, customers,
):
    from accounts.services import platform_budget_set

    platform_budget_set(partner=distributor, currency="USD", amount=Decimal("150.00"),
                        acting_user=bd)
    data = tick(admin, platform_template, "add", customers[0].account_id,
                customers[1].account_id).json()
    assert data["summary"]["can_confirm"] is False
    assert any("remaining platform-borne budget of 150.00 USD" in p
               for p in data["summary"]["problems"])


def test_refused_accounts_are_named_and_not_added(
    admin, platform_template, distributor, other_partner, customers,
):
    tier2 = f.make_tier2(distributor)[1]
    foreign = f.make_accounts(other_partner, 1, prefix="FOREIGN-")[0]
    data = tick(admin, platform_template, "add", customers[0].account_id, tier2.account_id,
                foreign.account_id, "NO-SUCH").json()
    assert data["added"] == [customers[0].account_id]
    assert selection(admin, platform_template) == [customers[0].account_id]
    text = " ".join(data["refused"])
    assert f"not among your sub-accounts: {foreign.account_id}, NO-SUCH" in text
    assert f"tier-2 resellers (platform-borne coupons can not be issued to them): " \
           f"{tier2.account_id}" in text


def test_a_tick_changes_the_confirm_token_and_confirm_takes_the_new_one(
    admin, template, customers,
):
    first = tick(admin, template, "add", customers[0].account_id).json()["submission"]
    second = tick(admin, template, "add", customers[1].account_id).json()["submission"]
    assert first != second
    page = reverse("coupons:issue", args=[template.pk])
    stale = admin.post(page, {"action": "confirm", "submission": first}, follow=True)
    assert "Selected Accounts changed since that page was shown" in stale.content.decode()
    assert not IssuanceRequest.objects.exists()
    admin.post(page, {"action": "confirm", "submission": second})
    assert IssuanceRequest.objects.get().recipient_count == 2


def test_bad_requests_write_nothing(admin, template, customers):
    url = reverse("coupons:issue_selection", args=[template.pk])
    assert admin.get(url).status_code == 405
    assert admin.post(url, {"action": "add"}).status_code == 400
    assert admin.post(url, {"action": "clear", "account_id": "x"}).status_code == 400
    assert selection(admin, template) == []


def test_too_many_at_once_adds_nothing(admin, template, customers, settings):
    settings.ISSUE_MAX_ACCOUNTS = 2
    data = tick(admin, template, "add", *[a.account_id for a in customers[:3]]).json()
    assert data["added"] == [] and "at most 2" in data["refused"][0]
    assert selection(admin, template) == []


def test_only_writers_of_the_templates_partner_may_tick(
    client, template, dist_viewer, other_admin, customers,
):
    client.force_login(dist_viewer)
    assert tick(client, template, "add", customers[0].account_id).status_code == 403
    client.force_login(other_admin)
    assert tick(client, template, "add", customers[0].account_id).status_code == 404
    assert not client.session.get(f"issue_selection:{template.pk}")
