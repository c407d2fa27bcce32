"""Dates on every form and filter (couponplatform/dates.py): typed as YYYY-MM-DD in a text
input with the platform's time zone named beside it, never a browser date picker (shown
in the browser's locale, mm/dd/yyyy, with no time zone); a bad date gets a message saying
how to write one, and writes nothing."""
import re

import pytest
from django.conf import settings
from django.urls import reverse

from approvals.filters import IssuanceRequestFilter
from billing.filters import CouponUsageFilter
from couponplatform.dates import PlatformDateField, PlatformDateInput
from coupons.forms import CouponTemplateForm
from coupons.models import CouponTemplate
from tests.coupons.helpers import template_form_data

pytestmark = pytest.mark.django_db
BAD = "Enter the date as YYYY-MM-DD, for example 2026-03-31."


def date_fields(form) -> list[str]:
    return [name for name, field in form.fields.items()
            if "date" in type(field).__name__.lower() or "DateInput" in type(field.widget).__name__]


@pytest.mark.parametrize("form", [
    CouponTemplateForm(platform_allowed=False),
    IssuanceRequestFilter().form,
    CouponUsageFilter(request=None).form,
], ids=["template form", "Approval Status filter", "Coupon Usage filter"])
def test_every_date_field_is_the_platforms(form):
    names = date_fields(form)
    assert names, "no date field found"
    for name in names:
        field = form.fields[name]
        assert isinstance(field, PlatformDateField), name
        assert isinstance(field.widget, PlatformDateInput), name


@pytest.mark.parametrize("url_name", ["coupons:template_create", "approvals:list",
                                      "coupon_usage"])
def test_pages_show_text_inputs_with_the_format_and_the_time_zone(client, dist_admin, url_name):
    client.force_login(dist_admin)
    html = client.get(reverse(url_name)).content.decode()
    assert 'type="date"' not in html
    inputs = re.findall(r'<input type="text"[^>]*placeholder="YYYY-MM-DD"[^>]*>', html)
    assert len(inputs) >= 2
    assert all('pattern="\\d{4}-\\d{2}-\\d{2}"' in i for i in inputs)
    assert html.count('<span class="input-group-text tz-name"') == len(inputs)
    assert f">{settings.TIME_ZONE}</span>" in html


@pytest.mark.parametrize("typed", ["03/31/2026", "31.03.2026", "2026-3-1x", "20260331",
                                   "２０２６-03-31"])
def test_a_bad_date_on_the_template_form_says_how_to_write_one_and_writes_nothing(
    client, dist_admin, typed,
):
    client.force_login(dist_admin)
    data = template_form_data(validity_type="fixed", valid_from=typed, valid_until="2026-12-31")
    response = client.post(reverse("coupons:template_create"), data)
    assert response.status_code == 200
    assert BAD in response.content.decode()
    assert not CouponTemplate.objects.exists()


@pytest.mark.parametrize("typed", ["2026-02-30", "0000-01-01", "2026-13-01"])
def test_a_day_that_does_not_exist_is_named(client, dist_admin, typed):
    client.force_login(dist_admin)
    data = template_form_data(validity_type="fixed", valid_from=typed, valid_until="2026-12-31")
    html = client.post(reverse("coupons:template_create"), data).content.decode()
    assert f"There is no such day as {typed}; enter a date as YYYY-MM-DD." in html
    assert not CouponTemplate.objects.exists()


def test_the_template_form_takes_yyyy_mm_dd_and_shows_it_back(client, dist_admin):
    client.force_login(dist_admin)
    data = template_form_data(validity_type="fixed", valid_from=" 2026-07-01 ",
                              valid_until="2026-07-31")
    response = client.post(reverse("coupons:template_create"), data)
    template = CouponTemplate.objects.get()
    assert response.status_code == 302
    assert (template.valid_from.isoformat(), template.valid_until.isoformat()) == (
        "2026-07-01", "2026-07-31")
    form = CouponTemplateForm(platform_allowed=False, initial={"valid_from": template.valid_from})
    assert 'value="2026-07-01"' in str(form["valid_from"])


@pytest.mark.parametrize("url_name,param", [("approvals:list", "submitted_from"),
                                            ("coupon_usage", "released_to")])
def test_a_bad_date_in_a_filter_is_named_with_the_format(client, dist_admin, url_name, param):
    client.force_login(dist_admin)
    response = client.get(reverse(url_name), {param: "06/17/2026"})
    assert response.status_code == 200
    html = response.content.decode()
    assert BAD in html
