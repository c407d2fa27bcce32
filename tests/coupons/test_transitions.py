"""A coupon's state machine (Coupon.TRANSITIONS, moved only by coupons_move): every pair of
statuses, from each status to each, is allowed exactly when the table says so; an allowed
move writes the status and one audit row, a refused one writes nothing."""
import itertools

import pytest

from audit.models import AuditLog
from couponplatform.exceptions import InvalidTransitionError
from coupons.locks import coupons_for_update
from coupons.models import Coupon
from coupons.transitions import coupons_move
from tests import factories as f
from tests.factories import make_coupon

pytestmark = pytest.mark.django_db
Status = Coupon.Status
PAIRS = list(itertools.product(Status.values, repeat=2))


def test_the_table_names_every_status_and_nothing_reopens():
    assert set(Coupon.TRANSITIONS) == set(Status.values)
    assert Coupon.TRANSITIONS[Status.AVAILABLE] == {Status.USED_UP, Status.EXPIRED,
                                                    Status.VOIDED}
    assert not any(Status.AVAILABLE in targets for targets in Coupon.TRANSITIONS.values())
    assert all(not Coupon.TRANSITIONS[final]
               for final in (Status.USED_UP, Status.EXPIRED, Status.VOIDED))


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
def test_every_move_is_allowed_exactly_when_the_table_says(distributor, source, target):
    account = f.make_accounts(distributor, 1, prefix="MV-")[0]
    coupon = make_coupon(account, amount="10.00")
    Coupon.objects.filter(pk=coupon.pk).update(status=source)
    locked = coupons_for_update().get(pk=coupon.pk)
    if target in Coupon.TRANSITIONS[source]:
        coupons_move(coupons=[locked], to=target, action="coupon.test_move",
                     after={coupon.pk: {"note": "moved"}})
        coupon.refresh_from_db()
        assert coupon.status == target == locked.status
        row = AuditLog.objects.get(action="coupon.test_move")
        assert (row.object_id, row.partner_id) == (str(coupon.pk), distributor.pk)
        assert (row.before, row.after) == ({"status": source},
                                           {"status": target, "note": "moved"})
    else:
        with pytest.raises(InvalidTransitionError, match=f"Coupon {coupon.code} is"):
            coupons_move(coupons=[locked], to=target, action="coupon.test_move")
        coupon.refresh_from_db()
        assert coupon.status == source == locked.status
        assert not AuditLog.objects.filter(action="coupon.test_move").exists()


def test_one_refused_coupon_refuses_the_whole_move(distributor):
    account = f.make_accounts(distributor, 1, prefix="MV-")[0]
    fine, spent = make_coupon(account), make_coupon(account)
    Coupon.objects.filter(pk=spent.pk).update(status=Status.USED_UP)
    locked = list(coupons_for_update().filter(pk__in=[fine.pk, spent.pk]))
    with pytest.raises(InvalidTransitionError, match="only an available coupon can be expired"):
        coupons_move(coupons=locked, to=Status.EXPIRED, action="coupon.expire")
    assert sorted(Coupon.objects.filter(sub_account=account).values_list("status", flat=True)) \
        == [Status.AVAILABLE, Status.USED_UP]
    assert not AuditLog.objects.filter(action="coupon.expire").exists()
