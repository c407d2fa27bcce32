"""A page shows at most 100 rows, whatever `per_page` asks (the export is the way to get
every row); a size below 1 or not a number is the page's default (couponplatform/paging.py)."""
import re

import pytest
from django.urls import reverse

from couponplatform.paging import PER_PAGE_MAX, per_page_bounded
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("sent", "expected"), [
    ("10", 10), ("100", 100), ("101", 100), ("100000", 100), ("99999999999999999999", 100),
    ("0", 25), ("-1", 25), ("-1000", 25), ("abc", 25), ("", 25), (None, 25), ("1e3", 25),
    ("9" * 5000, 25),  # past Python's digit limit for int()
])
def test_per_page_bounded(sent, expected):
    assert per_page_bounded(sent, 25) == expected


def picks(html: str) -> int:
    return len(re.findall(r'name="pick" value=', html))


def test_issue_coupon_shows_at_most_100_accounts_a_page(client, distributor, dist_admin):
    template = f.make_template(distributor, dist_admin, issue_limit="unlimited")
    f.make_accounts(distributor, 130, prefix="PG-")
    client.force_login(dist_admin)
    url = reverse("coupons:issue", args=[template.pk])
    assert picks(client.get(url, {"per_page": "100000"}).content.decode()) == PER_PAGE_MAX
    assert picks(client.get(url, {"per_page": "100000", "page": "2"}).content.decode()) == 30
    assert picks(client.get(url, {"per_page": "-1"}).content.decode()) == 25
    assert picks(client.get(url, {"per_page": "40"}).content.decode()) == 40


def test_template_list_shows_at_most_100_templates_a_page(client, distributor, dist_admin):
    for i in range(105):
        f.make_template(distributor, dist_admin, name=f"Paged {i:03d}")
    client.force_login(dist_admin)
    html = client.get(reverse("coupons:template_list"), {"per_page": "100000"}).content.decode()
    assert len(re.findall(r">Paged \d{3}<", html)) == PER_PAGE_MAX
    assert "105 templates" in html
    second = client.get(reverse("coupons:template_list"), {"per_page": "100000", "page": "2"})
    assert len(re.findall(r">Paged \d{3}<", second.content.decode())) == 5
