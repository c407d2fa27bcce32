"""CSRF (QUALITY "CSRF and deploy", issue 5 item 8's first part).

Every pattern of the URLconf, found by walking the resolver as the isolation walker does,
gets a POST without a CSRF token (`Client(enforce_csrf_checks=True)`) from a user who may
use it — the partner admin, the sub-account user or the superuser, whichever the page lets
in — on that user's own rows, with a body that would act (a reason, a confirm, a form).
Each answers 403 and writes nothing (no INSERT, UPDATE or DELETE reaches the database).

So that the 403 is the CSRF check's and not a permission's, the same POST *with* a token is
sent too (then rolled back): it must not be refused as a forgery.
"""
from __future__ import annotations

import secrets

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.security import walk

ENDPOINTS = walk.endpoints()
# Who may use a page, tried in turn: the first one the page lets in POSTs to it.
OWNERS = ("distributor", "customer", "root", None)
CSRF_FAILED = b"CSRF verification failed"


def body() -> dict:
    """A POST that would do something on any of the app's forms."""
    return {
        "reason": "csrf probe", "action": "confirm", "pick": ["NW000045"],
        "account_ids": "NW000045", "name": "CSRF probe template", "kind": "cash",
        "currency": "USD", "face_value": "10.00", "validity_type": "relative",
        "valid_days": "30", "all_products": "on", "cost_bearer": "partner",
        "issue_limit": "one", "username": "distributor", "password": "pw",
        "_selected_action": ["1"], "index": "0", "post": "yes",
    }


def client_for(world, username, *, token: str | None = None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if username:
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[username]
    if token:
        client.cookies[settings.CSRF_COOKIE_NAME] = token
    return client


def _owner_url(world, endpoint) -> tuple[str | None, str] | None:
    """The first user the page lets in with their own rows in the path, and the URL."""
    for username in OWNERS:
        scope = world.scopes["anonymous" if username is None else username]
        values = walk.path_values(endpoint, scope, [], own=True)
        if values is None:
            continue
        url = walk.build_url(endpoint, values)
        response = client_for(world, username).get(url)
        refused = response.status_code in (403, 404) or (
            response.status_code == 302 and response["Location"].startswith(
                (settings.LOGIN_URL, reverse("admin:login"))))
        if not refused:
            return username, url
    return None


@pytest.mark.parametrize("endpoint", ENDPOINTS,
                         ids=[walk.endpoint_id(e, ENDPOINTS) for e in ENDPOINTS])
def test_post_without_csrf_token_is_refused(endpoint, world, db):
    try:
        found = _owner_url(world, endpoint)
    except walk.Shadowed as exc:
        walk.assert_shadower_walked(exc, ENDPOINTS)
        return
    if found is None:
        # No user gets past this page's door (e.g. a redirect-only URL): still, a POST
        # without a token from the superuser is refused before anything else.
        scope = world.scopes["root"]
        values = walk.path_values(endpoint, scope, [], own=True) or walk.path_values(
            endpoint, scope, list(world.partners.values()), own=False) or {}
        found = ("root", walk.build_url(endpoint, values))
    username, url = found

    with CaptureQueriesContext(connection) as queries:
        response = client_for(world, username).post(url, body())
    assert response.status_code == 403, f"{url} as {username}: {response.status_code}"
    assert CSRF_FAILED in response.content, "refused, but not by the CSRF check"
    assert not walk.writes(queries.captured_queries), walk.writes(queries.captured_queries)

    # The control: with a token the same user's POST passes the CSRF check.
    token = secrets.token_hex(16)  # a 32-character secret, as the cookie holds it
    with transaction.atomic():
        control = client_for(world, username, token=token).post(
            url, {**body(), "csrfmiddlewaretoken": token})
        transaction.set_rollback(True)
    assert not (control.status_code == 403 and CSRF_FAILED in control.content), (
        f"{url} as {username}: refused as a forgery even with a token")


def test_every_post_endpoint_was_walked():
    """The same discovery as the isolation walker: every pattern, the admin's included."""
    names = {e.name for e in ENDPOINTS}
    assert {"coupons:issue", "approvals:cancel", "coupon_void", "login", "logout",
            "admin:approvals_pendingrequest_reject", "admin:billing_usageimport_upload",
            "admin:accounts_partner_change"} <= names
