"""Bad paging and sorting values on every list page (QUALITY "bad input").

Every page of the URLconf a role can GET (its own rows in the path, as the isolation walker
fills them) gets page sizes that are negative, zero, past bigint and huge, page numbers
likewise, sort columns that do not exist (or name a relation, or a field the table does not
show), the admin's `o` and `p`, and each parameter repeated with a good and a bad value.
Every answer: no 500; a list page is shown (200) or the admin's own answer for a bad lookup
(a redirect); never more than the page-size cap of rows.
"""
from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client

from couponplatform.paging import PER_PAGE_MAX
from tests.security import walk

pytestmark = pytest.mark.django_db

BAD_SIZES = ["-1", "-1000", "0", "99999999999999999999", "9223372036854775808", "100000",
             "abc", "1e3", "²", " 5"]
BAD_PAGES = ["-1", "0", "99999999999999999999", "9223372036854775808", "abc", "1e308", "²"]
BAD_SORTS = ["nosuch", "-nosuch", "password", "--amount", "sub_account__partner__name", "-",
             "\x00", "code,amount"]
BAD_ADMIN = [[("o", v)] for v in ("99", "-1", "0.99", "a", "1.-2", "1.1.1.1.1")]
BAD_ADMIN += [[("p", v)] for v in ("-1", "99999999999999999999", "abc", "²")]
BAD_ADMIN += [[("all", ""), ("p", "-1")], [("p", "1"), ("p", "-1"), ("o", "1"), ("o", "x")]]
REPEATED = [
    [("per_page", "5"), ("per_page", "-1")],
    [("per_page", "-1"), ("per_page", "99999999999999999999")],
    [("page", "2"), ("page", "-1")],
    [("sort", "amount"), ("sort", "nosuch"), ("sort", "-amount"), ("sort", "code")],
    [("sort", "-name"), ("sort", "name"), ("per_page", "100000"), ("page", "3")],
]


def value_sets(admin: bool) -> list[list[tuple[str, str]]]:
    """The admin's changelists read `o`, `p` and `all`; our pages `sort`, `page` and
    `per_page`."""
    if admin:
        return BAD_ADMIN + [[("per_page", "-1"), ("page", "-1"), ("sort", "nosuch")]]
    sets = [[("per_page", v)] for v in BAD_SIZES]
    sets += [[("page", v)] for v in BAD_PAGES]
    sets += [[("sort", v)] for v in BAD_SORTS]
    sets += [[("sort", v), ("per_page", "100000"), ("page", "99999999999999999999")]
             for v in ("nosuch", "-amount")]
    return sets + REPEATED


# A partner user's and a sub-account user's pages; the superuser's admin, every changelist.
ROLES = ["distributor", "customer", "root"]
# What a page that pages puts in its context: a django-tables2 table, a Paginator's page
# (the sub-account's coupons and bills), the admin's ChangeList.
LIST_CONTEXT = ("table", "page", "daily", "cl")


def pages_of(world, role: str) -> list[str]:
    """Every list page the role GETs: patterns without parameters, and those whose
    parameters its own rows fill, that answer 200 with a paged list. Once per package."""
    found = world.cache.setdefault("list-pages", {})
    if role not in found:
        found[role] = _find_pages(world, role)
    return found[role]


def _find_pages(world, role: str) -> list[str]:
    client = signed_in(world, role)
    scope = world.scopes[role]
    urls = []
    for endpoint in walk.endpoints():
        if endpoint.name in ("logout", "admin:logout"):
            continue
        try:
            values = walk.path_values(endpoint, scope, [], own=True) if endpoint.params else {}
        except walk.Unfillable:
            continue
        if values is None:
            continue
        try:
            url = walk.build_url(endpoint, values)
        except walk.Shadowed:
            continue
        if url in urls:
            continue
        response = get(client, url, [])
        context = response.context or {}
        if response.status_code == 200 and any(key in context for key in LIST_CONTEXT):
            urls.append(url)
    return urls


def signed_in(world, role: str) -> Client:
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
    return client


def get(client, url, params):
    """GET in a savepoint rolled back after it (a failed query must not poison the next)."""
    with transaction.atomic():
        response = client.get(url, params)
        transaction.set_rollback(True)
    return response


ROW = re.compile(r"<tr[\s>]")
TABLE = re.compile(r"<table[\s>].*?</table>", re.S)


@pytest.mark.parametrize("role", ROLES)
def test_every_page_survives_bad_paging_and_sorting(world, role):
    client = signed_in(world, role)
    urls = pages_of(world, role)
    assert len(urls) >= 3, urls
    problems = []
    for url in urls:
        admin = url.startswith("/admin/")
        for params in value_sets(admin):
            query = {}
            for key, value in params:
                query.setdefault(key, []).append(value)
            try:
                response = get(client, url, query)
            except Exception as exc:  # noqa: BLE001 - an exception in the view is a 500
                problems.append(f"{url} {params}: raised {type(exc).__name__}: {exc} "
                                f"at {walk.where(exc)}")
                continue
            if response.status_code >= 500:
                problems.append(f"{url} {params}: answered {response.status_code}")
            elif response.status_code not in (200, 302):
                problems.append(f"{url} {params}: answered {response.status_code}")
            elif response.status_code == 200 and not admin:
                # The longest table: a page's list, beside which a page may show small
                # tables of its own (totals, the chart's table); header rows and a totals
                # row beside the list's rows. (The admin pages its own lists, by
                # list_per_page.)
                rows = max([len(ROW.findall(table)) for table in
                            TABLE.findall(response.content.decode())] or [0])
                if rows > PER_PAGE_MAX + 3:
                    problems.append(f"{url} {params}: {rows} table rows")
    assert not problems, "\n".join([f"{len(problems)} problem(s):"] + problems[:40])


def test_the_walk_reaches_every_list_page(world):
    """The pages the issue found 500s on are among those walked."""
    found = {role: pages_of(world, role) for role in ("distributor", "customer", "root")}
    distributor = found["distributor"]
    assert "/coupons/templates/" in distributor
    assert "/approvals/" in distributor
    assert "/coupons/usage/" in distributor
    assert any(re.fullmatch(r"/coupons/templates/\d+/issue/", url) for url in distributor)
    assert {"/billing/coupons/", "/billing/bills/"} <= set(found["customer"])
    assert "/admin/approvals/pendingrequest/" in found["root"]
    assert "/admin/coupons/coupon/" in found["root"]
