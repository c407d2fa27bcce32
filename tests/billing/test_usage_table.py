"""Coupon Usage's coupon table: the lean template the page renders shows what
django-tables2's generic bootstrap5 template showed for the same table, cell for cell,
sort link for sort link, page link for page link, escaped alike.

Each case asks for the page itself (the view's filters, ordering and lazy paging), cuts the
table out of it, and compares it with django-tables2's own template rendering a table made
from the view's filtered coupons and pagination options for the same request."""
import re
from datetime import timedelta

import django_tables2 as tables
import pytest
from django.db import connection
from django.template import RequestContext, Template
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import coupon_status
from billing.tables import CouponUsageTable
from coupons.models import Coupon
from tests import factories as f
from tests.billing import page_helpers as ph
from tests.html_compare import normalised

pytestmark = pytest.mark.django_db

USAGE = "/coupons/usage/"
LEAN = "billing/_coupon_usage_table.html"
GENERIC_NAME = "django_tables2/bootstrap5-responsive.html"
HTML_ACCOUNT = "<script>alert(\"x\")</script> & <b>'bold'</b>"
HTML_TEMPLATE = "<i>Q&A</i> \"quoted\" 'cash'"
GENERIC = Template('{% load django_tables2 %}{% render_table table %}')


class GenericCouponUsageTable(CouponUsageTable):
    """The table as the page rendered it before the lean template: django-tables2's
    generic bootstrap5-responsive template and its per-cell machinery (the reference)."""

    class Meta(CouponUsageTable.Meta):
        template_name = GENERIC_NAME


def table_html(page: str) -> str:
    """The table's container (it holds no other <div>) cut out of the page."""
    start = page.index('<div class="table-container')
    return page[start:page.index("</div>", start) + len("</div>")]


def render_both(client, user, params: dict) -> tuple[list[str], list[str]]:
    """(the page's table, django-tables2's rendering of the same table), normalised."""
    client.force_login(user)
    response = client.get(USAGE, params)
    assert response.status_code == 200
    assert LEAN in [t.name for t in response.templates]
    assert GENERIC_NAME not in [t.name for t in response.templates]
    lean = table_html(response.content.decode())

    view, request = response.context["view"], response.wsgi_request
    generic = GenericCouponUsageTable(view.object_list, **view.get_table_kwargs())
    tables.RequestConfig(request, paginate=view.get_table_pagination(generic)).configure(generic)
    reference = GENERIC.render(RequestContext(request, {"table": generic}))
    return normalised(lean), normalised(reference)


def add_more_coupons(w: ph.World) -> ph.World:
    """32 more coupons on the billing pages' World: enough for two pages of 25, with HTML
    in a sub-account's and a template's name."""
    html_account = ph.account(w.partner, "CH-0001", HTML_ACCOUNT)
    more = f.make_accounts(w.partner, 19, prefix="CM-")
    html_tpl = ph.template(w.partner, w.admin, HTML_TEMPLATE, face="7.00")
    ph.issue(html_tpl, w.admin, w.bd, [html_account, *more[:11]],
             at=ph.local(w.today - timedelta(days=5)))
    issued = ph.issue(w.templates["welcome"], w.admin, w.bd, more,
                      at=ph.local(w.today - timedelta(days=2)))
    coupon_status.coupon_void(coupon=issued[3], acting_user=w.admin, reason="Test")
    w.html_template = html_tpl
    return w


@pytest.fixture(scope="module")
def module_world(django_db_setup, django_db_blocker):
    """The billing pages' World (coupons in every status, Rival's coupon) and 32 more."""
    with ph.shared_world(django_db_blocker) as w:
        with django_db_blocker.unblock():
            add_more_coupons(w)
        yield w


@pytest.fixture
def world(module_world, db):
    module_world.refresh()
    return module_world


ORDERABLE = ["code", "sub_account", "template", "cost_bearer", "amount", "used", "balance",
             "valid_until", "status", "released_at"]
PARAMS = [
    {},
    *({"sort": column} for column in ORDERABLE),
    *({"sort": f"-{column}"} for column in ORDERABLE),
    {"page": "2"},
    {"page": "2", "sort": "-code"},
    {"per_page": "10", "page": "3"},
    {"per_page": "10", "page": "4"},  # the last page: no next link
    {"per_page": "1", "page": "12", "sort": "amount"},  # page links with gaps
    {"per_page": "1", "page": "36"},  # the last of 36
    {"per_page": "1", "page": "37"},  # one past the end
    {"sort": "bogus"},
    {"page": "99"},  # past the end: page 1
    {"page": "0"},
    {"page": "abc"},
    {"page": str(10**20)},
    {"sub_account": "no such account"},  # empty
    {"status": "bogus"},  # an invalid filter: empty, with the form's error
    {"status": "available", "cost_bearer": "partner", "sort": "-amount", "page": "2",
     "per_page": "5"},
    {"sub_account": "CM-", "sort": "sub_account", "page": "2", "per_page": "4"},
    {"sub_account": "<script>", "sort": "-template"},
    {"sub_account": '"><b>&amp;', "q": "<i>'x'</i>", "page": "2"},
    {"status": "voided", "sort": "released_at"},
]


