"""Tenant isolation (QUALITY "tenant isolation", issue 5 item 5).

Every URL pattern of the URLconf, found by walking the resolver (the admin's included), is
requested by every role of PRODUCT §11 (and two users of the second tenant), with another
tenant's ids in the path, the query string and the POST body, by GET, POST, PUT and DELETE.

- A pattern whose parameters hold foreign ids answers 403, 404 or 405; the anonymous user
  and the non-staff in the admin are sent to log in; for the staff, Django admin's answer
  for an object it can not find (a redirect) is accepted only when it is the same as for
  an id that never existed.
- Pages without parameters, and the role's own pages with foreign ids in the query and the
  body, show no foreign row (coupon codes, account IDs, names) — in HTML, JSON, CSV and
  XLSX alike (`?_export=csv|xlsx` is tried on every list).
- No request changes another tenant's rows (every write a request makes is seen, and then
  every tenant's rows are compared), no row crosses tenants, and nothing answers 500.

The matrix is sampled where it would explode, never below every pattern × every role:
- in the admin, users who are not staff are turned away at its door before any view runs,
  so each of them knocks once per pattern, by a method that rotates over the patterns
  (GET, POST, PUT, DELETE);
- the staff (both BDs and the superuser) in the admin, and every role on the app's own
  pages, send GET and POST with the foreign path, then PUT or DELETE (in turn: no view
  serves either); lists get the plain list, the searches and the id filters, both exports
  and the POST actions; the role's own rows get the foreign query and every POST action.
About 4,200 requests in all.

A new URL is walked without editing this file; a new kind of URL parameter fails
`test_every_parameter_is_known` (and its own walk) until `walk.APP_PARAMS` says what a
foreign value for it is.
"""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from coupons.models import Coupon, IssuanceRecipient
from tests.security import walk
from tests.security.world import ROLES, ZETA_NAME, ZETA_ROLES

ENDPOINTS = walk.endpoints()
# The superuser last: what it may do (delete a group, rename a partner) changes the world
# under the roles after it.
WALK_ROLES = tuple(r for r in ROLES + ZETA_ROLES if r != "root") + ("root",)
STAFF = ("bd", "bd2", "root")
METHODS = ("GET", "POST", "PUT", "DELETE")
MISSING_ID = 2_000_000_000

# Whose rows are the foreign ones to try, per role, best first: the other tenant, and the
# partners next door (a distributor's own tier-2 reseller, a reseller's distributor).
FOREIGN_TENANTS = {
    "distributor": [ZETA_NAME, "Harbor IT", "Bluebird Cloud"],
    "operator": [ZETA_NAME, "Harbor IT"],
    "viewer": [ZETA_NAME, "Harbor IT"],
    "reseller": ["Northwind Distribution", ZETA_NAME],
    "tier2": ["Northwind Distribution", ZETA_NAME],
    "nocoupons": ["Northwind Distribution", ZETA_NAME],
    "customer": [ZETA_NAME, "Northwind Distribution"],
    "bd": [ZETA_NAME, "Quiet Partners"],
    "bd2": ["Northwind Distribution", "Bluebird Cloud"],
    "root": [ZETA_NAME],
    "anonymous": [ZETA_NAME],
    "zeta_admin": ["Northwind Distribution", "Zeta Tier2 Foreign Reseller"],
    "zeta_customer": ["Northwind Distribution", ZETA_NAME],
}
assert set(FOREIGN_TENANTS) == set(WALK_ROLES)

# The body's `action`, tried in turn for as long as the page answers by redirecting to
# itself (Issue Coupon's actions, the admin's list actions); any other answer ends it.
ACTIONS = ["approve_selected", "reject_selected", "paste", "add", "confirm", "remove"]
# Parameters that name no tenant's row: a pattern with only these is walked like a list.
NEUTRAL_KINDS = {"app_label", "admin_path"}


# ---------------------------------------------------------------------------------------
# Per role, once per package: markers, foreign ids for the query and the body, sessions


