from decimal import Decimal

from coupons.models import IssuanceRequest
from tests import factories as f


def test_submit_creates_pending_request(distributor, dist_admin, customers):
    template = f.make_template(distributor, dist_admin)
    request = f.submit(template, dist_admin, customers[:3])
    assert request.status == IssuanceRequest.Status.PENDING
    assert request.recipient_count == 3
    assert request.total_amount == Decimal("150.00")
    assert request.recipients.count() == 3
