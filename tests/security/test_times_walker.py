"""Every time a page or the admin shows is in the platform's time zone, to the minute, in
the one format (couponplatform/times.py): "2026-06-17 10:00 +08".

Every page of the URLconf each role GETs (its own rows in the path, as the isolation walker
fills them), the admin's change pages and their inlines too, read as the text a person
sees: each date followed by a time must be the one format, so a raw datetime
("2026-06-17 02:00:34.105572+00:00"), seconds, a time without its zone or a time in UTC
fails the walk, naming the page.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.utils import timezone

from couponplatform.times import moment_text
from tests.security import walk
from tests.security.test_paging_walker import get, signed_in

pytestmark = pytest.mark.django_db

# A date with a time after it, whatever follows: seconds, fractions, an offset, a zone.
SHOWN = re.compile(
    r"\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?"
    r"(?:\s?(?:[+-]\d{2}(?::?\d{2})?|UTC|GMT|Z)\b)?",
)
ROLES = ["distributor", "viewer", "customer", "bd", "root"]


class _Text(HTMLParser):
    """The text of a page as shown: no tags, no scripts or styles."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def shown_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def the_format() -> re.Pattern:
    """What moment_text makes now, as a pattern: the platform's zone suffix included."""
    suffix = moment_text(timezone.now()).split(" ", 2)[2]
    return re.compile(rf"\d{{4}}-\d{{2}}-\d{{2}} \d{{2}}:\d{{2}} {re.escape(suffix)}")


def pages_of(world, role: str) -> list[str]:
    """Every page the role GETs with 200 and HTML: patterns without parameters and those
    its own rows fill. Once per package."""
    found = world.cache.setdefault("html-pages", {})
    if role in found:
        return found[role]
    client, scope, urls = signed_in(world, role), world.scopes[role], []
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
        response = get(client, url, {})
        if response.status_code == 200 and "text/html" in response.get("Content-Type", ""):
            urls.append(url)
    found[role] = urls
    return urls


@pytest.mark.parametrize("role", ROLES)
def test_every_time_shown_is_in_the_one_format(world, role):
    client = signed_in(world, role)
    expected = the_format()
    urls = pages_of(world, role)
    problems, times_seen = [], 0
    for url in urls:
        text = shown_text(get(client, url, {}).content.decode())
        for match in SHOWN.finditer(text):
            times_seen += 1
            if not expected.fullmatch(match.group()):
                around = text[max(match.start() - 60, 0):match.end() + 20]
                problems.append(f"{url}: {match.group()!r} in …{around}…")
    if role != "customer":  # Billing Management shows days, not times
        assert times_seen, f"{role}: no page showed a time; the walk proves nothing"
    assert not problems, "\n".join([f"{len(problems)} time(s) not in the one format:"]
                                   + problems[:40])


def test_the_walk_reaches_the_pages_with_times(world):
    """The BD's page of a decided request (its decisions) is among those walked."""
    urls = pages_of(world, "bd")
    assert any(re.fullmatch(r"/admin/coupons/issuancerequest/\d+/change/", u) for u in urls)
    assert any(re.fullmatch(r"/admin/audit/auditlog/\d+/change/", u) for u in urls)
