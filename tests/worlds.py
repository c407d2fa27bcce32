"""Every test world by name, for a test that builds them all (the date sweep).

WORLDS maps a name to a zero-argument callable that builds that world in the current
transaction, with the fast password hasher, and returns it. A refused setup step raises
(an ApplicationError from the service, or an AssertionError from the builder's own checks);
nothing is swallowed. The caller wraps each call in a rolled-back atomic block, and moves
the clock (time-machine) to the day it builds at: every world that builds dates builds them
from `timezone.localdate()`, except the money machine's, which runs on its own simulated
clock from a fixed day (see its module).

Imports are inside the callables: building one world needs only its own modules.
"""
from __future__ import annotations

from collections.abc import Callable
from unittest import mock

from django.utils import timezone

from tests import factories as f


def security():
    """tests/security: tenant A (the §11 demo) and tenant B (Zeta), PRODUCT §11's roles."""
    from tests.security.world import build_world

    with f.fast_passwords():
        return build_world()


def billing_pages():
    """tests/billing's page World: Dist One and Rival, coupons in every status, bills of
    the last two months, both closed."""
    from tests.billing import page_helpers

    with f.fast_passwords():
        return page_helpers.build_world()


def billing_usage_table():
    """The page World with the Coupon Usage table's 32 more coupons."""
    from tests.billing import page_helpers
    from tests.billing.test_usage_table import add_more_coupons

    with f.fast_passwords():
        return add_more_coupons(page_helpers.build_world())


def money_machine():
    """The state machine's starting world, built as its test builds it: on the machine's
    clock at its START day, whatever the calendar says."""
    from tests.model import test_money_machine as machine

    with f.fast_passwords(), mock.patch.object(timezone, "now", machine.CLOCK.now):
        machine.CLOCK.today = machine.START
        return machine.build_world()


def integration_shop():
    """tests/integration's scenario, small and in-process: a shop of 3 accounts, their
    coupons released, yesterday's usage billed and posted, checked as the worker tests
    check it."""
    from billing.daily_bills import daily_bills_make
    from tests.integration import helpers as h

    with f.fast_passwords():
        shop = f.make_shop(3)
        request = h.release_now(shop)
        day = h.yesterday()
        h.usage_for(shop.accounts, day)
        with f.committed():
            daily_bills_make(bill_date=day)
    h.assert_released_once(shop, request)
    h.assert_posted_once(shop.accounts, day)
    return shop


def browser_demo():
    """What tests/browser's billing flow seeds: the demo with 60 Northwind customers and
    the demo's 60 days of usage for three accounts, its ended months closed."""
    from tests.security.world import build_demo, build_demo_usage

    with f.fast_passwords():
        build_demo(accounts=60, password="demo")
        build_demo_usage(account_ids=("NW000001", "NW000002", "BB000001"), days=60)


WORLDS: dict[str, Callable[[], object]] = {
    "security": security,
    "billing_pages": billing_pages,
    "billing_usage_table": billing_usage_table,
    "money_machine": money_machine,
    "integration_shop": integration_shop,
    "browser_demo": browser_demo,
}
