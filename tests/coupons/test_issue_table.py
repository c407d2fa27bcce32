"""Issue Coupon's account table: the lean template shows what django-tables2's generic
bootstrap5 template showed, cell for cell, link for link, escaped alike."""

import django_tables2 as tables
import pytest
from django.template import RequestContext, Template
from django.template.loader import get_template
from django.test import RequestFactory
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from accounts.models import SubAccount
from coupons import selectors
from coupons.tables import AccountTable
from tests import factories as f
from tests.html_compare import normalised

pytestmark = pytest.mark.django_db

HTML_NAME = '<script>alert("x")</script> & <b>bold</b>'
GENERIC = Template(
    '{% load django_tables2 %}'
    '{% render_table table "django_tables2/bootstrap5-responsive.html" %}'
)


class GenericAccountTable(AccountTable):
    """The table as it was rendered before the lean template: django-tables2's generic
    template, with the cell renderers the page had then (the reference)."""

    class Meta(AccountTable.Meta):
        template_name = "django_tables2/bootstrap5-responsive.html"

    def render_pick(self, record):
        if record.account_id in self.selected:
            return format_html(
                '<input type="checkbox" class="form-check-input pick" value="{}" checked '
                'disabled aria-label="Selected: untick to remove {}">',
                record.account_id, record.account_id,
            )
        if self.blocked_reason(record):
            return mark_safe(
                '<input type="checkbox" class="form-check-input" disabled '
                'aria-label="Not selectable">'
            )
        return format_html(
            '<input type="checkbox" class="form-check-input pick" name="pick" value="{}" '
            'aria-label="Select {}">',
            record.account_id, record.account_id,
        )

    def render_state(self, record):
        reason = self.blocked_reason(record)
        if record.account_id in self.selected:
            return mark_safe('<span class="badge text-bg-success">Selected</span>')
        if reason:
            return format_html('<span class="badge text-bg-secondary">Not selectable</span> '
                               '<small class="text-muted">{}</small>', reason)
        return ""


def render_both(template, params: dict, selected: set[str]) -> tuple[list[str], list[str]]:
    request = RequestFactory().get("/coupons/templates/1/issue/", params)
    out = []
    for table_class in (AccountTable, GenericAccountTable):
        accounts = selectors.issuable_sub_accounts(
            template=template, search=params.get("q", ""), type=params.get("type", ""),
        )
        table = table_class(accounts, template=template, selected=selected)
        tables.RequestConfig(request, paginate={"per_page": 25}).configure(table)
        if table_class is AccountTable:  # as issue.html includes it
            html = get_template("coupons/_account_table.html").render({"table": table}, request)
        else:
            html = GENERIC.render(RequestContext(request, {"table": table}))
        out.append(normalised(html))
    return out[0], out[1]


@pytest.fixture
def accounts(distributor, dist_admin, template):
    made = f.make_accounts(distributor, 60, prefix="TBL-", name="Table")
    f.make_accounts(distributor, 2, prefix="EUR-", name="Table euro", currency="EUR")
    SubAccount.objects.create(partner=distributor, account_id="TBL-HTML", name=HTML_NAME)
    SubAccount.objects.create(partner=distributor, account_id="TBL-NONAME", name="")
    f.make_tier2(distributor)
    f.submit(template, dist_admin, made[:4])  # holders of the "Limited to 1" template
    return made


@pytest.fixture
def template(distributor, dist_admin):
    return f.make_template(distributor, dist_admin, name="Limited cash")


@pytest.fixture
def platform_template(distributor, dist_admin):
    return f.make_template(distributor, dist_admin, name="Platform cash",
                           cost_bearer="platform")


PARAMS = [
    {},
    {"page": "2"},
    {"page": "3", "sort": "-account_id"},
    {"sort": "account_id", "per_page": "10", "page": "4"},
    {"sort": "-name"},
    {"sort": "type", "per_page": "100"},
    {"sort": "bogus"},
    {"page": "999"},
    {"page": "x"},
    {"q": "table", "type": "customer", "page": "2", "per_page": "5"},
    {"q": "<script>", "return": '"&<>'},
    {"q": "no such account"},
]


@pytest.mark.parametrize("params", PARAMS, ids=[str(p) for p in PARAMS])
def test_lean_table_matches_the_generic_template(template, accounts, params):
    selected = {accounts[5].account_id, accounts[30].account_id, "TBL-HTML"}
    lean, generic = render_both(template, params, selected)
    assert lean == generic


@pytest.mark.parametrize("params", PARAMS[:3], ids=[str(p) for p in PARAMS[:3]])
def test_lean_table_matches_for_a_platform_borne_template(platform_template, accounts, params):
    lean, generic = render_both(platform_template, {**params, "per_page": "100"}, set())
    assert lean == generic
    assert any("Tier-2 reseller: platform-borne" in line for line in lean)


def test_every_kind_of_row_is_covered(template, accounts):
    lean, _generic = render_both(template, {"per_page": "100"}, {accounts[5].account_id})
    html = "\n".join(lean)
    assert (f'value="{accounts[5].account_id}" checked disabled' in html
            and ">Selected</span>" in html)
    assert "Already holds this coupon or waits for it (Limited to 1)" in html
    assert "Billed in EUR" in html
    assert 'name="pick" value="TBL-000010"' in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script>" not in html
    assert "<td>—</td>" in html  # an account without a name
