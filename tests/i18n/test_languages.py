"""English and Simplified Chinese (PRODUCT §14): the header's switch keeps a signed-in
user's choice on their user and in the cookie, sign-in applies it, anonymous visitors get
their browser's Accept-Language; dates and amounts read the same in both languages and
amounts typed into forms are read the same way; mails go out in their recipient's
language and exports in the exporting user's."""
import json
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import ValidationError
from django.template import Context, Template
from django.test import Client
from django.utils import formats, timezone, translation

from billing import views as usage_views
from couponplatform.fields import AmountField
from couponplatform.languages import in_language
from couponplatform.money import AmountFormatError, parse_amount
from couponplatform.times import moment_text
from tests import factories as f
from tests.billing import page_helpers as ph

pytestmark = pytest.mark.django_db

User = get_user_model()
COOKIE = settings.LANGUAGE_COOKIE_NAME
TEMPLATES = "/coupons/templates/"


def chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.fixture
def shop():
    return f.make_shop(3, prefix="L-", admin="lang-admin", operator="lang-operator")


def signed_in(user, **headers) -> Client:
    client = Client(headers=headers)
    client.force_login(user)
    return client


# ---------------------------------------------------------------------------------------
# The switch


def test_anonymous_visitors_get_their_browsers_language():
    chinese_page = Client(headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.5"}).get(
        "/accounts/login/")
    text = chinese_page.content.decode()
    assert '<html lang="zh-hans">' in text and "登录" in text and "Sign in" not in text
    assert chinese_page["Content-Language"] == "zh-hans"
    english = Client(headers={"accept-language": "en-GB,en;q=0.8"}).get("/accounts/login/")
    assert '<html lang="en">' in english.content.decode() and "Sign in" in english.content.decode()
    assert "Accept-Language" in english["Vary"]
    # No header at all: English, the default.
    assert "Sign in" in Client().get("/accounts/login/").content.decode()


def test_the_login_page_has_the_switch_and_it_sets_the_cookie():
    client = Client()
    page = client.get("/accounts/login/").content.decode()
    assert 'action="/i18n/setlang/"' in page and 'value="zh-hans"' in page
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/accounts/login/"})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.cookies[COOKIE].value == "zh-hans"
    assert "登录" in client.get("/accounts/login/").content.decode()


def test_the_switch_round_trips_on_the_user_and_in_the_cookie(shop):
    client = signed_in(shop.admin)
    assert "Coupon templates" in client.get(TEMPLATES).content.decode()

    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": TEMPLATES})
    assert (response.status_code, response["Location"]) == (302, TEMPLATES)
    shop.admin.refresh_from_db()
    assert shop.admin.language == "zh-hans"
    assert client.cookies[COOKIE].value == "zh-hans"
    page = client.get(TEMPLATES).content.decode()
    assert "优惠券模板" in page and "Coupon templates" not in page
    assert '<html lang="zh-hans">' in page

    client.post("/i18n/setlang/", {"language": "en", "next": TEMPLATES})
    shop.admin.refresh_from_db()
    assert shop.admin.language == "en"
    assert client.cookies[COOKIE].value == "en"
    page = client.get(TEMPLATES).content.decode()
    assert "Coupon templates" in page and "优惠券模板" not in page


def test_a_language_the_platform_does_not_have_changes_nothing(shop):
    client = signed_in(shop.admin)
    client.post("/i18n/setlang/", {"language": "fr", "next": TEMPLATES})
    shop.admin.refresh_from_db()
    assert shop.admin.language == ""
    assert "Coupon templates" in client.get(TEMPLATES).content.decode()
    assert client.get("/i18n/setlang/").status_code == 405


def test_the_users_choice_follows_them_to_another_browser_and_wins_over_its_cookie(shop):
    User.objects.filter(pk=shop.admin.pk).update(language="zh-hans")
    client = signed_in(User.objects.get(pk=shop.admin.pk), **{"accept-language": "en"})
    client.cookies[COOKIE] = "en"
    assert "优惠券模板" in client.get(TEMPLATES).content.decode()


def test_signing_in_applies_the_users_language(shop):
    User.objects.filter(pk=shop.admin.pk).update(language="zh-hans")
    client = Client(headers={"accept-language": "en"})
    response = client.post("/accounts/login/", {"username": "lang-admin", "password": "pw"})
    assert response.status_code == 302
    assert client.cookies[COOKIE].value == "zh-hans"
    assert "优惠券模板" in client.get(TEMPLATES).content.decode()
    # A user who never chose keeps the browser's language: no cookie is forced on them.
    other = Client(headers={"accept-language": "zh-hans"})
    other.post("/accounts/login/", {"username": "lang-operator", "password": "pw"})
    assert COOKIE not in other.cookies
    assert "优惠券模板" in other.get(TEMPLATES).content.decode()


def test_the_admin_has_the_switch_and_speaks_chinese(shop):
    client = signed_in(shop.bd)
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/"})
    page = client.get("/admin/").content.decode()
    assert 'action="/i18n/setlang/"' in page
    assert "优惠券管理 — BD 管理后台" in page
    login = Client(headers={"accept-language": "zh-hans"}).get("/admin/login/").content.decode()
    assert 'action="/i18n/setlang/"' in login


