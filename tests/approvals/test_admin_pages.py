"""What the BD reads on the admin's request pages: times in the platform's time zone to the
minute, people by name, one heading, the actions in one label style (PRODUCT §5)."""
import re
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from couponplatform.times import moment_text
from tests import factories as f

pytestmark = pytest.mark.django_db

QUEUE = "admin:approvals_pendingrequest"
ALL = "admin:coupons_issuancerequest"


@pytest.fixture
def desk(db):
    bd = f.make_bd("bd-desk")
    bd.first_name, bd.last_name = "Bea", "Dalton"
    bd.save(update_fields=["first_name", "last_name"])
    partner = f.make_partner(name="Desk Distribution", bd=bd, budget="10000.00")
    admin = f.make_member(partner, "admin", username="desk-admin")
    accounts = f.make_accounts(partner, 6)
    template = f.make_template(partner, admin, cost_bearer="platform", issue_limit="unlimited")
    pending = f.submitted(template, admin, accounts[:2])
    approved = f.approve(f.submitted(template, admin, accounts[2:4]), bd)
    rejected = f.reject(f.submitted(template, admin, accounts[4:]), bd, reason="Not now.")
    return SimpleNamespace(bd=bd, partner=partner, admin=admin, pending=pending,
                           approved=approved, rejected=rejected)


def page(client, user, url) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_decisions_name_the_bd_and_the_minute_in_the_platform_time_zone(client, desk):
    html = page(client, desk.bd, reverse(f"{ALL}_change", args=[desk.approved.pk]))
    decided = desk.approved.decided_at
    assert f"Approved by Bea Dalton, {moment_text(decided)}" in html
    # The platform's minute, not UTC's, and no seconds, fractions or "+00:00".
    local = timezone.localtime(decided)
    assert f"{local:%Y-%m-%d %H:%M}" in html
    assert str(decided) not in html
    assert not re.search(r"\d{2}:\d{2}:\d{2}", html)

    html = page(client, desk.bd, reverse(f"{ALL}_change", args=[desk.rejected.pk]))
    assert "Rejected by Bea Dalton" in html and "Not now." in html


def test_the_request_page_has_one_heading_and_names_the_bd_it_waits_for(client, desk):
    html = page(client, desk.bd, reverse(f"{QUEUE}_change", args=[desk.pending.pk]))
    title = (f"Request {desk.pending.number} (#{desk.pending.pk}): "
             f"{desk.pending.template.name} × 2 — pending approval")
    assert f"<h1>{title}</h1>" in html
    # No second heading naming the request again (Django's subtitle).
    assert not re.search(r"<h2>\s*Request ", html)
    assert (f"Bea Dalton, BD of Desk Distribution, since "
            f"{moment_text(desk.pending.submitted_at)}") in html
    assert "bd-desk" not in html.split('id="content"', 1)[1]


def test_approve_and_reject_wear_one_label_style_above_and_below(client, desk):
    html = page(client, desk.bd, reverse(f"{QUEUE}_change", args=[desk.pending.pk]))
    decisions = re.findall(r'<(?:button|input|a)[^>]*class="decision ([\w-]+)"[^>]*>([^<]*)', html)
    inputs = re.findall(r'<input[^>]*class="decision ([\w-]+)"[^>]*value="(\w+)"', html)
    labels = [(css, text.strip()) for css, text in decisions if text.strip()] + inputs
    both = [("decision-approve", "Approve"), ("decision-reject", "Reject")]
    assert sorted(labels) == sorted(both * 2)
    assert "Reject…" not in html and "REJECT" not in html
    assert 'href="/static/css/admin.css"' in html


def test_the_queue_keeps_money_and_times_on_one_line_and_explains_budget_left(client, desk):
    html = page(client, desk.bd, reverse(f"{QUEUE}_changelist"))
    unit = f"{desk.pending.unit_value:,.2f}"
    assert f'<span class="nowrap">{unit} × 2 = ' in html
    assert f'<span class="nowrap">{moment_text(desk.pending.submitted_at)}</span>' in html
    assert ">Budget left<" in html and "this request already reserved" not in html
    assert 'id="queue-note"' in html
    assert "Reject selected requests<" in html and "asks for a reason" not in html
    # The list of every status has no budget column, nor its note.
    html = page(client, desk.bd, reverse(f"{ALL}_changelist"))
    assert ">Budget left<" not in html and 'id="queue-note"' not in html


def test_the_admin_has_no_navigation_sidebar(client, desk):
    html = page(client, desk.bd, reverse(f"{QUEUE}_changelist"))
    assert 'id="nav-sidebar"' not in html


def test_approval_status_names_the_bd_by_full_name(client, desk):
    html = page(client, desk.admin, reverse("approvals:list"))
    assert "Waiting for <strong>Bea Dalton</strong>" in html
    assert "Approved by <strong>Bea Dalton</strong>" in html
    assert "bd-desk" not in html
    html = page(client, desk.admin, reverse("approvals:detail", args=[desk.approved.pk]))
    assert "Bea Dalton" in html and "bd-desk" not in html
