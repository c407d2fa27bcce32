"""Confirm on Issue Coupon sent many times at once from one session (a double click, two
tabs, a script): one selection makes one request, on real PostgreSQL connections.

Each thread posts `action=confirm` through the page itself, with its own test client on the
one session, released together by a barrier. The selection's one-time token is kept by the
request, and the unique constraint on (submitted_by, submission_key) refuses every twin;
the twins are told "already submitted" with a link to the request.
"""
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from accounts.models import PlatformBudget
from coupons.models import IssuanceRecipient, IssuanceRequest
from tests import factories as f
from tests.approvals.helpers import at_once

pytestmark = [
    pytest.mark.race,
    pytest.mark.django_db(transaction=True),
]

CONFIRMS = 20


def _session_with_selection(template, user, accounts) -> tuple[str, str]:
    """A signed-in session whose Selected Accounts hold `accounts`: (cookie, token)."""
    client = Client()
    client.force_login(user)
    url = reverse("coupons:issue", args=[template.pk])
    client.post(url, {"action": "paste", "account_ids": " ".join(a.account_id for a in accounts)})
    assert client.session[f"issue_selection:{template.pk}"] == [a.account_id for a in accounts]
    token = client.session[f"issue_submission:{template.pk}"]
    assert f'name="submission" value="{token}"' in client.get(url).content.decode()
    return client.cookies[settings.SESSION_COOKIE_NAME].value, token


def _confirm(template, cookie: str, data: dict):
    def post():
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = cookie
        response = client.post(reverse("coupons:issue", args=[template.pk]),
                               {"action": "confirm", **data})
        return response.status_code, response.get("Location", "")
    return post


def _world(*, cost_bearer: str):
    partner = f.make_partner(requires_bd_approval=True, budget="1000.00")
    user = f.make_member(partner, "operator")
    accounts = f.make_accounts(partner, 3)
    # Unlimited and uncapped: nothing but the submission token stands between the twins
    # (no "Limited to 1" index, no template lock).
    template = f.make_template(partner, user, issue_limit="unlimited", cost_bearer=cost_bearer,
                               face_value=Decimal("33.33"))
    return partner, user, accounts, template


def _race(template, user, accounts, data_for):
    cookie, token = _session_with_selection(template, user, accounts)
    outcomes = at_once(*(_confirm(template, cookie, data_for(token)) for _ in range(CONFIRMS)))
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert not errors, errors[:3]
    requests = list(IssuanceRequest.objects.filter(template=template))
    assert len(requests) == 1, f"{len(requests)} requests from {CONFIRMS} confirms of one selection"
    request = requests[0]
    assert IssuanceRecipient.objects.filter(template=template).count() == len(accounts)
    return request, outcomes, token


@pytest.mark.parametrize("with_token", [True, False], ids=["page-token", "no-token"])
def test_twenty_parallel_confirms_of_one_selection_make_one_request(postgres_only, with_token):
    """The page's confirm (with its token), and a script's bare `action=confirm` (which
    uses the session's token): either way one request."""
    _partner, user, accounts, template = _world(cost_bearer="partner")
    request, outcomes, token = _race(
        template, user, accounts, lambda token: {"submission": token} if with_token else {},
    )
    assert request.submission_key == token
    shown = reverse("coupons:issue", args=[template.pk])
    if with_token:
        # Every confirm sends the user to the one request (the twins with "already
        # submitted" and its link).
        assert set(outcomes) == {(302, request.get_absolute_url())}, outcomes
    else:
        # A bare confirm that read the session after the first had emptied Selected
        # Accounts is sent back to the page ("Select at least one account").
        assert set(outcomes) <= {(302, request.get_absolute_url()), (302, shown)}, outcomes
    assert request.recipient_count == len(accounts)
    assert request.total_amount == Decimal("99.99")


def test_twenty_parallel_confirms_reserve_the_budget_once(postgres_only):
    """Platform-borne: the twins queued on the budget's row lock reserved again (10 pending
    requests held 1,000.00 of budget for one 100.00 selection)."""
    partner, user, accounts, template = _world(cost_bearer="platform")
    request, outcomes, _token = _race(template, user, accounts,
                                      lambda token: {"submission": token})
    assert set(outcomes) == {(302, request.get_absolute_url())}, outcomes
    budget = PlatformBudget.objects.get(partner=partner, currency="USD")
    assert budget.reserved == request.total_amount == Decimal("99.99")


def test_a_confirm_sent_again_later_is_told_it_was_submitted_with_a_link(postgres_only):
    _partner, user, accounts, template = _world(cost_bearer="partner")
    cookie, token = _session_with_selection(template, user, accounts)
    first = _confirm(template, cookie, {"submission": token})()
    request = IssuanceRequest.objects.get(template=template)
    assert first == (302, request.get_absolute_url())
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = cookie
    again = client.post(reverse("coupons:issue", args=[template.pk]),
                        {"action": "confirm", "submission": token}, follow=True)
    assert again.redirect_chain[-1][0] == request.get_absolute_url()
    html = again.content.decode()
    assert (f'already submitted: <a href="{request.get_absolute_url()}">request '
            f"{request.number}</a>") in html
    assert IssuanceRequest.objects.filter(template=template).count() == 1
