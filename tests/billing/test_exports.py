"""Coupon Usage exports (CSV and XLSX): the filtered rows exactly, the partner's own rows
only, and names that look like spreadsheet formulas neutralised; names with HTML escaped on
the pages (QUALITY.md, Security: bad input, tenant isolation)."""
import io
import re
from datetime import date, datetime, time

import pytest
from django.utils import timezone

from billing.exports import neutralise
from coupons.models import Coupon
from tests import factories as f
from tests.billing import page_helpers as ph
from tests.billing.page_helpers import D

pytestmark = pytest.mark.django_db

USAGE = "/coupons/usage/"
HEADER = ["Code", "Sub-account ID", "Sub-account", "Template", "Cost bearer", "Currency",
          "Amount", "Used", "Remaining", "Voided", "Valid from", "Valid until", "Status",
          "Released", "Kind", "Discount rate (%)", "Cap per use", "Uses left", "Voided at",
          "Voided by", "Void reason"]
AMOUNT_COLUMNS = ("Amount", "Used", "Remaining", "Voided")
DATE_COLUMNS = ("Valid from", "Valid until", "Released")
FORMULA_NAMES = ['=HYPERLINK("http://x")', "@SUM(1)", "+1+2", "-3-4"]
HTML_NAME = '<script>alert("x")</script><b>bold</b>'
HTML_ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;"


def export(client, fmt: str, **params):
    response = client.get(USAGE, {**params, "_export": fmt})
    assert response.status_code == 200
    return response


def csv_export(client, **params) -> list[list[str]]:
    response = export(client, "csv", **params)
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="coupon-usage-')
    assert response["Content-Disposition"].endswith('.csv"')
    return ph.csv_rows(response)


def xlsx_export(client, **params):
    response = export(client, "xlsx", **params)
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert ".xlsx" in response["Content-Disposition"]
    return ph.xlsx_rows(response)


def expected_row(coupon: Coupon) -> list[str]:
    """The coupon's row as the CSV writes it: text."""
    voided_at = (f"{timezone.localtime(coupon.voided_at):%Y-%m-%d %H:%M}"
                 if coupon.voided_at else "")
    return [
        coupon.code, coupon.sub_account.account_id, coupon.sub_account.name,
        coupon.template.name, coupon.get_cost_bearer_display(), coupon.currency,
        f"{coupon.amount}", f"{ph.used(coupon)}", f"{coupon.balance}",
        f"{coupon.voided_amount}", f"{coupon.valid_from:%Y-%m-%d}",
        f"{coupon.valid_until:%Y-%m-%d}", coupon.get_status_display(),
        f"{timezone.localtime(coupon.released_at).date():%Y-%m-%d}",
        coupon.get_kind_display(), f"{coupon.discount_rate or ''}",
        f"{coupon.cap_per_use or ''}",
        "" if coupon.uses_available is None else f"{coupon.uses_available}",
        voided_at, coupon.voided_by.username if coupon.voided_by else "", coupon.void_reason,
    ]


def expected_cells(coupon: Coupon) -> list:
    """The coupon's row as openpyxl reads the XLSX back: amounts as numbers, dates and
    times as datetimes (a date cell has no time of day), empty cells as None."""
    def day(value: date) -> datetime:
        return datetime.combine(value, time())

    voided_at = timezone.localtime(coupon.voided_at).replace(
        tzinfo=None, second=0, microsecond=0) if coupon.voided_at else None
    return [
        coupon.code, coupon.sub_account.account_id, coupon.sub_account.name,
        coupon.template.name, coupon.get_cost_bearer_display(), coupon.currency,
        *(float(v) for v in (coupon.amount, ph.used(coupon), coupon.balance,
                             coupon.voided_amount)),
        day(coupon.valid_from), day(coupon.valid_until), coupon.get_status_display(),
        day(timezone.localtime(coupon.released_at).date()), coupon.get_kind_display(),
        *(None if v is None else float(v) for v in (coupon.discount_rate, coupon.cap_per_use)),
        coupon.uses_available, voided_at,
        coupon.voided_by.username if coupon.voided_by else None, coupon.void_reason or None,
    ]


