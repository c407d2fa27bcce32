"""A release and a submit of the same platform-borne template at once never deadlock.

The release locks request → template → budget (docs/ARCHITECTURE.md, "Lock order"). A
submit of an uncapped template locks only the budget, then inserts its request, whose
foreign key to the template takes a KEY SHARE lock on the template's row. With the
template locked FOR UPDATE that insert waits for the release, while the release waits for
the budget the submit holds: a deadlock, which PostgreSQL breaks by failing one of them
(seen in the load test: an auto-released request left approved until the sweeper). The
lock helpers take FOR NO KEY UPDATE, which serialises the lockers as before but leaves a
foreign key's check free.

Choreographed: the release is held between its template lock and its budget lock while
the submit starts, and goes on SUBMIT_HEAD_START later.
"""
import threading

import pytest
from django.utils import timezone

from approvals import release as release_module
from approvals.release import issuance_request_release
from coupons.models import IssuanceRequest
from tests import factories as f
from tests.approvals.helpers import at_once

pytestmark = [pytest.mark.race, pytest.mark.django_db(transaction=True)]

SUBMIT_HEAD_START = 1.5  # seconds


def test_a_release_and_a_submit_of_one_template_both_go_through(monkeypatch):
    bd = f.make_bd()
    partner = f.make_partner(requires_bd_approval=True, budget="1000.00", bd=bd)
    user = f.make_member(partner, "operator")
    first, second = f.make_accounts(partner, 2)
    template = f.make_template(partner, user, issue_limit="unlimited", cost_bearer="platform")
    # Approved, its release not yet run (a committed approval would release it at once).
    approved = f.submitted(template, user, [first])
    IssuanceRequest.objects.filter(pk=approved.pk).update(
        status=IssuanceRequest.Status.APPROVED, decided_by=bd, decided_at=timezone.now())

    template_locked, go_on = threading.Event(), threading.Event()
    real_budgets = release_module.platform_budgets_for_update

    def budgets_after_a_pause():
        template_locked.set()  # the release holds the request and the template now
        assert go_on.wait(30)
        return real_budgets()

    monkeypatch.setattr(release_module, "platform_budgets_for_update", budgets_after_a_pause)

    def release():
        return issuance_request_release(request_id=approved.pk)

    def submit():
        assert template_locked.wait(30)
        # The release goes on to the budget a moment later: by then this submit holds the
        # budget and, were the template locked FOR UPDATE, waits at its request's insert.
        threading.Timer(SUBMIT_HEAD_START, go_on.set).start()
        return f.submit(template, user, [second])

    released, submitted = at_once(release, submit)

    assert not isinstance(released, BaseException), released
    assert not isinstance(submitted, BaseException), submitted
    assert released.status == IssuanceRequest.Status.ISSUED
    assert submitted.status == IssuanceRequest.Status.PENDING
