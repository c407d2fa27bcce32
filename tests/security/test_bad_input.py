"""Bad input (QUALITY "bad input", issue 5 item 7).

Hypothesis feeds generated bad values to the template create form, Issue Coupon's paste
box, pick list, actions and search, the void and reject reasons (and junk to cancel),
Coupon Usage's filters and exports, the admin's lists, the BD's budget field, the usage
upload and the sign-in form; then the hand-picked list of QUALITY.md: negative, zero, 3
decimal places, 10^20, NaN, dates reversed, unknown ids, 10,000 account IDs, HTML and
`=HYPERLINK(` in names — and the values the generated runs found to break something
(sNaN, a bare carriage return in a CSV, a release cap past the column, a NUL in a pick,
"²", a page number past bigint), kept here as regressions.

Every case: no 500; a bad value gives a 4xx, or a 200 with a message on the page; nothing
is written (rows counted and compared); markup comes back escaped; exported cells that
start like a formula are neutralised.

Each example runs in its own savepoint, rolled back after it, on the package's world.
"""
from __future__ import annotations

import csv
import io
import os
import re
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal, InvalidOperation

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from accounts.models import Partner, PlatformBudget
from couponplatform.money import CURRENCIES
from coupons.models import Coupon, CouponTemplate, IssuanceRequest
from tests import factories as f
from tests.factories import committed
from tests.security import walk
from tests.security.world import FORMULA_NAME, HTML_NAME

pytestmark = pytest.mark.django_db

