"""The BD's Django admin: the pending queue and every request, scoped to the BD's partners,
approve and reject one by one and as actions, and the partner settings (PRODUCT §2, §5)."""
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.models import Partner, PlatformBudget
from approvals.admin import OwnPartnerFilter
from approvals.permissions import ensure_bd_group
from audit.models import AuditLog
from coupons.models import Coupon, IssuanceRequest
from tests import factories as f
from tests.approvals import helpers as h

Status = IssuanceRequest.Status
pytestmark = pytest.mark.django_db

QUEUE = "admin:approvals_pendingrequest"
ALL = "admin:coupons_issuancerequest"


@pytest.fixture
def demo(db):
    """Like seed_demo: `bd` looks after a distributor and a reseller, `bd2` after another
    partner; each partner has pending requests."""
    ensure_bd_group()
    bd, bd2 = f.make_bd("bd"), f.make_bd("bd2")
    for user in (bd, bd2):
        user.email = f"{user.username}@example.com"
        user.save(update_fields=["email"])
    root = f.make_user("root", is_staff=True, is_superuser=True)
    dist = f.make_partner(name="Northwind Distribution", bd=bd, budget="10000.00")
    reseller = f.make_partner(name="Bluebird Cloud", kind=Partner.Kind.RESELLER, bd=bd,
                              budget="5000.00")
    quiet = f.make_partner(name="Quiet Partners", kind=Partner.Kind.RESELLER, bd=bd2,
                           budget="1000.00")
    users = {}
    requests = {}
    for key, partner in (("dist", dist), ("reseller", reseller), ("quiet", quiet)):
        users[key] = f.make_member(partner, "admin", username=f"{key}-admin")
        accounts = f.make_accounts(partner, 6)
        template = f.make_template(partner, users[key], cost_bearer="platform",
                                   issue_limit="unlimited")
        requests[key] = [f.submitted(template, users[key], accounts[:3]) for _ in range(2)]
    return SimpleNamespace(bd=bd, bd2=bd2, root=root, dist=dist, reseller=reseller, quiet=quiet,
                           users=users, requests=requests)


def login(client, user):
    client.force_login(user)
    return client


def listed(response) -> set[int]:
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def ids(requests) -> set[int]:
    return {r.pk for r in requests}


def status_of(request) -> str:
    return IssuanceRequest.objects.get(pk=request.pk).status


# ---------------------------------------------------------------------------------------
# Who sees what


def test_bd_sees_only_their_partners_requests_in_the_queue_and_the_request_list(client, demo):
    login(client, demo.bd)
    mine = ids(demo.requests["dist"] + demo.requests["reseller"])
    assert listed(client.get(reverse(f"{QUEUE}_changelist"))) == mine
    f.reject(demo.requests["dist"][0], demo.bd)
    # The queue holds pending requests only; the request list holds every status.
    assert listed(client.get(reverse(f"{QUEUE}_changelist"))) == mine - ids(
        demo.requests["dist"][:1])
    assert listed(client.get(reverse(f"{ALL}_changelist"))) == mine


def test_queue_shows_totals_and_the_partners_remaining_budget(client, demo):
    login(client, demo.bd)
    response = client.get(reverse(f"{QUEUE}_changelist"))
    html = response.content.decode()
    assert response.context["totals"] == [
        {"currency": "USD", "requests": 4, "accounts": 12, "amount": Decimal("600.00")},
    ]
    assert "9,700.00 USD" in html  # Northwind: 10,000.00 less two reservations of 150.00
    assert "4,700.00 USD" in html  # Bluebird


def test_bd2_sees_none_of_bds_partners_requests(client, demo):
    login(client, demo.bd2)
    assert listed(client.get(reverse(f"{QUEUE}_changelist"))) == ids(demo.requests["quiet"])
    assert listed(client.get(reverse(f"{ALL}_changelist"))) == ids(demo.requests["quiet"])
    for request in demo.requests["dist"] + demo.requests["reseller"]:
        for base in (QUEUE, ALL):
            assert client.get(reverse(f"{base}_change", args=[request.pk])).status_code == 404
            assert client.get(reverse(f"{base}_reject", args=[request.pk])).status_code == 404


