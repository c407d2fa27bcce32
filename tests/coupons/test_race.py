"""Races of PRODUCT §4 on real PostgreSQL connections, one per thread, released by a barrier.

The limit-1 race of QUALITY.md: "Limited to 1" is held by a partial unique index, not by
the check that precedes the insert, so concurrent submits for one account end with exactly
one request holding it.
"""
import threading
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections

from accounts.models import PlatformBudget
from couponplatform.exceptions import ApplicationError
from coupons.models import CouponTemplate, IssuanceRecipient, IssuanceRequest
from coupons.services import issuance_request_submit
from tests import factories as f

pytestmark = [
    pytest.mark.race,
    pytest.mark.django_db(transaction=True),
]

THREADS = 32


def run_at_once(count: int, prepare, act) -> list[tuple[str, object]]:
    """Run act(i, prepared) in `count` threads at the same moment, each on its own connection.

    `prepare(i)` runs in the thread before the barrier (connect, load rows), so the threads
    race on the action alone. Returns ("ok", result), ("refused", message) or ("error", repr)
    per thread; "error" is anything but a clean ApplicationError.
    """
    barrier = threading.Barrier(count)
    results: list[tuple[str, object] | None] = [None] * count

    def runner(i: int) -> None:
        try:
            connection.ensure_connection()
            prepared = prepare(i)
            barrier.wait(timeout=60)
            results[i] = ("ok", act(i, prepared))
        except ApplicationError as exc:
            results[i] = ("refused", exc.message)
        except Exception as exc:  # noqa: BLE001 - every other failure is reported
            barrier.abort()
            results[i] = ("error", repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results  # type: ignore[return-value]


def summary(results) -> dict[str, int]:
    out: dict[str, int] = {}
    for status, _ in results:
        out[status] = out.get(status, 0) + 1
    return out


def submitter(template_pk: int, user_pk: int):
    """prepare(): the thread's own template and user rows, membership and partner loaded."""
    def prepare(_i):
        user = get_user_model().objects.select_related("partner_membership__partner").get(
            pk=user_pk,
        )
        template = CouponTemplate.objects.select_related("partner").get(pk=template_pk)
        return template, user
    return prepare


def test_limit_one_race_32_concurrent_submits_leave_exactly_one_holder(postgres_only):
    partner = f.make_partner(requires_bd_approval=True)
    user = f.make_member(partner, "operator")
    account = f.make_accounts(partner, 1)[0]
    template = f.make_template(partner, user, issue_limit="one", cost_bearer="partner",
                               face_value=Decimal("20.00"))

    results = run_at_once(
        THREADS,
        submitter(template.pk, user.pk),
        lambda _i, prepared: issuance_request_submit(
            template=prepared[0], acting_user=prepared[1], account_ids=[account.account_id],
        ).pk,
    )

    counts = summary(results)
    errors = [detail for status, detail in results if status == "error"]
    assert not errors, f"unclean failures: {errors[:3]}"
    holders = IssuanceRecipient.objects.filter(template=template, sub_account=account,
                                               holds=True).count()
    requests = IssuanceRequest.objects.filter(template=template).count()
    assert counts.get("ok", 0) == 1, (
        f"{counts.get('ok', 0)} of {THREADS} submits succeeded ({counts}); "
        f"{holders} recipient rows hold the account"
    )
    assert counts.get("refused", 0) == THREADS - 1
    assert holders == 1
    assert requests == 1
    refusals = {detail for status, detail in results if status == "refused"}
    assert all(
        "already hold it or wait for it" in message or "confirmed at the same time" in message
        for message in refusals
    ), refusals


def test_platform_budget_race_reserves_no_more_than_the_budget(postgres_only):
    """16 submits of 100.00 against a 1,000.00 budget: the budget row lock lets exactly 10 in."""
    partner = f.make_partner(budget="1000.00")
    user = f.make_member(partner, "admin")
    accounts = f.make_accounts(partner, 16)
    template = f.make_template(partner, user, cost_bearer="platform", issue_limit="unlimited",
                               face_value=Decimal("100.00"))

    results = run_at_once(
        16,
        submitter(template.pk, user.pk),
        lambda i, prepared: issuance_request_submit(
            template=prepared[0], acting_user=prepared[1],
            account_ids=[accounts[i].account_id],
        ).pk,
    )

    counts = summary(results)
    assert counts.get("error", 0) == 0, results
    assert counts.get("ok", 0) == 10, counts
    budget = PlatformBudget.objects.get(partner=partner, currency="USD")
    assert budget.reserved == Decimal("1000.00")
    assert budget.remaining == Decimal("0.00")
    reserved_by_requests = sum(
        r.total_amount for r in IssuanceRequest.objects.filter(template=template)
    )
    assert reserved_by_requests == budget.reserved
    assert all("remaining platform-borne budget" in detail
               for status, detail in results if status == "refused")