def test_the_scripts_catalog_is_in_the_pages_language():
    bill_day = json.dumps("账单日")[1:-1]  # as the catalog's JSON writes it
    chinese_catalog = Client(headers={"accept-language": "zh-hans"}).get("/i18n/js/")
    assert chinese_catalog.status_code == 200
    assert bill_day in chinese_catalog.content.decode()
    assert bill_day not in Client().get("/i18n/js/").content.decode()


# ---------------------------------------------------------------------------------------
# Dates and amounts


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_dates_stay_iso_and_amounts_two_decimals_grouped_by_three(language):
    moment = timezone.make_aware(datetime(2026, 6, 17, 10, 5))
    page = Template(
        "{% load humanize money %}{{ day }}|{{ day|date:'SHORT_DATE_FORMAT' }}|{{ moment }}|"
        "{{ value|floatformat:2 }}|{{ big|intcomma }}|{{ value|amount:'CNY' }}"
    )
    with translation.override("en"):
        minute = moment_text(moment)  # "2026-06-17 10:05 +08" in Asia/Singapore
    with translation.override(language):
        text = page.render(Context({"day": date(2026, 6, 17), "moment": moment,
                                    "value": Decimal("1234567.5"), "big": 1234567}))
        assert formats.date_format(date(2026, 6, 17)) == "2026-06-17"
        assert moment_text(moment) == minute
        assert formats.number_format(Decimal("1234.5"), 2, use_l10n=True,
                                     force_grouping=True) == "1,234.50"
    assert minute.startswith("2026-06-17 10:05")
    assert text == (f"2026-06-17|2026-06-17|{minute}|1234567.50|1,234,567|"
                    '<span class="amount">1,234,567.50 CNY</span>')


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_an_amount_typed_into_a_form_is_read_the_same_in_both_languages(language):
    field = AmountField(max_digits=18, decimal_places=2)
    with translation.override(language):
        assert field.clean("1000.50") == Decimal("1000.50")
        assert field.clean(" 1000 ") == Decimal("1000")
        assert parse_amount("1,000.50", thousands=True) == Decimal("1000.50")
        for text in ("1,000.50", "1.000,50", "1 000,50", "1000,50", "１０００"):
            with pytest.raises(ValidationError) as refused:
                field.clean(text)
            assert refused.value.code == "invalid", text
            with pytest.raises(AmountFormatError):
                parse_amount(text)


def test_a_date_typed_the_chinese_way_is_refused_in_both_languages():
    from couponplatform.dates import PlatformDateField

    field = PlatformDateField()
    for language in ("en", "zh-hans"):
        with translation.override(language):
            assert field.clean("2026-06-17") == date(2026, 6, 17)
            for text in ("2026/06/17", "2026年6月17日"):
                with pytest.raises(ValidationError):
                    field.clean(text)


# ---------------------------------------------------------------------------------------
# Mails and exports


def test_mails_go_out_in_each_recipients_language(shop):
    User.objects.filter(pk=shop.bd.pk).update(email="bd@lang.example", language="zh-hans")
    User.objects.filter(pk=shop.admin.pk).update(email="admin@lang.example", language="zh-hans")
    User.objects.filter(pk=shop.operator.pk).update(email="operator@lang.example")
    mail.outbox.clear()
    request = f.submitted(shop.template, shop.admin, shop.accounts[:2])
    (to_bd,) = mail.outbox
    assert to_bd.to == ["bd@lang.example"]
    assert "2 个账号" in to_bd.body and "2 accounts" not in to_bd.body

    mail.outbox.clear()
    f.approve(request, User.objects.get(pk=shop.bd.pk))
    by_address = {tuple(m.to): m for m in mail.outbox}
    assert set(by_address) == {("admin@lang.example",), ("operator@lang.example",)}
    assert "2 个账号" in by_address[("admin@lang.example",)].body
    assert "2 accounts" in by_address[("operator@lang.example",)].body


def test_an_export_is_in_the_exporting_users_language_even_as_it_streams(shop, monkeypatch):
    f.issue(shop.template, shop.admin, shop.bd, shop.accounts)
    User.objects.filter(pk=shop.admin.pk).update(language="zh-hans")
    made_in = []
    real_row = usage_views.export_row

    def recording_row(coupon):
        made_in.append(translation.get_language())
        return real_row(coupon)

    monkeypatch.setattr(usage_views, "export_row", recording_row)
    client = signed_in(User.objects.get(pk=shop.admin.pk), **{"accept-language": "en"})
    response = client.get("/coupons/usage/", {"_export": "csv"})
    # The file streams after the view returned, here while another request's language is
    # active in the thread, as it can be on a server.
    with translation.override("en"):
        rows = ph.csv_rows(response)
    assert made_in == ["zh-hans"] * 3
    with translation.override("zh-hans"):
        assert rows[0] == [str(title) for title in usage_views.EXPORT_HEADER]
        status = str(shop.template.coupons.first().get_status_display())
    assert {row[12] for row in rows[1:]} == {status}
    if any(isinstance(title, type(translation.gettext_lazy(""))) for title in
           usage_views.EXPORT_HEADER):
        assert all(chinese(title) or title.isascii() and title.isupper() for title in rows[0])


def test_in_language_makes_each_item_with_the_language_active():
    def languages():
        for _ in range(3):
            yield translation.get_language()

    with translation.override("en"):
        assert list(in_language("zh-hans", languages())) == ["zh-hans"] * 3
        assert translation.get_language() == "en"
