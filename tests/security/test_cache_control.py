"""Private pages and exports are never stored by a cache (QUALITY "CSRF and deploy"):
every page a signed-in partner, sub-account or BD user gets, and the CSV and XLSX exports,
carry `Cache-Control: private, no-store`; the sign-in page, which is no one's, does not
need to."""
import pytest
from django.conf import settings
from django.test import Client

from tests.security import walk

pytestmark = pytest.mark.django_db


def signed_in(world, role: str) -> Client:
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
    return client


def private_urls(world, role: str) -> list[str]:
    """Every GET page of the URLconf the role has a 200 from, its own rows in the path."""
    client, scope, urls = signed_in(world, role), world.scopes[role], []
    for endpoint in walk.endpoints():
        if endpoint.name in ("logout", "admin:logout"):
            continue
        values = walk.path_values(endpoint, scope, [], own=True) if endpoint.params else {}
        if values is None:
            continue
        try:
            url = walk.build_url(endpoint, values)
        except walk.Shadowed:
            continue
        if url not in urls and client.get(url).status_code == 200:
            urls.append(url)
    return urls


def directives(response) -> set[str]:
    return {d.strip().split("=")[0] for d in response.get("Cache-Control", "").split(",")}


@pytest.mark.parametrize("role", ["distributor", "viewer", "customer", "bd"])
def test_every_signed_in_page_is_private_and_not_stored(world, role):
    client = signed_in(world, role)
    urls = private_urls(world, role)
    assert len(urls) >= 3, urls
    missing = [url for url in urls
               if not {"private", "no-store"} <= directives(client.get(url))]
    assert not missing, missing


@pytest.mark.parametrize("export", ["csv", "xlsx"])
def test_exports_are_private_and_not_stored(world, export):
    response = signed_in(world, "distributor").get("/coupons/usage/", {"_export": export})
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    assert {"private", "no-store"} <= directives(response)


def test_redirects_and_refusals_to_a_signed_in_user_are_not_stored(world):
    client = signed_in(world, "customer")
    for url in ("/", "/coupons/templates/"):  # a redirect home; a partner page: 403
        response = client.get(url)
        assert response.status_code in (302, 403)
        assert {"private", "no-store"} <= directives(response), url
