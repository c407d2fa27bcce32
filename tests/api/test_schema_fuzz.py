"""Schema fuzz (QUALITY.md API "schema fuzz"): schemathesis generates requests for every
operation of the OpenAPI schema and sends each with a read-only and an operator key of
each of two partners. No answer is a 5xx, every answer matches the schema (status, content
type, body), and no answer holds a row of the other partner.

Bounded (FUZZ_EXAMPLES per operation, the four keys in turn) so the whole schema runs in
about a minute."""
import itertools
import json
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from coupons.models import Coupon, CouponTemplate, IssuanceRequest
from tests import factories as f
from tests.api.helpers import make_key

FUZZ_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "16"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]

_turn = itertools.count()
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


def _tenant(name: str, prefix: str):
    shop = f.make_shop(3, prefix=prefix, name=name)
    coupons = f.issue(shop.template, shop.admin, shop.bd, shop.accounts)
    f.submitted(f.make_template(shop.partner, shop.admin, issue_limit="unlimited"),
                shop.admin, shop.accounts[:1])
    keys = {role: make_key(shop.partner, shop.admin, role)[1]
            for role in ("read_only", "operator")}
    return shop, coupons, keys


def _rows_of(partner) -> dict:
    """What of `partner` may never appear in another partner's answer."""
    return {
        "ids": {("template", pk) for pk in CouponTemplate.objects.filter(
            partner=partner).values_list("pk", flat=True)}
        | {("issuance_request", pk) for pk in IssuanceRequest.objects.filter(
            partner=partner).values_list("pk", flat=True)},
        "strings": set(Coupon.objects.filter(partner=partner).values_list("code", flat=True))
        | set(partner.sub_accounts.values_list("account_id", flat=True))
        | {partner.name},
    }


def _leaks(body, foreign: dict) -> list:
    found = []

    def walk(node):
        if isinstance(node, dict):
            kind = node.get("object")
            for key in ("id", "template_id", "request_id"):
                owner = {"id": kind, "template_id": "template",
                         "request_id": "issuance_request"}[key]
                if (owner, node.get(key)) in foreign["ids"]:
                    found.append((owner, node.get(key)))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and node in foreign["strings"]:
            found.append(node)

    walk(body)
    return found


@pytest.fixture
def wsgi_keeps_the_connection():
    """Django closes the database connection when a WSGI request finishes, which here is
    the test's own (its transaction); its test client stops that the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tenants(db, wsgi_keeps_the_connection):
    a = _tenant("Fuzz Alpha", "FZA-")
    b = _tenant("Fuzz Beta", "FZB-")
    return a, b


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_operation_as_every_key(case, tenants):
    """Each example is sent with the next of the four keys in turn, so every operation
    meets each key FUZZ_EXAMPLES / 4 times."""
    (shop_a, _ca, keys_a), (shop_b, _cb, keys_b) = tenants
    callers = [(token, shop_b) for token in keys_a.values()] + [
        (token, shop_a) for token in keys_b.values()]
    token, other = callers[next(_turn) % len(callers)]
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    case.validate_response(response, checks=CHECKS)
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        body = None
    leaks = _leaks(body, _rows_of(other.partner))
    assert not leaks, (case.method, case.formatted_path, leaks)