def codes_of(rows) -> list[str]:
    return [row[0] for row in rows]


FILTERS = [
    {},
    {"template": "welcome"},
    {"status": "available"},
    {"sub_account": "beta"},
    {"cost_bearer": "platform"},
    {"status": "available", "sub_account": "CA-"},
    {"released_from": "today"},
    {"status": "used_up", "cost_bearer": "platform"},  # nothing matches
]


def resolve(world, params: dict) -> dict:
    params = dict(params)
    if params.get("template"):
        params["template"] = world.templates[params["template"]].pk
    if params.get("released_from") == "today":
        params["released_from"] = f"{world.today:%Y-%m-%d}"
    return params


class TestExports:
    """Exports of the shared World's distributor (and of Rival)."""

    def test_csv_export_has_the_header_and_exactly_the_filtered_rows(self, client, world):
        w = world
        client.force_login(w.admin)
        for params in FILTERS:
            params = resolve(w, params)
            shown = client.get(USAGE, params).context["table"].data.data
            expected = list(shown.order_by("-released_at", "-id"))
            rows = csv_export(client, **params)
            assert rows[0] == HEADER, params
            assert rows[1:] == [expected_row(c) for c in expected], params
        promo = w.coupons["a_promo"]
        [row] = csv_export(client, cost_bearer="platform")[1:]
        assert row[:10] == [promo.code, "CA-0001", "Alpha Co", "Platform promo", "Platform-borne",
                            "USD", "100.00", "12.50", "87.50", "0.00"]
        assert row[12] == "Available"


    def test_xlsx_export_has_the_header_and_exactly_the_filtered_rows(self, client, world):
        w = world
        client.force_login(w.admin)
        for params in FILTERS:
            params = resolve(w, params)
            expected = list(client.get(USAGE, params).context["table"].data.data
                            .order_by("-released_at", "-id"))
            values, _ = xlsx_export(client, **params)
            assert values[0] == HEADER, params
            assert values[1:] == [expected_cells(c) for c in expected], params

    def test_xlsx_stores_amounts_as_two_decimal_numbers_and_dates_as_date_cells(
        self, client, world,
    ):
        """A spreadsheet can sum the amounts and sort the dates: numeric cells written from
        the Decimal (format 0.00), date cells (yyyy-mm-dd; the void's time to the minute),
        text as text. The CSV keeps writing text, amounts with two decimals."""
        from openpyxl import load_workbook

        client.force_login(world.admin)
        book = load_workbook(io.BytesIO(ph.body(export(client, "xlsx"))))
        rows = list(book.worksheets[0].iter_rows())
        column = {cell.value: i for i, cell in enumerate(rows[0])}
        assert len(rows) > 3
        voided = 0
        for row in rows[1:]:
            for name in AMOUNT_COLUMNS:
                cell = row[column[name]]
                assert (cell.data_type, cell.number_format) == ("n", "0.00"), name
                assert isinstance(cell.value, int | float), name
            for name in DATE_COLUMNS:
                cell = row[column[name]]
                assert cell.is_date and cell.number_format == "yyyy-mm-dd", name
                assert isinstance(cell.value, datetime), name
            for name in ("Code", "Sub-account", "Status", "Kind"):
                assert row[column[name]].data_type == "s", name
            at = row[column["Voided at"]]
            if at.value is not None:
                voided += 1
                assert at.is_date and at.number_format == "yyyy-mm-dd hh:mm"
                assert row[column["Void reason"]].value == "Issued by mistake"
                assert row[column["Voided by"]].value == world.admin.username
        assert voided == 1
        # The amounts sum to the totals the page shows, to the cent.
        totals = {t["currency"]: t for t in client.get(USAGE).context["totals"]}
        assert D(str(round(sum(r[column["Amount"]].value for r in rows[1:]), 2))) == (
            totals["USD"]["amount"])
        csv_rows = csv_export(client)[1:]
        assert all(re.fullmatch(r"\d+\.\d\d", r[HEADER.index(name)])
                   for r in csv_rows for name in AMOUNT_COLUMNS)


    def test_exports_of_an_invalid_filter_hold_only_the_header(self, client, world):
        client.force_login(world.admin)
        for params in ({"released_from": "2025-13-45"}, {"status": "bogus"},
                       {"template": "not-an-id"}):
            assert csv_export(client, **params) == [HEADER], params
            assert xlsx_export(client, **params)[0] == [HEADER], params


    def test_exports_never_hold_another_partners_rows(self, client, world):
        w = world
        client.force_login(w.admin)
        foreign = [w.x_coupon.code, "XR-0009", "Xeno Corp", "Rival welcome"]
        text = ph.body(export(client, "csv")).decode("utf-8")
        assert not any(name in text for name in foreign)
        rows = csv_export(client)
        assert sorted(codes_of(rows[1:])) == sorted(c.code for c in w.partner_coupons())
        values, _ = xlsx_export(client)
        flat = {str(cell) for row in values for cell in row}
        assert not flat & set(foreign)
        assert sorted(codes_of(values[1:])) == sorted(c.code for c in w.partner_coupons())
        # Asking for the other partner's template or accounts gives no row of theirs.
        for params in ({"template": w.rival_template.pk}, {"sub_account": "XR-"},
                       {"sub_account": "Xeno"}):
            assert csv_export(client, **params) == [HEADER], params
            assert xlsx_export(client, **params)[0] == [HEADER], params

        client.force_login(w.rival_admin)
        assert codes_of(csv_export(client)[1:]) == [w.x_coupon.code]
        assert codes_of(xlsx_export(client)[0][1:]) == [w.x_coupon.code]