@pytest.mark.parametrize("params", PARAMS, ids=[str(p) for p in PARAMS])
def test_lean_table_matches_the_generic_template_for_an_admin(client, world, params):
    lean, generic = render_both(client, world.admin, params)
    assert lean == generic


VIEWER_PARAMS = [{}, {"page": "2"}, {"sort": "-status", "per_page": "10", "page": "2"},
                 {"status": "available", "sort": "code"}, {"sub_account": "nothing"}]


@pytest.mark.parametrize("role", ["operator", "viewer"])
@pytest.mark.parametrize("params", VIEWER_PARAMS, ids=[str(p) for p in VIEWER_PARAMS])
def test_lean_table_matches_the_generic_template_without_void(client, world, role, params):
    lean, generic = render_both(client, getattr(world, role), params)
    assert lean == generic
    assert not any("/void/" in line or ">Void<" in line for line in lean)


def test_template_filter_and_its_html_name(client, world):
    params = {"template": world.html_template.pk, "sort": "-used"}
    lean, generic = render_both(client, world.admin, params)
    assert lean == generic
    html = "\n".join(lean)
    assert "&lt;i&gt;Q&amp;A&lt;/i&gt; &quot;quoted&quot; &#x27;cash&#x27;" in html
    assert f"template={world.html_template.pk}" in html


def test_admin_sees_void_only_on_available_coupons(client, world):
    lean, generic = render_both(client, world.admin, {"per_page": "100"})
    assert lean == generic
    html = "\n".join(lean)
    available = Coupon.objects.filter(partner=world.partner, status="available")
    others = Coupon.objects.filter(partner=world.partner).exclude(status="available")
    assert others.exists()
    voids = set(re.findall(r'href="([^"]*/void/)"', html))
    assert voids == {reverse("coupon_void", args=[c.pk]) for c in available}
    assert len(re.findall(r">Void</a>", html)) == available.count()
    assert html.count("<tr class=") == Coupon.objects.filter(partner=world.partner).count()


def test_every_value_is_escaped(client, world):
    lean, generic = render_both(client, world.admin,
                                {"sort": "sub_account", "sub_account": "CH-", "x": '"<&>'})
    assert lean == generic
    html = "\n".join(lean)
    assert ("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
            "&lt;b&gt;&#x27;bold&#x27;&lt;/b&gt;") in html
    assert "&lt;i&gt;Q&amp;A&lt;/i&gt;" in html
    assert "<script>" not in html and "<b>" not in html and "<i>" not in html
    # The filters stay in the sort links, escaped for the attribute.
    assert "?sort=code&amp;sub_account=CH-&amp;x=%22%3C%26%3E" in html


def test_sort_and_page_links_keep_the_filters(client, world):
    params = {"status": "available", "cost_bearer": "partner", "sort": "code",
              "page": "2", "per_page": "5"}
    lean, generic = render_both(client, world.admin, params)
    assert lean == generic
    links = [re.search(r'href="([^"]*)"', line).group(1) for line in lean if "href=" in line]
    # Row links (void, the coupon's detail) are not the table's own navigation.
    links = [link for link in links if not re.fullmatch(r"/coupons/usage/\d+/(void/)?", link)]
    assert len(links) > 10
    for link in links:
        assert "status=available" in link and "cost_bearer=partner" in link, link
        assert "per_page=5" in link, link
    # A sort link swaps the sort and keeps the page; a page link swaps the page.
    assert "?status=available&amp;cost_bearer=partner&amp;sort=-code&amp;page=2&amp;per_page=5" \
        in links
    assert "?status=available&amp;cost_bearer=partner&amp;sort=code&amp;page=3&amp;per_page=5" \
        in links


def test_lazy_paging_has_no_count_and_a_next_link_only_before_the_end(client, world):
    client.force_login(world.admin)
    total = Coupon.objects.filter(partner=world.partner).count()
    assert total == 36
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(USAGE)
    assert not any("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)
    table = response.context["table"]
    assert type(table.paginator).__name__ == "BoundedLazyPaginator"
    first = normalised(table_html(response.content.decode()))
    assert '<li class="next page-item">' in first
    assert '<li class="previous page-item">' not in first
    last = normalised(table_html(client.get(USAGE, {"page": "2"}).content.decode()))
    assert '<li class="next page-item">' not in last
    assert '<li class="previous page-item">' in last
    assert sum(line.startswith("<tr class=") for line in last) == total - 25


def test_render_table_uses_the_lean_template_too(client, world):
    """`{% render_table table %}` (the table's Meta.template_name) gives the same table."""
    client.force_login(world.admin)
    response = client.get(USAGE, {"sort": "-amount", "page": "2"})
    table, request = response.context["table"], response.wsgi_request
    again = GENERIC.render(RequestContext(request, {"table": table}))
    assert normalised(again) == normalised(table_html(response.content.decode()))