def role_context(world, role: str) -> dict:
    cache = world.cache.setdefault("walker", {})
    if role in cache:
        return cache[role]
    scope = world.scopes[role]
    candidates = [world.partners[n] for n in FOREIGN_TENANTS[role]]
    nowhere = walk.Endpoint(route="", name=None, params=(), callback=None, model_admin=None)

    def first(label):
        rows = walk.foreign_rows(label, scope, candidates, nowhere)
        return rows[0] if rows else None

    accounts = []
    for partner in candidates:
        # Accounts holding coupons first: a search that found them would show rows.
        holds = Exists(Coupon.objects.filter(sub_account=OuterRef("pk")))
        accounts += list(
            walk.model_for("accounts.subaccount")._default_manager.filter(partner=partner)
            .exclude(walk.in_scope("accounts.subaccount", scope))
            .annotate(holds=holds).order_by("-holds", "pk")
            .values_list("account_id", flat=True)[:3]
        )
    cache[role] = {
        "candidates": candidates,
        "markers": walk.markers_outside(scope),
        "template": first("coupons.coupontemplate"),
        "request": first("coupons.issuancerequest"),
        "coupon": first("coupons.coupon"),
        "budget": first("accounts.platformbudget"),
        "accounts": accounts,
        "partner": next((p for p in candidates if p.pk not in scope.partner_ids), None),
        "session": world.sessions.get(role),
    }
    return cache[role]


def baseline_fingerprint(world) -> dict:
    if "fingerprint" not in world.cache:
        world.cache["fingerprint"] = walk.fingerprint()
    return world.cache["fingerprint"]


# ---------------------------------------------------------------------------------------