def test_bd2_can_not_approve_or_reject_a_foreign_request_by_url(client, demo):
    login(client, demo.bd2)
    target = demo.requests["dist"][0]
    with f.nothing_written(), f.committed():
        for base in (QUEUE, ALL):
            response = client.post(reverse(f"{base}_approve", args=[target.pk]))
            assert response.status_code == 404
            response = client.post(reverse(f"{base}_reject", args=[target.pk]),
                                   {"reason": "Mine now."})
            assert response.status_code == 404
        assert client.post(reverse(f"{QUEUE}_approve", args=[999999])).status_code == 404


@pytest.mark.parametrize("action", ["approve_selected", "reject_selected"])
def test_bd2_admin_action_on_a_foreign_id_does_nothing(client, demo, action):
    login(client, demo.bd2)
    foreign = demo.requests["dist"][0]
    with f.nothing_written(), f.committed():
        for base in (QUEUE, ALL):
            client.post(reverse(f"{base}_changelist"), {
                "action": action, "index": "0", "_selected_action": [str(foreign.pk)],
            })
            # The confirmation step of reject, posted straight away with a reason.
            client.post(reverse(f"{base}_changelist"), {
                "action": action, "_selected_action": [str(foreign.pk)], "reason": "Gone.",
            })
    assert status_of(foreign) == Status.PENDING


def test_partner_filter_lists_only_the_bds_partners(client, demo):
    def choices(user):
        login(client, user)
        response = client.get(reverse(f"{QUEUE}_changelist"))
        spec = next(s for s in response.context["cl"].filter_specs
                    if isinstance(s, OwnPartnerFilter))
        return [name for _, name in spec.lookup_choices]

    assert choices(demo.bd) == ["Bluebird Cloud", "Northwind Distribution"]
    assert choices(demo.bd2) == ["Quiet Partners"]
    assert choices(demo.root) == ["Bluebird Cloud", "Northwind Distribution", "Quiet Partners"]


def test_partner_filter_narrows_the_queue_and_a_foreign_partner_id_shows_nothing(client, demo):
    login(client, demo.bd)
    url = reverse(f"{QUEUE}_changelist")
    assert listed(client.get(url, {"partner": demo.dist.pk})) == ids(demo.requests["dist"])
    assert listed(client.get(url, {"partner": demo.quiet.pk})) == set()


@pytest.mark.parametrize("who", ["partner_admin", "sub_account_user"])
def test_partner_and_sub_account_users_get_no_admin(client, demo, who):
    if who == "partner_admin":
        user = demo.users["dist"]
    else:
        user = f.make_subaccount_user(demo.dist.sub_accounts.first())
    login(client, user)
    target = demo.requests["dist"][0]
    login_url = reverse("admin:login")
    with f.nothing_written(), f.committed():
        for url in (reverse("admin:index"), reverse(f"{QUEUE}_changelist"),
                    reverse(f"{ALL}_change", args=[target.pk]),
                    reverse("admin:accounts_partner_change", args=[demo.dist.pk])):
            response = client.get(url)
            assert response.status_code == 302 and response.url.startswith(login_url), url
        response = client.post(reverse(f"{QUEUE}_approve", args=[target.pk]))
        assert response.status_code == 302 and response.url.startswith(login_url)
        response = client.post(reverse(f"{QUEUE}_changelist"), {
            "action": "approve_selected", "index": "0", "_selected_action": [str(target.pk)],
        })
        assert response.status_code == 302 and response.url.startswith(login_url)


# ---------------------------------------------------------------------------------------
# Approve and reject one by one


def test_bd_approves_from_the_change_page_button(client, demo):
    login(client, demo.bd)
    target = demo.requests["dist"][0]
    page = client.get(reverse(f"{QUEUE}_change", args=[target.pk]))
    assert page.status_code == 200 and page.context["can_decide"] is True
    approve_url = reverse(f"{QUEUE}_approve", args=[target.pk])
    assert f'action="{approve_url}"' in page.content.decode()

    with f.committed():
        response = client.post(approve_url)
    assert response.status_code == 302
    # The request left the pending queue, so the BD lands on the page listing every status.
    assert response.url == reverse("admin:coupons_issuancerequest_change", args=[target.pk])
    assert messages_of(response) == [
        f"Request {target.number} (#{target.pk}) approved; its coupons are being released.",
    ]
    target.refresh_from_db()
    assert (target.status, target.decided_by) == (Status.ISSUED, demo.bd)
    assert Coupon.objects.filter(request=target).count() == 3