@pytest.fixture
def formula_coupons(distributor, dist_admin, bd):
    accounts = [ph.account(distributor, f"FX-{i:04d}", name)
                for i, name in enumerate(FORMULA_NAMES)]
    coupons = []
    for name in ("@SUM(1)", '=HYPERLINK("http://x")'):
        tpl = ph.template(distributor, dist_admin, name, face="10.00")
        coupons += ph.issue(tpl, dist_admin, bd, accounts)
    return coupons


def test_formula_like_names_are_neutralised_with_an_apostrophe_in_csv_and_xlsx(
    client, dist_admin, formula_coupons,
):
    client.force_login(dist_admin)
    rows = csv_export(client)[1:]
    values, types = xlsx_export(client)
    assert len(rows) == len(values) - 1 == len(formula_coupons) == 8
    for exported in (rows, values[1:]):
        names = {row[2] for row in exported}
        templates = {row[3] for row in exported}
        assert names == {"'" + name for name in FORMULA_NAMES}
        assert templates == {"'@SUM(1)", "'=HYPERLINK(\"http://x\")"}
        for row in exported:
            assert not any(str(cell).startswith(("=", "+", "-", "@")) for cell in row), row
    assert not any(t == "f" for row in types for t in row), "no cell may be stored as a formula"
    assert all(row[i] == "s" for row in types for i in (2, 3))  # the names stay text


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("Alpha =1", "Alpha =1"), ("", ""), (None, ""),
    (D("12.50"), "12.50"), ("'=already", "'=already"),
])
def test_neutralise_prefixes_only_formula_starts(value, expected):
    assert neutralise(value) == expected


def test_html_in_names_is_escaped_on_the_pages(client, distributor, dist_admin, bd):
    f.make_product("ecs")
    account = ph.account(distributor, "HT-0001", HTML_NAME)
    tpl = ph.template(distributor, dist_admin, HTML_NAME, face="10.00")
    [coupon] = ph.issue(tpl, dist_admin, bd, [account])
    client.force_login(dist_admin)
    pages = [client.get(USAGE), client.get(USAGE, {"sub_account": "HT-"}),
             client.get(f"/coupons/usage/{coupon.pk}/void/")]
    client.force_login(f.make_subaccount_user(account))
    pages.append(client.get("/billing/coupons/"))
    for response in pages:
        html = response.content.decode()
        assert response.status_code == 200
        assert HTML_ESCAPED in html, response.request["PATH_INFO"]
        assert HTML_NAME not in html and "<b>bold</b>" not in html
    # An export is a file, not HTML: the name comes out as it is.
    client.force_login(dist_admin)
    assert csv_export(client)[1][2] == HTML_NAME