class Walk:
    """One endpoint walked by one role; collects problems instead of stopping at the first."""

    def __init__(self, world, endpoint, role, problems, state):
        self.world = world
        self.endpoint = endpoint
        self.role = role
        self.scope = world.scopes[role]
        self.user = world.users.get(role)
        self.problems = problems
        self.state = state  # {"rows": the fingerprint of the world as it is now}
        self.ctx = role_context(world, role)
        self.candidates = self.ctx["candidates"]
        self.markers = self.ctx["markers"]
        self.client = Client()
        self._login()
        self.wrote = False

    def _login(self):
        if self.ctx["session"] is not None:
            self.client.cookies[settings.SESSION_COOKIE_NAME] = self.ctx["session"]

    # -- values -------------------------------------------------------------------------

    def query(self, variant: int = 0) -> dict:
        """Foreign ids in the query string. Variant 0: the text searches (which stay valid
        filters, so a list runs them); 1: ids in every filter a page might read (a list
        whose filter refuses them shows nothing at all); 2: both."""
        c = self.ctx
        account = c["accounts"][0] if c["accounts"] else ""
        searches = [account, getattr(c["template"], "name", ""),
                    getattr(c["partner"], "name", ""), getattr(c["coupon"], "code", "")]
        role_index = WALK_ROLES.index(self.role)
        text = {
            # Prefixes: a page that found the row would show the whole value.
            "q": searches[role_index % len(searches)][:-2],
            "sub_account": account[:-1],
        }
        ids = {
            "template": getattr(c["template"], "pk", ""),
            "pk": getattr(c["request"], "pk", ""),
            "request": getattr(c["request"], "pk", ""),
            "coupon": getattr(c["coupon"], "pk", ""),
            "partner": getattr(c["partner"], "pk", ""),
            "partner__id__exact": getattr(c["partner"], "pk", ""),
            "account_id": account,
            "status": "pending",
        }
        return [text, ids, {**text, **ids}][variant]

    def body(self, action: str) -> dict:
        c = self.ctx
        accounts, partner, budget = c["accounts"], c["partner"], c["budget"]
        return {
            "action": action,
            "pick": accounts,
            "account_id": accounts,
            "account_ids": "\n".join(accounts),
            "template": getattr(c["template"], "pk", ""),
            "sub_account": accounts[0] if accounts else "",
            "pk": getattr(c["request"], "pk", ""),
            "request_id": getattr(c["request"], "pk", ""),
            "_selected_action": [getattr(c["request"], "pk", "")],
            "index": "0",
            "select_across": "0",
            "reason": "walker reason",
            "partner": getattr(partner, "pk", ""),
            "parent": getattr(partner, "pk", ""),
            "bd": getattr(partner, "bd_id", "") or "",
            "return_query": urlencode({"template": getattr(c["template"], "pk", "")}),
            # A BD's own partner's change form naming another partner's budget row.
            "budgets-TOTAL_FORMS": "1",
            "budgets-INITIAL_FORMS": "1",
            "budgets-MIN_NUM_FORMS": "0",
            "budgets-MAX_NUM_FORMS": "1000",
            "budgets-0-id": getattr(budget, "pk", ""),
            "budgets-0-partner": getattr(partner, "pk", ""),
            "budgets-0-currency": "USD",
            "budgets-0-amount": "1.00",
        }

    def path_values(self, own: bool) -> dict | None:
        """Values for every parameter of the pattern; None when the role has no row of
        its own (own=True) or the world no foreign row (own=False) of a kind."""
        cache = self.world.cache.setdefault("paths", {})
        key = (self.role, walk.endpoint_id(self.endpoint, ENDPOINTS), own)
        if key not in cache:
            cache[key] = walk.path_values(
                self.endpoint, self.scope, self.candidates, own=own,
                turn=WALK_ROLES.index(self.role),
            )
        return cache[key]

    def _value(self, kind, own, object_label):
        return walk.param_value(kind, self.endpoint, self.scope, self.candidates, own=own,
                                turn=WALK_ROLES.index(self.role), object_label=object_label)

    # -- requests -----------------------------------------------------------------------

    def send(self, method: str, url: str, data=None):
        """The response, or None after recording a 500 (an exception in the view)."""
        try:
            with CaptureQueriesContext(connection) as queries, transaction.atomic():
                # (the savepoint: a failed query must not poison the next request)
                if method == "GET":
                    response = self.client.get(url, data or {})
                elif method == "POST":
                    response = self.client.post(url, data or {})
                else:
                    payload = urlencode(data or {}, doseq=True)
                    response = getattr(self.client, method.lower())(
                        url, payload, content_type="application/x-www-form-urlencoded",
                    )
        except Exception as exc:  # noqa: BLE001 - every exception here is a 500
            self.problem(method, url, f"raised {type(exc).__name__}: {exc} "
                                      f"at {walk.where(exc)}")
            return None
        finally:
            if self.endpoint.key in ("logout", "admin:logout"):
                self._login()
        if walk.writes(queries.captured_queries):
            self.wrote = True
        if response.status_code >= 500:
            self.problem(method, url, f"answered {response.status_code}")
            return None
        return response

    def is_login_redirect(self, response) -> bool:
        if response is None or response.status_code != 302:
            return False
        location = response["Location"]
        return location.startswith((settings.LOGIN_URL, reverse("admin:login")))

    def follow(self, response, *sent):
        """One redirect after a list or a form (not to the login page), checked as well."""
        if response is None or response.status_code not in (301, 302, 303):
            return response
        if self.is_login_redirect(response):
            return response
        location = response["Location"]
        if location.startswith("http"):
            return response
        return self.send("GET", location)

    def problem(self, method, url, text):
        self.problems.append(f"[{self.role}] {method} {url}: {text}")

    def check_no_leak(self, method, url, response, *sent):
        if response is None or response.status_code != 200:
            return
        found = walk.leaks(walk.shown_text(response), self.markers, walk.sent_values(*sent))
        if found:
            self.problem(method, url, f"shows foreign rows: {found[:8]}")

    def check_denied(self, method, url, response, data=None):
        """A request with foreign ids in the path: 403, 404, 405, or a login redirect."""
        if response is None or self.scope.everything:
            return
        status = response.status_code
        if status in (403, 404, 405):
            return
        if status == 302:
            if self.endpoint.is_admin:
                if self.role not in STAFF and self.is_login_redirect(response):
                    return
                if self.role in STAFF and self._same_as_missing(method, response, data):
                    # Django admin's answer for an object it can not find (a redirect to
                    # the index), or its old URL forwarding to the change page: the same as
                    # for an id that never existed, so it tells nothing.
                    return
            elif self.user is None and self.is_login_redirect(response):
                return
        self.problem(method, url, f"foreign ids answered {status} "
                                  f"{response.get('Location', '')}".rstrip())
        self.check_no_leak(method, url, response, data)

    def _same_as_missing(self, method, response, data) -> bool:
        values = self.path_values(own=False)
        missing, expected = dict(values), response["Location"]
        for param, value in values.items():
            kind = walk.param_kind(self.endpoint, param)
            if kind in walk.MODEL_SCOPE or kind == "content_object":
                missing[param] = MISSING_ID
                expected = expected.replace(f"/{value}/", f"/{MISSING_ID}/")
        other = self.send(method, walk.build_url(self.endpoint, missing), data)
        return other is not None and other.status_code == 302 and other["Location"] == expected

    # -- the walk -----------------------------------------------------------------------

    def probe_url(self) -> str | None:
        """The URL the walk would build (raises walk.Shadowed for an unreachable one)."""
        values = {p: self._value(walk.param_kind(self.endpoint, p), False, None)
                  for p in self.endpoint.params
                  if walk.param_kind(self.endpoint, p) in NEUTRAL_KINDS}
        foreign = self.path_values(own=False) or {}
        values.update({k: v for k, v in foreign.items() if k not in values})
        if set(values) != set(self.endpoint.params):
            return None
        return walk.build_url(self.endpoint, values)

    def run(self, door_method: str):
        kinds = {walk.param_kind(self.endpoint, p) for p in self.endpoint.params}
        listing = kinds <= NEUTRAL_KINDS
        # No view serves PUT or DELETE: each walk tries one of them, in turn.
        unsafe = "PUT" if door_method in ("GET", "PUT") else "DELETE"
        if self.endpoint.is_admin and self.role not in STAFF:
            self.knock(door_method, listing)
        elif listing:
            self.walk_listing(unsafe)
        else:
            self.walk_foreign_path(unsafe)
            self.walk_own_path()
        if self.wrote:
            rows = walk.fingerprint()
            changed = walk.foreign_changes(self.state["rows"], rows, self.scope)
            if changed:
                names = list(walk.model_for("accounts.partner")._default_manager
                             .filter(pk__in=changed).values_list("name", flat=True))
                self.problems.append(
                    f"[{self.role}] {self.endpoint.route}: changed rows of {names}")
            self.state["rows"] = rows

    def knock(self, method, listing):
        """At the admin's door: one request, by a method rotating over the patterns."""
        values = self.path_values(own=False) if not listing else {
            p: self._value(walk.param_kind(self.endpoint, p), False, None)
            for p in self.endpoint.params
        }
        if values is None:
            self.problem(method, self.endpoint.route, "no foreign row for this path")
            return
        url = walk.build_url(self.endpoint, values)
        data = self.query(2) if method == "GET" else self.body("approve_selected")
        response = self.send(method, url, data)
        if listing:
            self.check_no_leak(method, url, self.follow(response), data)
        else:
            self.check_denied(method, url, response, data)

    def walk_foreign_path(self, unsafe: str):
        values = self.path_values(own=False)
        if values is None:
            self.problems.append(f"[{self.role}] {self.endpoint.route}: the world has no "
                                 "foreign row to put in this path; add one")
            return
        url = walk.build_url(self.endpoint, values)
        for method in ("GET", "POST", unsafe):
            data = self.query(2) if method == "GET" else self.body("paste")
            self.check_denied(method, url, self.send(method, url, data), data)

    def walk_own_path(self):
        """The role's own row in the path, foreign ids in the query and the body."""
        if self.scope.everything:
            return
        values = self.path_values(own=True)
        if values is None:
            return
        url = walk.build_url(self.endpoint, values)
        response = self.follow(self.send("GET", url, self.query(2)))
        self.check_no_leak("GET", url, response, self.query(2))
        self.post_variants(url)

    def walk_listing(self, unsafe: str):
        values = {p: self._value(walk.param_kind(self.endpoint, p), False, None)
                  for p in self.endpoint.params}
        url = walk.build_url(self.endpoint, values)
        if self.scope.everything:  # the superuser: no tenant to leak, only no 500
            for method in ("GET", "POST", unsafe):
                self.send(method, url, self.query(2) if method == "GET" else self.body("paste"))
            return
        # The plain list, then the searches, then the foreign ids in the filters.
        for data in ({}, self.query(0), self.query(1)):
            response = self.follow(self.send("GET", url, data))
            self.check_no_leak("GET", url, response, data)
            if response is None or response.status_code == 403 or self.is_login_redirect(
                response,
            ):
                break  # turned away: another query would be too
        for export, data in (("csv", {}), ("xlsx", self.query(0))):
            data = {**data, "_export": export}
            self.check_no_leak("GET", f"{url}?_export={export}",
                               self.send("GET", url, data), data)
        self.post_variants(url)
        data = self.body("paste")
        self.check_no_leak(unsafe, url, self.send(unsafe, url, data), data)

    def post_variants(self, url):
        sent = []
        for action in ACTIONS:
            data = self.body(action)
            sent.append(data)
            response = self.send("POST", url, data)
            if response is None or response.status_code != 302 or (
                response["Location"].split("?")[0] != url
            ):
                break
        # The messages of every step wait in the session for this one page.
        self.check_no_leak("POST", url, self.follow(response), *sent)


# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS,
                         ids=[walk.endpoint_id(e, ENDPOINTS) for e in ENDPOINTS])
def test_isolation(endpoint, world, db):
    problems: list[str] = []
    state = {"rows": baseline_fingerprint(world)}
    try:
        Walk(world, endpoint, "root", problems, state).probe_url()
    except walk.Shadowed as exc:
        walk.assert_shadower_walked(exc, ENDPOINTS)
        return
    index = ENDPOINTS.index(endpoint)
    for role_index, role in enumerate(WALK_ROLES):
        door_method = METHODS[(index + role_index) % len(METHODS)]
        Walk(world, endpoint, role, problems, state).run(door_method)
    # Whatever was sent, no row crosses tenants.
    crossed = IssuanceRecipient.objects.exclude(sub_account__partner=F("request__partner"))
    assert not crossed.exists(), f"recipients of another partner's accounts: {list(crossed)}"
    assert not Coupon.objects.exclude(sub_account__partner=F("partner")).exists()
    assert not problems, "\n".join([f"{len(problems)} problem(s):"] + problems[:60])


def test_every_parameter_is_known():
    """A pattern whose parameter the walker can not fill fails here, by name."""
    unknown = []
    for endpoint in ENDPOINTS:
        for param in endpoint.params:
            try:
                walk.param_kind(endpoint, param)
            except walk.Unfillable as exc:
                unknown.append(str(exc))
    assert not unknown, "\n".join(unknown)