def test_change_page_of_a_decided_request_is_read_only_and_a_second_approve_is_refused(
    client, demo,
):
    login(client, demo.bd)
    target = f.approve(demo.requests["dist"][0], demo.bd)
    page = client.get(reverse(f"{ALL}_change", args=[target.pk]))
    assert page.status_code == 200 and page.context["can_decide"] is False
    assert "This request is issued." in page.content.decode()
    with f.nothing_written(), f.committed():
        response = client.post(reverse(f"{ALL}_approve", args=[target.pk]))
        # Saving the read-only change form changes nothing either.
        client.post(reverse(f"{ALL}_change", args=[target.pk]), {"status": "pending"})
    assert response.status_code == 302
    assert messages_of(response) == [
        f"Request {target.number} is issued; it can not be approved.",
    ]


def test_approve_url_answers_get_with_a_redirect_and_approves_nothing(client, demo):
    login(client, demo.bd)
    target = demo.requests["dist"][0]
    with f.nothing_written(), f.committed():
        response = client.get(reverse(f"{QUEUE}_approve", args=[target.pk]))
    assert response.status_code == 302
    assert status_of(target) == Status.PENDING


def test_bd_rejects_from_the_reject_page_with_a_reason(client, demo):
    login(client, demo.bd)
    target = demo.requests["reseller"][0]
    url = reverse(f"{QUEUE}_reject", args=[target.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert [o.pk for o in page.context["objects"]] == [target.pk]
    with f.committed():
        response = client.post(url, {"reason": "Not this quarter."})
    assert response.status_code == 302
    assert response.url == reverse(f"{QUEUE}_changelist")
    assert messages_of(response) == [f"Rejected 1 request: #{target.pk}."]
    target.refresh_from_db()
    assert (target.status, target.reason, target.decided_by) == (
        Status.REJECTED, "Not this quarter.", demo.bd,
    )
    assert h.budget_of(demo.reseller).reserved == Decimal("150.00")  # only the other one


@pytest.mark.parametrize("reason", ["", "   "])
def test_reject_without_a_reason_writes_nothing_and_says_why(client, demo, reason):
    login(client, demo.bd)
    target = demo.requests["dist"][0]
    with f.nothing_written(), f.committed():
        response = client.post(reverse(f"{QUEUE}_reject", args=[target.pk]), {"reason": reason})
    assert response.status_code == 200
    assert "Give a reason: the partner sees it." in messages_of(response)
    assert response.context["form"].errors["reason"]


def test_bd_can_not_approve_in_the_admin_a_request_they_submitted(client, demo):
    from accounts.models import PartnerMembership

    bd_member = f.make_bd("bd-member")
    partner = f.make_partner(name="Self Service", bd=bd_member, budget="1000.00")
    PartnerMembership.objects.create(user=bd_member, partner=partner, role="admin")
    template = f.make_template(partner, bd_member, cost_bearer="platform")
    own = f.submitted(template, bd_member, f.make_accounts(partner, 2))
    login(client, bd_member)
    page = client.get(reverse(f"{QUEUE}_change", args=[own.pk]))
    assert page.status_code == 200 and page.context["can_decide"] is False
    with f.nothing_written(), f.committed():
        response = client.post(reverse(f"{QUEUE}_approve", args=[own.pk]))
    assert messages_of(response) == ["You submitted this request, so you can not decide it."]


# ---------------------------------------------------------------------------------------
# Actions on many


def test_approve_selected_reports_what_it_approved_and_what_it_skipped(client, demo):
    login(client, demo.bd)
    pending = demo.requests["dist"] + demo.requests["reseller"][:1]
    cancelled = f.cancel(demo.requests["reseller"][1], demo.users["reseller"])
    selected = sorted([r.pk for r in pending] + [cancelled.pk])
    with f.committed():
        response = client.post(reverse(f"{ALL}_changelist"), {
            "action": "approve_selected", "index": "0",
            "_selected_action": [str(pk) for pk in selected],
        })
    assert response.status_code == 302
    done = sorted(r.pk for r in pending)
    assert messages_of(response) == [
        f"Approved 3 requests: {', '.join(f'#{pk}' for pk in done)}.",
        f"Skipped #{cancelled.pk}: Request {cancelled.number} is cancelled; it can not be "
        "approved.",
    ]
    assert {status_of(r) for r in pending} == {Status.ISSUED}
    assert status_of(cancelled) == Status.CANCELLED
    assert Coupon.objects.filter(request__in=pending).count() == 9


def test_approve_selected_in_the_queue_approves_many(client, demo):
    login(client, demo.bd)
    pending = demo.requests["dist"] + demo.requests["reseller"]
    with f.committed():
        response = client.post(reverse(f"{QUEUE}_changelist"), {
            "action": "approve_selected", "index": "0",
            "_selected_action": [str(r.pk) for r in pending],
        })
    assert messages_of(response)[0].startswith("Approved 4 requests")
    assert {status_of(r) for r in pending} == {Status.ISSUED}


def test_reject_selected_asks_for_a_reason_then_reports_done_and_skipped(client, demo):
    login(client, demo.bd)
    pending = demo.requests["dist"]
    issued = f.approve(demo.requests["reseller"][0], demo.bd)
    selected = [str(r.pk) for r in [*pending, issued]]
    url = reverse(f"{ALL}_changelist")
    with f.nothing_written():
        page = client.post(url, {"action": "reject_selected", "index": "0",
                                 "_selected_action": selected})
    assert page.status_code == 200
    assert sorted(o.pk for o in page.context["objects"]) == sorted(int(pk) for pk in selected)

    with f.nothing_written():  # the confirmation without a reason
        again = client.post(url, {"action": "reject_selected", "_selected_action": selected,
                                  "reason": ""})
    assert again.status_code == 200
    assert "Give a reason: the partner sees it." in messages_of(again)

    with f.committed():
        response = client.post(url, {"action": "reject_selected", "_selected_action": selected,
                                     "reason": "Campaign cancelled."})
    assert response.status_code == 302
    done = sorted(r.pk for r in pending)
    assert messages_of(response) == [
        f"Rejected 2 requests: #{done[0]}, #{done[1]}.",
        f"Skipped #{issued.pk}: Request {issued.number} is issued; it can not be rejected.",
    ]
    for request in pending:
        request.refresh_from_db()
        assert (request.status, request.reason) == (Status.REJECTED, "Campaign cancelled.")


# ---------------------------------------------------------------------------------------
# The partner's coupon settings and budget


def form_data(response) -> dict:
    """The POST a browser would send for an admin change page as it was rendered."""
    data: dict = {}

    def put(form, name, field):
        value = form[name].value()
        key = form.add_prefix(name)
        if isinstance(field.widget, forms.CheckboxInput):
            if value:
                data[key] = "on"
        elif value is not None:
            data[key] = value

    form = response.context["adminform"].form
    for name, field in form.fields.items():
        put(form, name, field)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        for inline_form in formset.forms:
            for name, field in inline_form.fields.items():
                put(inline_form, name, field)
    return data


def partner_url(partner):
    return reverse("admin:accounts_partner_change", args=[partner.pk])


def test_bd_changes_coupon_function_and_approval_rule_of_their_partner_with_an_audit_row(
    client, demo,
):
    login(client, demo.bd)
    data = form_data(client.get(partner_url(demo.dist)))
    assert data["coupon_enabled"] == "on" and data["requires_bd_approval"] == "on"
    data.pop("coupon_enabled")
    data.pop("requires_bd_approval")
    response = client.post(partner_url(demo.dist), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    demo.dist.refresh_from_db()
    assert (demo.dist.coupon_enabled, demo.dist.requires_bd_approval) == (False, False)
    row = AuditLog.objects.get(action="partner.coupon_settings", partner=demo.dist)
    assert row.actor == demo.bd
    assert row.before == {"coupon_enabled": True, "requires_bd_approval": True}
    assert row.after == {"coupon_enabled": False, "requires_bd_approval": False}


def test_bd_changes_the_platform_budget_of_their_partner_with_an_audit_row(client, demo):
    login(client, demo.bd)
    data = form_data(client.get(partner_url(demo.dist)))
    assert data["budgets-0-amount"] == Decimal("10000.00")
    data["budgets-0-amount"] = "2500.00"
    response = client.post(partner_url(demo.dist), data)
    assert response.status_code == 302
    assert h.budget_of(demo.dist).amount == Decimal("2500.00")
    row = AuditLog.objects.get(action="partner.platform_budget", partner=demo.dist)
    assert row.actor == demo.bd
    assert row.before == {"amount": "10000.00"}
    assert row.after == {"currency": "USD", "amount": "2500.00"}


def test_bd_grants_a_budget_in_a_new_currency_from_the_partner_form(client, demo):
    login(client, demo.bd)
    data = form_data(client.get(partner_url(demo.dist)))
    data.update({"budgets-TOTAL_FORMS": "2", "budgets-1-currency": "EUR",
                 "budgets-1-amount": "300.00", "budgets-1-partner": str(demo.dist.pk)})
    response = client.post(partner_url(demo.dist), data)
    assert response.status_code == 302
    assert h.budget_of(demo.dist, "EUR").amount == Decimal("300.00")
    assert AuditLog.objects.filter(action="partner.platform_budget", partner=demo.dist).exists()


def test_an_existing_budgets_currency_can_not_be_changed_from_the_partner_form(client, demo):
    """Its currency is what the budget is: a posted change is ignored, no second budget."""
    login(client, demo.bd)
    data = form_data(client.get(partner_url(demo.dist)))
    assert data["budgets-0-currency"] == "USD"
    data["budgets-0-currency"] = "EUR"
    data["budgets-0-amount"] = "2500.00"
    response = client.post(partner_url(demo.dist), data)
    assert response.status_code == 302
    assert h.budget_of(demo.dist).amount == Decimal("2500.00")
    assert not PlatformBudget.objects.filter(partner=demo.dist, currency="EUR").exists()


def test_a_tier2_resellers_partner_form_offers_no_budget(client, demo):
    """Tier-2 resellers get no platform-borne budget: the form does not offer one (it
    used to accept one, report the refusal and say "changed successfully" beside it)."""
    tier2, _account = f.make_tier2(demo.dist, bd=demo.bd)
    login(client, demo.bd)
    data = form_data(client.get(partner_url(tier2)))
    assert not any(key.startswith("budgets-") for key in data)
    assert any(key.startswith("budgets-") for key in form_data(client.get(partner_url(demo.dist))))
    response = client.post(partner_url(tier2), {
        **data, "budgets-TOTAL_FORMS": "1", "budgets-INITIAL_FORMS": "0",
        "budgets-0-currency": "USD", "budgets-0-amount": "100.00",
    })
    assert response.status_code == 302
    assert not PlatformBudget.objects.filter(partner=tier2).exists()


def test_budget_can_not_be_set_below_what_was_released(client, demo):
    f.approve(demo.requests["dist"][0], demo.bd)
    assert h.budget_of(demo.dist).consumed == Decimal("150.00")
    login(client, demo.bd)
    data = form_data(client.get(partner_url(demo.dist)))
    data["budgets-0-amount"] = "149.99"
    with f.nothing_written():
        response = client.post(partner_url(demo.dist), data)
    assert response.status_code == 200
    assert "it can not be set lower" in response.content.decode()
    assert h.budget_of(demo.dist).amount == Decimal("10000.00")


def test_bd2_can_not_open_or_change_bds_partner(client, demo):
    login(client, demo.bd2)
    # Django's admin answers an id outside the queryset with a redirect to its index.
    response = client.get(partner_url(demo.dist))
    assert response.status_code == 302 and response.url == reverse("admin:index")
    changelist = client.get(reverse("admin:accounts_partner_changelist")).content.decode()
    assert "Quiet Partners" in changelist and "Northwind" not in changelist
    with f.nothing_written():
        client.post(partner_url(demo.dist), {
            "coupon_enabled": "", "requires_bd_approval": "",
            "budgets-TOTAL_FORMS": "0", "budgets-INITIAL_FORMS": "0",
        })
    demo.dist.refresh_from_db()
    assert demo.dist.coupon_enabled is True and demo.dist.requires_bd_approval is True


def test_bd_can_not_change_the_assigned_bd_but_a_superuser_can(client, demo):
    login(client, demo.bd)
    data = form_data(client.get(partner_url(demo.dist)))
    assert "bd" not in data  # read-only for a BD
    data["bd"] = str(demo.bd2.pk)
    client.post(partner_url(demo.dist), data)
    demo.dist.refresh_from_db()
    assert demo.dist.bd == demo.bd
    assert not AuditLog.objects.filter(action="partner.assign_bd").exists()

    login(client, demo.root)
    data = form_data(client.get(partner_url(demo.dist)))
    assert data["bd"] == demo.bd.pk
    data["bd"] = str(demo.bd2.pk)
    response = client.post(partner_url(demo.dist), data)
    assert response.status_code == 302
    demo.dist.refresh_from_db()
    assert demo.dist.bd == demo.bd2
    row = AuditLog.objects.get(action="partner.assign_bd", partner=demo.dist)
    assert (row.actor, row.before, row.after) == (demo.root, {"bd": demo.bd.pk},
                                                  {"bd": demo.bd2.pk})
