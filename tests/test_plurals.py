"""Counted nouns go through ngettext ({% blocktranslate count %} in templates): never
"1 accounts", and no hand-made plural ("s" if n != 1, |pluralize) that a catalog could not
translate. The pages below are shown with counts of one and of many."""
import re
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from billing.usage_import import UsageImportError
from coupons import rules
from tests import factories as f

pytestmark = pytest.mark.django_db
ROOT = Path(settings.BASE_DIR)
APPS = ("accounts", "approvals", "audit", "billing", "coupons", "couponplatform")
# "1 accounts", "1 days from release", but not "1 account" or "11 accounts".
ONE_PLURAL = re.compile(
    r"(?<![\d,.])1 (accounts|coupons|requests|days|templates|sub-accounts|uses|deductions|"
    r"fields|bills|daily bills|rows|records|values|months)\b",
)


def visible(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_no_template_pluralises_by_hand():
    found = [str(p.relative_to(ROOT)) for p in (ROOT / "templates").rglob("*.html")
             if "|pluralize" in p.read_text()]
    assert not found, f"use {{% blocktranslate count %}} in {found}"


def test_no_python_message_pluralises_by_hand():
    manual = re.compile(r"""['"]s['"] if |else ['"]s['"]|['"](is|are)['"] if """)
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if manual.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "use ngettext:\n" + "\n".join(found)


def test_pages_with_one_of_each_say_it_in_the_singular(client, distributor, dist_admin):
    f.make_product("ecs")
    account = f.make_accounts(distributor, 1, prefix="ONE-", name="Only One")[0]
    template = f.make_template(distributor, dist_admin, valid_days=1, release_cap_count=1,
                               issue_limit="unlimited")
    request = f.submitted(template, dist_admin, [account])
    client.force_login(dist_admin)
    pages = {
        "template list": reverse("coupons:template_list"),
        "template": template.get_absolute_url(),
        "issue": reverse("coupons:issue", args=[template.pk]) + f"?q={account.account_id}",
        "request": request.get_absolute_url(),
        "cancel": reverse("approvals:cancel", args=[request.pk]),
        "approval status": reverse("approvals:list"),
    }
    for name, url in pages.items():
        text = visible(client.get(url).content.decode())
        assert not ONE_PLURAL.search(text), (name, ONE_PLURAL.search(text).group(0))
    template_page = visible(client.get(template.get_absolute_url()).content.decode())
    assert "1 day from release" in template_page and "1 request: 1 pending" in template_page
    issue_page = visible(client.get(pages["issue"]).content.decode())
    assert "1 sub-account matches" in issue_page
    assert "1 template" in visible(client.get(pages["template list"]).content.decode())
    assert "· 1 account ·" in visible(client.get(pages["cancel"]).content.decode())


def test_messages_with_one_of_each_say_it_in_the_singular(distributor, dist_admin, customers):
    template = f.make_template(distributor, dist_admin, release_cap_count=1,
                               issue_limit="unlimited")
    problem = rules.release_cap_problem(template, 2, template.face_value * 2)
    assert problem == "This template may release at most 1 coupon; 1 left, 2 selected."
    assert str(UsageImportError([(2, "bad")])).startswith("Nothing was imported: 1 bad row.")
    assert str(UsageImportError([(2, "bad"), (3, "bad")])).startswith(
        "Nothing was imported: 2 bad rows.")


def test_a_sub_accounts_coupon_with_one_deduction_and_one_use(client, distributor):
    account = f.make_accounts(distributor, 1, prefix="ONEC-")[0]
    f.make_product("ecs")
    f.make_coupon(account, kind="discount", rate="10", cap="5.00", uses=1,
                  valid_from=date(2026, 6, 1), valid_until=date(2026, 6, 30))
    client.force_login(f.make_subaccount_user(account))
    text = visible(client.get(reverse("billing:coupons")).content.decode())
    assert "1 of 1 use left" in text
    assert not ONE_PLURAL.search(text), ONE_PLURAL.search(text).group(0)