def test_walker_finds_the_product_urls():
    """PRODUCT §10's pages and the BD's decisions are among what the walker found."""
    names = {e.name for e in ENDPOINTS}
    for name in ("login", "coupons:template_list", "coupons:template_create",
                 "coupons:template_detail", "coupons:issue", "coupon_usage", "coupon_void",
                 "approvals:list", "approvals:cancel", "billing:coupons", "billing:bills",
                 "billing:daily_bill", "billing:monthly_bill", "admin:index",
                 "admin:approvals_pendingrequest_approve",
                 "admin:approvals_pendingrequest_reject", "admin:accounts_partner_change",
                 "admin:billing_usageimport_upload"):
        assert name in names, name
    assert len(ENDPOINTS) >= 100


def test_unknown_parameter_fails_the_walk():
    """The walker refuses to guess: a made-up pattern with a new parameter is Unfillable."""
    fake = walk.Endpoint(route="coupons/widgets/<int:widget>/", name="coupons:widget",
                         params=("widget",), callback=None, model_admin=None)
    with pytest.raises(walk.Unfillable):
        walk.param_kind(fake, "widget")


# ---------------------------------------------------------------------------------------
# The walker is not vacuous: with a tenant check taken out, it fails.


def _walk_with(world, name, roles=("distributor", "bd")):
    endpoint = next(e for e in ENDPOINTS if e.name == name)
    problems: list[str] = []
    state = {"rows": baseline_fingerprint(world)}
    for role in roles:
        Walk(world, endpoint, role, problems, state).run("GET")
    return problems


def test_walker_catches_an_unscoped_detail_page_and_write(world, db, monkeypatch):
    from django.shortcuts import get_object_or_404

    from coupons import selectors, services
    from coupons.models import CouponTemplate

    monkeypatch.setattr(selectors, "coupon_template_get",
                        lambda *, partner, pk: get_object_or_404(CouponTemplate, pk=pk))
    # The service's own re-check would refuse the write: take it out too.
    monkeypatch.setattr(services, "_require_writer", lambda **kwargs: None)
    detail = _walk_with(world, "coupons:template_detail")
    assert any("foreign ids answered 200" in p for p in detail), detail
    disable = _walk_with(world, "coupons:template_disable")
    assert any("changed rows of" in p and ZETA_NAME in p for p in disable), disable


def test_walker_catches_an_unscoped_list_and_export(world, db, monkeypatch):
    from billing import selectors

    unscoped = selectors.coupon_usage_list
    monkeypatch.setattr(selectors, "coupon_usage_list",
                        lambda *, partner: unscoped(partner=partner).model.objects.all()
                        .select_related("sub_account", "template")
                        .annotate(used=selectors.used_expression()))
    problems = _walk_with(world, "coupon_usage")
    assert any("shows foreign rows" in p and "_export=csv" in p for p in problems), problems
    assert any("shows foreign rows" in p and "_export=xlsx" in p for p in problems), problems


def test_walker_catches_an_unscoped_admin(world, db, monkeypatch):
    from accounts.admin import BDScopedAdminMixin

    monkeypatch.setattr(BDScopedAdminMixin, "scope", lambda self, request, qs: qs)
    changelist = _walk_with(world, "admin:coupons_coupon_changelist", roles=("bd",))
    assert any("shows foreign rows" in p for p in changelist), changelist
    change = _walk_with(world, "admin:coupons_coupon_change", roles=("bd",))
    assert any("foreign ids answered 200" in p for p in change), change