# Small enough for CI; each example is one or two requests. The function-scoped fixtures
# are the package's autouse settings fixtures and `db`: every example rolls itself back.
# SECURITY_EXAMPLES=500 runs a deeper search (a nightly job, or before a release).
EXAMPLES = int(os.environ.get("SECURITY_EXAMPLES", "25"))
HYPOTHESIS = settings(
    max_examples=EXAMPLES, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Examples of several page loads each.
FEWER = settings(HYPOTHESIS, max_examples=max(EXAMPLES // 2, 1))

SCRIPT = "<script>xss("  # nothing the app renders itself contains this

# ---------------------------------------------------------------------------------------
# Strategies


def _is_good_money(text: str) -> bool:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return False
    return (value.is_finite() and Decimal("0") < value <= Decimal("1000000")
            and value == value.quantize(Decimal("0.01")))


markup = st.text(max_size=30).map(lambda t: f"{SCRIPT}{t})</script>")
formula = st.text(max_size=30).map(lambda t: f'=HYPERLINK("http://e.example/{t}","x")')
nasty_text = st.one_of(
    st.text(max_size=200), markup, formula,
    st.sampled_from(["", " ", "\t\n", "\x00", "a\x00b", "' OR 1=1 --", "%s%s%n", "{{ 7*7 }}",
                     "\u202e\u0000", "../../etc/passwd", "NaN", "Infinity", "-0", "-1", "0",
                     "99999999999999999999", "9223372036854775808", "1e308", "last",
                     "²", "١٢", "⑦", "¹²³"]),
)
bad_money = st.one_of(
    st.integers(max_value=0).map(str),  # negative and zero
    st.integers(min_value=1_000_001, max_value=10**30).map(str),  # past the cap
    st.builds(  # three and more decimal places
        lambda n, places: str(Decimal(n).scaleb(-places)),
        st.integers(min_value=1, max_value=10**9).filter(lambda n: n % 10),
        st.integers(min_value=3, max_value=12),
    ),
    st.sampled_from(["NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", "1e400", "1E-7",
                     "1,000.00", "--1", "1.2.3", "١٢", "0x10", "", " ", "10^20"]),
    st.text(max_size=20).filter(lambda t: not _is_good_money(t)),
).filter(lambda t: not _is_good_money(t))
bad_int = st.one_of(
    st.integers(max_value=0), st.integers(min_value=10**6),
    st.sampled_from(["", "1.5", "abc", "1e3", "NaN", "-", "٣"]),
).map(str)
bad_date = st.one_of(
    st.sampled_from(["2026-02-30", "0000-00-00", "99999-01-01", "1-1-1", "yesterday", "",
                     "2026-13-01", "2026/01/01x", "\x00"]),
    st.text(max_size=15),
)
unknown_ids = st.one_of(
    st.integers(min_value=10**6, max_value=10**18).map(str),
    st.integers(max_value=-1).map(str),
    st.text(max_size=12),
)


# ---------------------------------------------------------------------------------------
# Helpers


def signed_in(world, username: str | None) -> Client:
    client = Client()
    if username:
        client.cookies[django_settings.SESSION_COOKIE_NAME] = world.sessions[username]
    return client


@contextmanager
def rolled_back():
    """One example's writes, undone after it."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def text_of(response) -> str:
    return walk.body_text(response)


def assert_escaped(body: str, value: str) -> None:
    """Markup the user typed is shown as text, never as markup."""
    if SCRIPT in value:
        assert SCRIPT not in body, "user markup rendered unescaped"
    assert '<script>alert("x")' not in body
    assert "<img src=x onerror" not in body


def assert_refused(response, body: str) -> None:
    """A bad value: a 4xx, or the page again with a message."""
    assert response.status_code < 500
    if response.status_code == 200:
        assert re.search(r'alert-danger|invalid-feedback|errorlist|errornote|alert-warning',
                         body), "the page came back without saying what is wrong"
    else:
        assert 400 <= response.status_code < 500, response.status_code


def refused_template_post(world, post: dict) -> str:
    """The distributor posts `post` to the template form: refused, and nothing written.
    Returns the text of the page that came back."""
    before = f.db_state()
    response = signed_in(world, "distributor").post(reverse("coupons:template_create"), post)
    body = text_of(response)
    assert_refused(response, body)
    assert f.db_state() == before
    return body


def northwind() -> Partner:
    return Partner.objects.get(name="Northwind Distribution")


def nw_template(name: str) -> CouponTemplate:
    return CouponTemplate.objects.get(partner=northwind(), name=name)


GOOD_TEMPLATE = {
    "name": "Bad input base", "description": "", "kind": "cash", "currency": "USD",
    "face_value": "50.00", "validity_type": "relative", "valid_days": "30",
    "all_products": "on", "cost_bearer": "partner", "issue_limit": "one",
}
TEMPLATE_FIELDS = {
    # field → (bad values, the other fields that make it matter)
    "face_value": (bad_money, {}),
    "discount_rate": (bad_money.filter(lambda t: not _is_rate(t)),
                      {"kind": "discount", "discount_uses": "3"}),
    "discount_uses": (bad_int.filter(lambda t: not (t.isdigit() and 1 <= int(t) <= 1000)),
                      {"kind": "discount", "discount_rate": "10"}),
    "upper_limit": (bad_money, {"kind": "discount", "discount_rate": "10",
                                "discount_uses": "3"}),
    "min_bill_amount": (bad_money, {"kind": "threshold"}),
    "valid_days": (bad_int.filter(lambda t: not (t.isdigit() and 1 <= int(t) <= 1095)), {}),
    "valid_from": (bad_date, {"validity_type": "fixed", "valid_until": "2030-01-01"}),
    "valid_until": (bad_date, {"validity_type": "fixed", "valid_from": "2020-01-01"}),
    "products": (unknown_ids, {"all_products": ""}),
    "release_cap_count": (bad_int.filter(lambda t: t not in ("",) and not (
        t.isdigit() and int(t) > 0 and int(t) < 2**31)), {}),
    "release_cap_amount": (bad_money.filter(lambda t: t.strip() != ""), {}),
    "kind": (nasty_text, {}),
    "currency": (nasty_text, {}),
    "cost_bearer": (nasty_text, {}),
    "issue_limit": (nasty_text, {}),
    "validity_type": (nasty_text, {}),
    "name": (st.one_of(st.sampled_from(["", " ", "\x00"]), st.text(min_size=121, max_size=300)),
             {}),
    "description": (st.text(min_size=2001, max_size=2100), {}),
}


def _is_rate(text: str) -> bool:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return False
    return value.is_finite() and 1 <= value <= 99 and value == value.quantize(Decimal("0.01"))


# ---------------------------------------------------------------------------------------
# Template create form


@HYPOTHESIS
@given(data=st.data())
def test_template_form_refuses_bad_values(world, data):
    field = data.draw(st.sampled_from(sorted(TEMPLATE_FIELDS)), label="field")
    values, context = TEMPLATE_FIELDS[field]
    value = data.draw(values, label=field)
    if field == "kind":
        assume(value not in ("cash", "threshold", "discount"))
    if field == "currency":
        assume(value.strip() not in {code for code, _label in CURRENCIES})
    if field in ("cost_bearer", "issue_limit", "validity_type"):
        assume(value not in ("partner", "platform", "one", "unlimited", "fixed", "relative"))
    if field == "name":
        assume(not value.strip() or len(value) > 120 or "\x00" in value)
    post = {**GOOD_TEMPLATE, **context, field: value}
    with rolled_back():
        assert_escaped(refused_template_post(world, post), value)


def test_template_form_dates_reversed(world):
    today = timezone.localdate()
    post = {**GOOD_TEMPLATE, "validity_type": "fixed",
            "valid_from": (today + timedelta(days=10)).isoformat(),
            "valid_until": today.isoformat()}
    refused_template_post(world, post)


@pytest.mark.parametrize("field", ["face_value", "release_cap_amount", "min_bill_amount"])
@pytest.mark.parametrize("value", ["-1", "-0.01", "0", "1.005", "100000000000000000000",
                                   "1e20", "NaN", "Infinity", "-Infinity"])
def test_template_form_handpicked_money(world, field, value):
    post = {**GOOD_TEMPLATE, field: value}
    if field == "min_bill_amount":
        post["kind"] = "threshold"
    refused_template_post(world, post)


@pytest.mark.parametrize("field", ["release_cap_count", "discount_uses", "valid_days"])
@pytest.mark.parametrize("value", ["0", "-1", "2147483648", "100000000000000000000", "1.5",
                                   "NaN", "1e3"])
def test_template_form_handpicked_counts(world, field, value):
    post = {**GOOD_TEMPLATE, field: value}
    if field == "discount_uses":
        post.update(kind="discount", discount_rate="10")
    refused_template_post(world, post)


def test_template_form_unknown_product_ids(world):
    post = {**GOOD_TEMPLATE, "all_products": "", "products": ["999999999", "-1", "ecs"]}
    refused_template_post(world, post)


@pytest.mark.parametrize("name", [HTML_NAME, FORMULA_NAME, "<b>bold</b> & \"quoted\""])
def test_template_names_with_markup_are_escaped(world, name):
    """A name with markup is a valid name: stored as typed, shown as text everywhere."""
    client = signed_in(world, "distributor")
    response = client.post(reverse("coupons:template_create"), {**GOOD_TEMPLATE, "name": name})
    assert response.status_code == 302
    tpl = CouponTemplate.objects.get(partner=northwind(), name=name)
    for url in (reverse("coupons:template_list"), tpl.get_absolute_url(),
                reverse("coupons:issue", args=[tpl.pk]), reverse("coupon_usage")):
        body = client.get(url).content.decode()
        assert name not in body or "<" not in name, url
        assert_escaped(body, name)


# ---------------------------------------------------------------------------------------
# Issue Coupon: the paste box, the pick list, the actions, the search


# Accounts that are wrong for a Northwind template: other tenants', a reseller's customer
# (not the distributor's), made-up ones; and per template, those its rules refuse.
WRONG_EVERYWHERE = ["ZF000001", "ZFC000001", "BB000001", "T1C000001", "QP000001",
                    "NOPE00001", "nw000045", " NW000045x", "NW0000451"]
WRONG_FOR = {
    "Welcome cash 50": ["NW000001", "NW000030"],  # holds it; waits for it (Limited to 1)
    "POC credit 500 (platform)": ["T2000001", "NW000021"],  # tier-2 reseller; waits for it
    "Spend 200 save 20 on ECS": [],
}


def id_lists(template):
    return st.lists(st.one_of(st.sampled_from(WRONG_EVERYWHERE + WRONG_FOR[template]),
                              st.text(max_size=12), markup), max_size=40)


separators = st.sampled_from(["\n", ",", " ", ";", "\r\n", "\t", ",,;;  "])


@HYPOTHESIS
@given(data=st.data(), template=st.sampled_from(sorted(WRONG_FOR)),
       action=st.one_of(st.sampled_from(["paste", "add", "remove", "confirm", "clear"]),
                        nasty_text),
       sep=separators, return_query=nasty_text)
def test_issue_actions_refuse_bad_input(world, data, template, action, sep, return_query):
    ids = data.draw(id_lists(template), label="ids")
    client = signed_in(world, "distributor")
    with rolled_back():
        tpl = nw_template(template)
        url = reverse("coupons:issue", args=[tpl.pk])
        before = f.db_state()
        response = client.post(url, {"action": action, "account_ids": sep.join(ids),
                                     "pick": ids, "account_id": ids,
                                     "return_query": return_query})
        assert response.status_code in (302, 400, 403), response.status_code
        page = client.get(url)
        body = page.content.decode()
        assert page.status_code == 200
        for value in ids + [action]:
            assert_escaped(body, value)
        # Bad accounts are never selected, so confirming them writes nothing.
        assert client.session.get(f"issue_selection:{tpl.pk}", []) == []
        confirm = client.post(url, {"action": "confirm"})
        assert confirm.status_code in (302, 400, 403)
        assert f.db_state() == before


@HYPOTHESIS
@given(q=nasty_text, type_=nasty_text, page=nasty_text, sort=nasty_text)
def test_issue_search_survives_bad_queries(world, q, type_, page, sort):
    client = signed_in(world, "distributor")
    tpl = nw_template("Welcome cash 50")
    response = client.get(reverse("coupons:issue", args=[tpl.pk]),
                          {"q": q, "type": type_, "page": page, "sort": sort})
    assert response.status_code in (200, 400, 404)
    body = response.content.decode()
    assert_escaped(body, q)
    assert "ZF000001" not in walk.shown_text(response)


def test_issue_paste_of_10000_unknown_ids(world):
    client = signed_in(world, "distributor")
    tpl = nw_template("Welcome cash 50")
    url = reverse("coupons:issue", args=[tpl.pk])
    before = f.db_state()
    ids = [f"UNKNOWN{i:06d}" for i in range(10_000)]
    response = client.post(url, {"action": "paste", "account_ids": "\n".join(ids)})
    assert response.status_code == 302
    body = client.get(url).content.decode()
    assert "not among your sub-accounts" in body
    assert client.session.get(f"issue_selection:{tpl.pk}", []) == []
    assert f.db_state() == before


def test_issue_paste_of_10001_ids_is_too_many(world):
    client = signed_in(world, "distributor")
    tpl = nw_template("Welcome cash 50")
    url = reverse("coupons:issue", args=[tpl.pk])
    ids = [f"NW{i:06d}" for i in range(1, 10_002)]
    response = client.post(url, {"action": "paste", "account_ids": ",".join(ids)})
    assert response.status_code == 302
    body = client.get(url).content.decode()
    assert "at most 10,000" in body
    assert client.session.get(f"issue_selection:{tpl.pk}", []) == []


@pytest.mark.parametrize("picks", [["\x00"], ["NW000045\x00"], ["N" * 40], ["²"]])
def test_issue_add_refuses_impossible_ids(world, picks):
    """Picks no account can have (a NUL byte, past the column's length) are unknown."""
    client = signed_in(world, "distributor")
    tpl = nw_template("Welcome cash 50")
    url = reverse("coupons:issue", args=[tpl.pk])
    before = f.db_state()
    response = client.post(url, {"action": "add", "pick": picks})
    assert response.status_code == 302
    assert "not among your sub-accounts" in client.get(url).content.decode()
    assert f.db_state() == before


@pytest.mark.parametrize(("url", "params"), [
    ("/coupons/templates/", {"q": "²"}),
    ("/admin/approvals/pendingrequest/", {"partner": "²"}),
    ("/admin/coupons/issuancerequest/", {"partner": "¹²"}),
])
def test_unicode_digits_in_filters(world, url, params):
    """"²" is a digit to str.isdigit() and not a number to int()."""
    username = "bd" if url.startswith("/admin/") else "distributor"
    assert signed_in(world, username).get(url, params).status_code == 200


def test_issue_confirm_with_a_forged_selection_writes_nothing(world):
    """A session selection holding another tenant's and a tier-2 account (as if the checks
    at add time were skipped) is refused at confirm, naming them."""
    client = signed_in(world, "distributor")
    tpl = nw_template("POC credit 500 (platform)")
    session = client.session
    session[f"issue_selection:{tpl.pk}"] = ["ZF000001", "T2000001", "NW000050"]
    session.save()
    before = f.db_state()
    response = client.post(reverse("coupons:issue", args=[tpl.pk]), {"action": "confirm"})
    assert response.status_code == 302
    body = client.get(reverse("coupons:issue", args=[tpl.pk])).content.decode()
    assert "ZF000001" in body and "T2000001" in body
    assert f.db_state() == before


# ---------------------------------------------------------------------------------------
# Reasons: void, reject, and junk to cancel


bad_reasons = st.one_of(
    st.sampled_from(["", " ", "\n\t ", "\x00", "ok\x00"]),
    st.text(min_size=2001, max_size=2300),
    st.text(alphabet=" \t\r\n", max_size=30),
)


@HYPOTHESIS
@given(reason=bad_reasons)
def test_void_reason_refuses_bad_values(world, reason):
    client = signed_in(world, "distributor")
    with rolled_back():
        coupon = Coupon.objects.filter(partner=northwind(), status="available").first()
        before = f.db_state()
        response = client.post(reverse("coupon_void", args=[coupon.pk]), {"reason": reason})
        assert_refused(response, text_of(response))
        assert f.db_state() == before


@FEWER
@given(reason=st.one_of(markup, formula, st.text(min_size=1, max_size=200)))
def test_void_reason_is_kept_and_escaped(world, reason):
    assume(reason.strip() and "\x00" not in reason)
    client = signed_in(world, "distributor")
    with rolled_back():
        coupon = Coupon.objects.filter(partner=northwind(), status="available").first()
        response = client.post(reverse("coupon_void", args=[coupon.pk]), {"reason": reason})
        assert response.status_code == 302
        coupon.refresh_from_db()
        assert coupon.status == Coupon.Status.VOIDED
        body = client.get(reverse("coupon_usage"),
                          {"sub_account": coupon.sub_account.account_id}).content.decode()
        assert_escaped(body, reason)


@HYPOTHESIS
@given(reason=bad_reasons)
def test_reject_reason_refuses_bad_values(world, reason):
    client = signed_in(world, "bd")
    with rolled_back():
        req = IssuanceRequest.objects.filter(partner=northwind(), status="pending").first()
        before = f.db_state()
        response = client.post(
            reverse("admin:approvals_pendingrequest_reject", args=[req.pk]), {"reason": reason})
        assert response.status_code == 200
        body = response.content.decode()
        assert "Give a reason" in body or "errorlist" in body
        assert f.db_state() == before


@FEWER
@given(reason=st.one_of(markup, formula))
def test_reject_reason_is_escaped_for_the_partner(world, reason):
    assume("\x00" not in reason)  # refused like any other bad reason (tested above)
    with rolled_back():
        req = IssuanceRequest.objects.filter(partner=northwind(), status="pending").first()
        response = signed_in(world, "bd").post(
            reverse("admin:approvals_pendingrequest_reject", args=[req.pk]), {"reason": reason})
        assert response.status_code == 302
        req.refresh_from_db()
        assert req.status == "rejected"
        for username, url in (("distributor", req.get_absolute_url()),
                              ("distributor", reverse("approvals:list")),
                              ("bd", reverse("admin:coupons_issuancerequest_change",
                                             args=[req.pk]))):
            body = signed_in(world, username).get(url).content.decode()
            assert_escaped(body, reason)


@HYPOTHESIS
@given(junk=st.dictionaries(nasty_text, nasty_text, max_size=5))
def test_cancel_ignores_junk(world, junk):
    client = signed_in(world, "distributor")
    with rolled_back():
        req = IssuanceRequest.objects.filter(partner=northwind(), status="pending").first()
        response = client.post(reverse("approvals:cancel", args=[req.pk]), junk)
        assert response.status_code == 302
        req.refresh_from_db()
        assert req.status == "cancelled"


# ---------------------------------------------------------------------------------------
# Coupon Usage: filters, sorting, paging, exports


@HYPOTHESIS
@given(params=st.fixed_dictionaries({}, optional={
    "template": unknown_ids, "sub_account": nasty_text, "status": nasty_text,
    "cost_bearer": nasty_text, "released_from": bad_date, "released_to": bad_date,
    "valid_until_from": bad_date, "valid_until_to": bad_date, "page": nasty_text,
    "sort": nasty_text, "_export": st.sampled_from(["csv", "xlsx", "pdf", ""]),
}))
def test_coupon_usage_filters_survive_bad_values(world, params):
    client = signed_in(world, "viewer")
    response = client.get(reverse("coupon_usage"), params)
    assert response.status_code in (200, 400, 404)
    body = walk.body_text(response)
    for value in params.values():
        assert_escaped(body, value)
    markers = world.cache.setdefault(
        "viewer-markers", walk.markers_outside(world.scopes["viewer"]))
    assert not walk.leaks(walk.shown_text(response, body), markers, walk.sent_values(params))


def test_coupon_usage_dates_reversed_show_nothing(world):
    client = signed_in(world, "distributor")
    today = timezone.localdate()
    response = client.get(reverse("coupon_usage"), {
        "released_from": today.isoformat(),
        "released_to": (today - timedelta(days=30)).isoformat(),
    })
    assert response.status_code == 200
    assert not Coupon.objects.filter(partner=northwind()).filter(
        code__in=re.findall(r"CP[A-Z2-9]{14}", response.content.decode())).exists()


def test_coupon_usage_unknown_template_id(world):
    response = signed_in(world, "distributor").get(
        reverse("coupon_usage"), {"template": "999999999"})
    assert response.status_code == 200
    assert not re.findall(r"CP[A-Z2-9]{14}", response.content.decode())


# ---------------------------------------------------------------------------------------
# The usage upload (platform operators) and the sign-in form


csv_lines = st.lists(
    st.one_of(
        st.text(max_size=60),
        st.builds(lambda a, d, p, m: f"{a},{d},{p},{m}",
                  st.sampled_from(["NW000004", "ZF000001", "NOPE", "", FORMULA_NAME]),
                  bad_date, st.sampled_from(["ecs", "nope", "", "=1+1"]), bad_money),
    ),
    max_size=20,
)


@HYPOTHESIS
@given(header=st.sampled_from(["account_id,date,product_code,amount,currency",
                               "account_id,date,product_code,amount", "", "a,b"]),
       lines=csv_lines, raw=st.one_of(st.none(), st.binary(max_size=300)))
def test_usage_upload_refuses_bad_files(world, header, lines, raw):
    content = raw if raw is not None else ("\n".join([header, *lines])).encode()
    upload = io.BytesIO(content)
    upload.name = "bad.csv"
    with rolled_back():
        before = f.db_state()
        response = signed_in(world, "root").post(reverse("admin:billing_usageimport_upload"),
                                                 {"file": upload})
        assert response.status_code == 200, response.status_code
        body = response.content.decode()
        assert "errornote" in body or "errorlist" in body or "error" in body
        assert f.db_state() == before
        for line in lines:
            assert_escaped(body, line)


@pytest.mark.parametrize("content", [
    b"account_id,date,product_code,amount\nNW000004,2026-01-01\r,ecs,1.00\n",  # a bare CR
    b"account_id,date,product_code,amount\n" + b"x" * 200_000 + b",2026-01-01,ecs,1\n",
    b"account_id,date,product_code,amount\n\"unterminated,2026-01-01,ecs,1\n",
    b"\xff\xfe\x00a\x00b", b"\x00" * 50, b"",
])
def test_usage_upload_handpicked(world, content):
    upload = io.BytesIO(content)
    upload.name = "bad.csv"
    before = f.db_state()
    response = signed_in(world, "root").post(reverse("admin:billing_usageimport_upload"),
                                             {"file": upload})
    assert response.status_code == 200
    assert f.db_state() == before


@HYPOTHESIS
@given(username=nasty_text, password=nasty_text)
def test_sign_in_refuses_bad_values(world, username, password):
    with rolled_back():
        before = f.db_state()
        response = Client().post(reverse("login"), {"username": username,
                                                    "password": password})
        assert response.status_code in (200, 429)
        body = response.content.decode()
        if response.status_code == 200:
            assert_refused(response, body)
        assert_escaped(body, username)
        assert f.db_state() == before


# ---------------------------------------------------------------------------------------
# Every list's paging: page numbers past what the database can count to


EXTREME_PAGES = ["99999999999999999999", "9223372036854775808", "-1", "0", "1e308", "2.5"]


def _lists_for(world, username):
    """The URLconf's pages without parameters that this user gets a 200 from."""
    client = signed_in(world, username)
    found = []
    for endpoint in walk.endpoints():
        if endpoint.params or endpoint.name in ("logout", "admin:logout"):
            continue
        try:
            url = walk.build_url(endpoint, {})
        except walk.Shadowed:
            continue  # an earlier pattern answers this URL; it is walked as that one
        if client.get(url).status_code == 200:
            found.append(url)
    return found


@pytest.mark.parametrize("username", ["distributor", "customer", "bd"])
def test_lists_survive_extreme_page_numbers(world, username):
    client = signed_in(world, username)
    urls = _lists_for(world, username)
    assert len(urls) >= 3
    for url in urls:
        for page in EXTREME_PAGES:
            with transaction.atomic():
                response = client.get(url, {"page": page, "p": page})
                transaction.set_rollback(True)
            assert response.status_code in (200, 302, 404), (url, page, response.status_code)


# ---------------------------------------------------------------------------------------
# The admin's lists: search, ordering, paging, filters


def _changelists() -> list[str]:
    from django.contrib import admin

    return sorted(
        reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist")
        for m in admin.site._registry
    )


@HYPOTHESIS
@given(url=st.sampled_from(_changelists()), q=nasty_text, o=nasty_text, p=nasty_text,
       partner=unknown_ids, when=bad_date)
def test_admin_lists_survive_bad_queries(world, url, q, o, p, partner, when):
    params = {"q": q, "o": o, "p": p, "partner": partner, "submitted_at__gte": when,
              "status__exact": q}
    response = signed_in(world, "bd").get(url, params)
    assert response.status_code in (200, 302, 403)
    body = response.content.decode()
    assert_escaped(body, q)
    markers = world.cache.setdefault("bd-markers", walk.markers_outside(world.scopes["bd"]))
    assert not walk.leaks(walk.shown_text(response, body), markers, walk.sent_values(params))


# ---------------------------------------------------------------------------------------
# The BD's budget field in the admin


def _budget_post(partner: Partner, amount: str) -> dict:
    budget = PlatformBudget.objects.get(partner=partner, currency="USD")
    return {
        "coupon_enabled": "on" if partner.coupon_enabled else "",
        "requires_bd_approval": "on" if partner.requires_bd_approval else "",
        "budgets-TOTAL_FORMS": "1", "budgets-INITIAL_FORMS": "1",
        "budgets-MIN_NUM_FORMS": "0", "budgets-MAX_NUM_FORMS": "1000",
        "budgets-0-id": budget.pk, "budgets-0-partner": partner.pk,
        "budgets-0-currency": "USD", "budgets-0-amount": amount, "_save": "Save",
    }


def _post_budget(world, amount: str):
    partner = northwind()
    return signed_in(world, "bd").post(
        reverse("admin:accounts_partner_change", args=[partner.pk]),
        {k: v for k, v in _budget_post(partner, amount).items() if v != ""})


def _budget_refused(response) -> None:
    assert response.status_code == 200, response.status_code
    assert "errornote" in response.content.decode() or "errorlist" in response.content.decode()


def _is_good_budget(text: str) -> bool:
    from accounts.services import BUDGET_MAX

    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return False
    return (value.is_finite() and 0 <= value <= BUDGET_MAX
            and value == value.quantize(Decimal("0.01")))


@HYPOTHESIS
@given(amount=st.one_of(
    st.integers(max_value=-1).map(str),
    st.integers(min_value=10**16, max_value=10**40).map(str),
    st.builds(lambda n, p: str(Decimal(n).scaleb(-p)),
              st.integers(min_value=1, max_value=10**9).filter(lambda n: n % 10),
              st.integers(min_value=3, max_value=10)),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "sNaN", "", "abc", "1,000", "\x00"]),
    st.text(max_size=15),
).filter(lambda t: not _is_good_budget(t)))
def test_admin_budget_refuses_bad_values(world, amount):
    with rolled_back():
        before = f.db_state()
        _budget_refused(_post_budget(world, amount))
        assert f.db_state() == before


@pytest.mark.parametrize("amount", ["-1", "-0.01", "1.005", "100000000000000000000", "NaN", "sNaN",
                                    "Infinity", "10^20", "<script>xss(1)</script>"])
def test_admin_budget_handpicked(world, amount):
    before = f.db_state()
    response = _post_budget(world, amount)
    _budget_refused(response)
    assert_escaped(response.content.decode(), amount)
    assert f.db_state() == before


# ---------------------------------------------------------------------------------------
# Approving unknown ids; exporting formula names


@pytest.mark.parametrize("pk", ["999999999", "0"])
def test_admin_approve_unknown_id(world, pk):
    before = f.db_state()
    response = signed_in(world, "bd").post(f"/admin/approvals/pendingrequest/{pk}/approve/")
    assert response.status_code == 404
    assert f.db_state() == before


def _issue_to_formula_account(world) -> CouponTemplate:
    """A template named like a formula, issued to the account named like one."""
    from approvals.services import approval_approve
    from coupons.services import coupon_template_create, issuance_request_submit

    distributor = world.users["distributor"]
    tpl = coupon_template_create(
        partner=northwind(), acting_user=distributor, name=FORMULA_NAME, kind="cash",
        currency="USD", face_value=Decimal("5.00"), cost_bearer="partner",
        issue_limit="one", validity_type="relative", valid_days=30,
    )
    with committed():
        req = issuance_request_submit(template=tpl, acting_user=distributor,
                                      account_ids=[world.formula_account.account_id,
                                                   world.html_account.account_id])
    with committed():
        approval_approve(request_id=req.pk, acting_user=world.users["bd"])
    assert Coupon.objects.filter(template=tpl).count() == 2
    return tpl


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def test_csv_export_neutralises_formula_cells(world):
    tpl = _issue_to_formula_account(world)
    response = signed_in(world, "distributor").get(
        reverse("coupon_usage"), {"_export": "csv", "template": tpl.pk})
    assert response.status_code == 200
    rows_ = list(csv.reader(io.StringIO(walk.body_text(response).lstrip("\ufeff"))))
    assert len(rows_) == 3
    cells = [cell for row in rows_[1:] for cell in row]
    assert "'" + FORMULA_NAME in cells  # the template and the account name, neutralised
    assert not [c for c in cells if c.startswith(FORMULA_START)], cells
    assert HTML_NAME in cells  # CSV is data, not markup: kept as typed


def test_xlsx_export_neutralises_formula_cells(world):
    from openpyxl import load_workbook

    tpl = _issue_to_formula_account(world)
    response = signed_in(world, "distributor").get(
        reverse("coupon_usage"), {"_export": "xlsx", "template": tpl.pk})
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = book.worksheets[0]
    cells = [c for row in sheet.iter_rows(min_row=2) for c in row if c.value is not None]
    assert len({c.row for c in cells}) == 2
    assert not [c.coordinate for c in cells if c.data_type == "f"], "a formula cell"
    assert not [c.value for c in cells
                if isinstance(c.value, str) and c.value.startswith(FORMULA_START)]


def test_pages_escape_account_names(world):
    """The markup-named account on every page that lists accounts or coupons."""
    tpl = _issue_to_formula_account(world)
    client = signed_in(world, "distributor")
    for url, params in ((reverse("coupons:issue", args=[tpl.pk]), {"q": "NWHTML"}),
                        (reverse("coupon_usage"), {"template": tpl.pk}),
                        (IssuanceRequest.objects.filter(template=tpl).get().get_absolute_url(),
                         {})):
        body = client.get(url, params).content.decode()
        assert "NWHTML0001" in body, url
        assert_escaped(body, HTML_NAME)
    admin_body = signed_in(world, "bd").get(
        reverse("admin:accounts_subaccount_changelist"), {"q": "NWHTML"}).content.decode()
    assert "NWHTML0001" in admin_body
    assert_escaped(admin_body, HTML_NAME)

