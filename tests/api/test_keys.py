"""API keys (QUALITY.md API "keys"): made and revoked by a partner admin, stored as a hash;
every bad key is a 401 or 403 in the error shape, and nothing is written for it."""
import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from api.keys import api_key_create, api_key_revoke
from api.models import ApiKey
from audit.models import AuditLog
from couponplatform.exceptions import ApplicationError, PermissionDeniedError
from coupons.models import CouponTemplate
from tests import factories as f
from tests.api.helpers import Api, error_of, make_key

TEMPLATE = {"name": "API made", "kind": "cash", "currency": "USD", "face_value": "20.00",
            "validity_type": "relative", "valid_days": 30, "cost_bearer": "partner",
            "issue_limit": "one"}


def test_a_key_is_stored_as_its_hash_with_a_visible_prefix_and_audited(shop):
    key, token = make_key(shop.partner, shop.admin, "operator", name="CRM")
    assert token.startswith(f"cpk_{key.prefix}_")
    assert token not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert key.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    row = AuditLog.objects.get(action="api_key.create", object_id=str(key.pk))
    assert row.actor == shop.admin and row.partner == shop.partner
    assert row.after["prefix"] == key.display_prefix and token not in str(row.after)


def test_only_a_partner_admin_makes_or_revokes_keys(shop):
    operator = f.make_member(shop.partner, "operator")
    with pytest.raises(PermissionDeniedError):
        api_key_create(partner=shop.partner, acting_user=operator, name="x", role="operator")
    other = f.make_partner()
    with pytest.raises(PermissionDeniedError):
        api_key_create(partner=other, acting_user=shop.admin, name="x", role="operator")
    key, _ = make_key(shop.partner, shop.admin)
    with pytest.raises(PermissionDeniedError):
        api_key_revoke(key=key, acting_user=operator)
    with pytest.raises(ApplicationError) as exc:
        api_key_create(partner=shop.partner, acting_user=shop.admin, name=" ", role="root")
    assert set(exc.value.extra["errors"]) == {"name", "role"}


def test_a_good_key_acts_as_its_partner_and_records_its_last_use(shop, operator_key):
    key, token = operator_key
    response = Api(token).get("/partner")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == shop.partner.pk
    key.refresh_from_db()
    assert key.last_used_at is not None


def _bad_cases(shop):
    key, token = make_key(shop.partner, shop.admin, "operator")
    revoked_key, revoked = make_key(shop.partner, shop.admin, "operator")
    api_key_revoke(key=revoked_key, acting_user=shop.admin)
    expired_key, expired = make_key(shop.partner, shop.admin, "operator",
                                    expires_at=timezone.now() + timedelta(minutes=1))
    ApiKey.objects.filter(pk=expired_key.pk).update(expires_at=timezone.now())
    wrong_secret = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    return {
        "missing": ({}, 401, "api_key_missing"),
        "empty": ({"Authorization": "Bearer "}, 401, "api_key_malformed"),
        "not bearer": ({"Authorization": f"Basic {token}"}, 401, "api_key_malformed"),
        "malformed": ({"Authorization": "Bearer sk_test_123"}, 401, "api_key_malformed"),
        "unknown prefix": ({"Authorization": "Bearer cpk_aaaaaaaaaaaa_" + "A" * 43}, 401,
                           "api_key_invalid"),
        "wrong secret": ({"Authorization": f"Bearer {wrong_secret}"}, 401, "api_key_invalid"),
        "revoked": ({"Authorization": f"Bearer {revoked}"}, 401, "api_key_revoked"),
        "expired": ({"Authorization": f"Bearer {expired}"}, 401, "api_key_expired"),
    }


def test_every_bad_key_is_401_in_the_error_shape_and_writes_nothing(shop):
    cases = _bad_cases(shop)
    before = (CouponTemplate.objects.count(), AuditLog.objects.count())
    for name, (headers, status, code) in cases.items():
        for method, path in (("GET", "/templates"), ("POST", "/templates")):
            client = Api(**headers)
            response = (client.get(path) if method == "GET" else client.post(path, TEMPLATE))
            assert response.status_code == status, (name, method, response.content)
            assert error_of(response)["code"] == code, name
            assert error_of(response)["type"] == "authentication_error"
            assert "RateLimit-Limit" not in response
    assert (CouponTemplate.objects.count(), AuditLog.objects.count()) == before


def test_a_read_only_key_reads_but_every_write_is_403_and_writes_nothing(shop, reader):
    assert reader.get("/templates").status_code == 200
    before = (CouponTemplate.objects.count(), AuditLog.objects.count())
    for path, body in (("/templates", TEMPLATE),
                       (f"/templates/{shop.template.pk}/disable", {}),
                       ("/issuance_requests", {"template_id": shop.template.pk,
                                               "account_ids": ["API-000000"]}),
                       ("/coupons/void", {"codes": ["X"], "reason": "r"})):
        response = reader.post(path, body)
        assert response.status_code == 403, (path, response.content)
        assert error_of(response)["code"] == "api_key_read_only"
    assert (CouponTemplate.objects.count(), AuditLog.objects.count()) == before


def test_a_partner_with_the_coupon_function_off_is_403_for_every_call(shop, api):
    shop.partner.coupon_enabled = False
    shop.partner.save(update_fields=["coupon_enabled"])
    for response in (api.get("/templates"), api.post("/templates", TEMPLATE)):
        assert response.status_code == 403
        error = error_of(response)
        assert error["code"] == "coupon_function_off"
        assert "Contact your BD to enable the Coupon Function" in error["message"]
    assert not CouponTemplate.objects.filter(name="API made").exists()


def test_another_partners_key_never_reaches_this_partners_rows(shop):
    rival = f.make_shop(2, prefix="RIV-", name="Rival")
    _key, token = make_key(rival.partner, rival.admin, "operator")
    client = Api(token)
    assert client.get(f"/templates/{shop.template.pk}").status_code == 404
    ids = [t["id"] for t in client.get("/templates").json()["data"]]
    assert shop.template.pk not in ids and rival.template.pk in ids
    response = client.post(f"/templates/{shop.template.pk}/disable")
    assert response.status_code == 404 and error_of(response)["code"] == "resource_missing"
    shop.template.refresh_from_db()
    assert shop.template.status == "active"


def test_writes_through_a_key_are_audited_with_the_keys_own_user(shop, operator_key, api):
    key, _ = operator_key
    response = api.post("/templates", TEMPLATE)
    assert response.status_code == 201, response.content
    row = AuditLog.objects.get(action="template.create", object_id=str(response.json()["id"]))
    assert row.actor_id == key.user_id and row.actor.username == f"apikey-{key.prefix}"


def test_a_revoked_key_stops_at_once(shop, operator_key, api):
    key, _ = operator_key
    assert api.get("/partner").status_code == 200
    api_key_revoke(key=key, acting_user=shop.admin)
    response = api.get("/partner")
    assert response.status_code == 401 and error_of(response)["code"] == "api_key_revoked"
    assert AuditLog.objects.filter(action="api_key.revoke", object_id=str(key.pk)).exists()
