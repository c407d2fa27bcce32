"""What Approval Status says of each request: when it was decided, by whom, the reason,
who cancelled or withdrew it; and the request's page with its accounts, totals and
history. Another partner's requests are never shown (PRODUCT §5)."""
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests import factories as f

pytestmark = pytest.mark.django_db
LIST = reverse("approvals:list")


@pytest.fixture
def named_bd(bd):
    bd.first_name, bd.last_name = "Bea", "Dee"
    bd.save(update_fields=["first_name", "last_name"])
    return bd


@pytest.fixture
def admin_client(client, dist_admin):
    dist_admin.first_name, dist_admin.last_name = "Ada", "Min"
    dist_admin.save(update_fields=["first_name", "last_name"])
    client.force_login(dist_admin)
    return client


def row_of(html: str, number: str) -> str:
    """The text of the table row whose request is `number`, tags stripped."""
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S):
        if f">{number}</a>" in row:
            return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
    raise AssertionError(f"no row of {number}")


def test_each_row_says_who_decided_when_and_why_and_who_cancelled(
    admin_client, platform_template, dist_admin, dist_operator, customers, named_bd,
):
    dist_operator.first_name, dist_operator.last_name = "Opal", "Era"
    dist_operator.save(update_fields=["first_name", "last_name"])
    rejected = f.reject(f.submitted(platform_template, dist_admin, customers[:1]), named_bd,
                        reason="Budget is for new customers only.")
    approved = f.approve(f.submitted(platform_template, dist_admin, customers[1:2]), named_bd)
    cancelled = f.cancel(f.submitted(platform_template, dist_admin, customers[2:3]),
                         dist_operator)
    pending = f.submitted(platform_template, dist_admin, customers[3:4])
    html = admin_client.get(LIST).content.decode()
    rejected.refresh_from_db()
    decided = f"{timezone.localtime(rejected.decided_at):%Y-%m-%d %H:%M}"
    assert "Rejected by Bea Dee" in row_of(html, rejected.number)
    assert decided in row_of(html, rejected.number)
    assert "Reason: Budget is for new customers only." in row_of(html, rejected.number)
    assert "Approved by Bea Dee" in row_of(html, approved.number)
    assert "Cancelled by Opal Era" in row_of(html, cancelled.number)
    assert "Waiting for Bea Dee" in row_of(html, pending.number)
    assert "Ada Min" in row_of(html, pending.number)  # who submitted it


def test_the_list_costs_the_same_queries_with_decided_and_cancelled_rows(
    admin_client, platform_template, dist_admin, customers, named_bd,
):
    f.submitted(platform_template, dist_admin, customers[:1])

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(LIST).status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    f.reject(f.submitted(platform_template, dist_admin, customers[1:2]), named_bd)
    f.cancel(f.submitted(platform_template, dist_admin, customers[2:3]), dist_admin)
    f.approve(f.submitted(platform_template, dist_admin, customers[3:4]), named_bd)
    assert queries() == few


def test_the_request_page_has_its_accounts_totals_decision_and_history(
    admin_client, platform_template, dist_admin, customers, named_bd,
):
    request = f.reject(f.submitted(platform_template, dist_admin, customers[:2]), named_bd,
                       reason="Not this quarter.")
    html = admin_client.get(request.get_absolute_url()).content.decode()
    assert f"Request {request.number}" in html
    assert customers[0].account_id in html and customers[1].account_id in html
    assert "50.00 × 2 = 100.00 USD" in html
    decision = re.search(r'id="request-decision">(.*?)</dd>', html, re.S).group(1)
    assert "Rejected by <strong>Bea Dee</strong>" in decision
    history = re.search(r'id="request-history">(.*?)</table>', html, re.S).group(1)
    rows = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip()
            for r in re.findall(r"<tr>(.*?)</tr>", history, re.S)][1:]
    assert len(rows) == 2
    assert "Ada Min Submitted: Pending approval" in rows[0]
    assert "Bea Dee Pending approval → Rejected Not this quarter." in rows[1]


def test_a_cancelled_request_names_who_cancelled_it_on_its_page(
    admin_client, platform_template, dist_admin, customers,
):
    request = f.cancel(f.submitted(platform_template, dist_admin, customers[:1]), dist_admin)
    html = admin_client.get(request.get_absolute_url()).content.decode()
    assert "Cancelled by <strong>Ada Min</strong>" in html
    assert "Pending approval → Cancelled" in html


def test_a_partner_never_sees_another_partners_request_its_decision_or_history(
    client, dist_admin, platform_template, customers, named_bd, other_partner, other_admin,
):
    mine = f.reject(f.submitted(platform_template, dist_admin, customers[:1]), named_bd,
                    reason="Secret reason of Dist One.")
    theirs_template = f.make_template(other_partner, other_admin)
    theirs = f.submitted(theirs_template, other_admin, f.make_accounts(other_partner, 1))
    client.force_login(other_admin)
    listing = client.get(LIST).content.decode()
    assert "Secret reason of Dist One." not in listing
    assert [r.record.pk for r in client.get(LIST).context["table"].paginated_rows] == [theirs.pk]
    for name in ("detail", "progress", "cancel"):
        assert client.get(reverse(f"approvals:{name}", args=[mine.pk])).status_code == 404
    own = client.get(theirs.get_absolute_url()).content.decode()
    assert "Secret reason" not in own and customers[0].account_id not in own
