"""Issuance requests, coupons, voids, deductions and usage totals over the API, through
the console's submit, cancel, void and Coupon Usage code."""
from datetime import timedelta

from django.utils import timezone

from approvals.models import Approval
from coupons.models import Coupon, IssuanceRequest
from tests import factories as f
from tests.api.helpers import Api, error_of, make_key


def _submit(api, shop, accounts=None):
    ids = [a.account_id for a in (accounts or shop.accounts)]
    with f.committed():
        response = api.post("/issuance_requests", {"template_id": shop.template.pk,
                                                   "account_ids": ids})
    return response


def test_submit_follow_and_release(shop, api):
    response = _submit(api, shop)
    assert response.status_code == 201, response.content
    out = response.json()
    assert out["status"] == "pending" and out["route"] == "bd"
    assert out["total_amount"] == "250.00" and out["recipient_count"] == 5
    assert out["release_progress"] == 0.0
    f.approve(IssuanceRequest.objects.get(pk=out["id"]), shop.bd)
    got = api.get(f"/issuance_requests/{out['id']}").json()
    assert got["status"] == "issued" and got["released_count"] == 5
    assert got["release_progress"] == 1.0 and got["approver"] == shop.bd.username
    assert [r["id"] for r in api.get("/issuance_requests", {"status": "issued"}).json()[
        "data"]] == [out["id"]]
    assert api.get("/issuance_requests", {"template_id": shop.template.pk + 999}
                   ).json()["data"] == []
    today = timezone.localdate()
    assert len(api.get("/issuance_requests", {"submitted_from": today.isoformat(),
                                              "submitted_to": today.isoformat()}
                       ).json()["data"]) == 1
    assert api.get("/issuance_requests", {"submitted_to": (today - timedelta(days=1))
                                          .isoformat()}).json()["data"] == []


def test_a_refused_selection_names_the_ids_and_the_rule_and_writes_nothing(shop, api):
    _reseller, tier2 = f.make_tier2(shop.partner, account_id="T2-REFUSED")
    ids = [shop.accounts[0].account_id, "NOPE-1", tier2.account_id, "NOPE-1"]
    response = api.post("/issuance_requests", {"template_id": shop.template.pk,
                                               "account_ids": ids})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "selection_refused"
    groups = {e["code"]: e["account_ids"] for e in error["errors"]}
    assert groups == {"duplicate": ["NOPE-1"], "unknown": ["NOPE-1"], "tier2": ["T2-REFUSED"]}
    assert "Platform-borne coupons can not be issued to tier-2 resellers: T2-REFUSED." in \
        error["message"]
    assert not IssuanceRequest.objects.filter(partner=shop.partner).exists()
    too_many = api.post("/issuance_requests", {"template_id": shop.template.pk,
                                               "account_ids": ["x"] * 10_001})
    assert too_many.status_code == 422 and error_of(too_many)["param"] == "account_ids"


def test_the_budget_rule_refuses_with_the_remaining_amount(shop, api):
    shop.partner.budgets.update(amount=100)
    response = _submit(api, shop)
    assert response.status_code == 422
    assert "remaining platform-borne budget of 100.00 USD" in error_of(response)["message"]


def test_cancel_a_pending_request(shop, api):
    out = _submit(api, shop).json()
    response = api.post(f"/issuance_requests/{out['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert Approval.objects.get(request_id=out["id"]).status == "cancelled"
    again = api.post(f"/issuance_requests/{out['id']}/cancel")
    assert again.status_code == 409 and error_of(again)["code"] == "invalid_state"
    rival = f.make_shop(1, prefix="RC-")
    _key, token = make_key(rival.partner, rival.admin)
    other = _submit(Api(token), rival).json()
    assert api.post(f"/issuance_requests/{other['id']}/cancel").status_code == 404
    assert IssuanceRequest.objects.get(pk=other["id"]).status == "pending"


def _issued(shop):
    return f.issue(shop.template, shop.admin, shop.bd, shop.accounts)


def test_coupons_list_filters_sorts_and_pages(shop, api):
    coupons = _issued(shop)
    body = api.get("/coupons", {"limit": 2}).json()
    assert len(body["data"]) == 2 and body["has_more"] is True
    seen, cursor = [], None
    while True:
        body = api.get("/coupons", {"limit": 2, "sort": "valid_until",
                                    **({"starting_after": cursor} if cursor else {})}).json()
        seen += [c["code"] for c in body["data"]]
        cursor = body["next_cursor"]
        if not body["has_more"]:
            break
    assert sorted(seen) == sorted(c.code for c in coupons) and len(set(seen)) == 5
    first = body["data"][0] if body["data"] else None
    assert first is None or first["amount"] == "50.00" and first["currency"] == "USD"
    one = api.get("/coupons", {"sub_account": shop.accounts[1].account_id}).json()["data"]
    assert [c["account_id"] for c in one] == [shop.accounts[1].account_id]
    assert api.get("/coupons", {"status": "voided"}).json()["data"] == []
    assert api.get("/coupons", {"template_id": 10**12}).status_code == 422
    by_amount = api.get("/coupons", {"sort": "-amount", "limit": 100}).json()["data"]
    assert len(by_amount) == 5


def test_coupon_with_its_deductions_and_the_deductions_list(shop, api):
    coupons = _issued(shop)
    day = timezone.localdate() - timedelta(days=1)
    product = f.make_product("ecs")
    f.bill_usage([(shop.accounts[0], day, product.code, "12.34")])
    detail = api.get(f"/coupons/{coupons[0].code}").json()
    assert detail["used"] == "12.34" and detail["balance"] == "37.66"
    assert [(d["amount"], d["product_code"]) for d in detail["deductions"]] == [
        ("12.34", "ecs")]
    listed = api.get("/deductions", {"sub_account": shop.accounts[0].account_id}).json()
    assert [d["coupon_code"] for d in listed["data"]] == [coupons[0].code]
    assert api.get("/deductions", {"coupon": coupons[1].code}).json()["data"] == []
    assert api.get("/deductions", {"date_from": timezone.localdate().isoformat()}
                   ).json()["data"] == []
    totals = api.get("/usage/totals").json()["totals"]
    assert totals == [{"currency": "USD", "amount": "250.00", "used": "12.34",
                       "remaining": "237.66", "voided": "0.00"}]


def test_void_in_batch_each_code_on_its_own(shop, api):
    coupons = _issued(shop)
    rival = f.make_shop(1, prefix="RV-")
    rival_coupon = f.issue(rival.template, rival.admin, rival.bd, rival.accounts)[0]
    codes = [coupons[0].code, "NO-SUCH", rival_coupon.code, coupons[1].code, coupons[0].code]
    assert api.post("/coupons/void", {"codes": codes, "reason": " "}).status_code == 422
    response = api.post("/coupons/void", {"codes": codes, "reason": "Duplicate campaign"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["voided"], body["refused"]) == (2, 3)
    assert [r["result"] for r in body["results"]] == ["voided", "refused", "refused",
                                                      "voided", "refused"]
    assert body["results"][0]["coupon"]["voided_amount"] == "50.00"
    statuses = dict(Coupon.objects.values_list("code", "status"))
    assert statuses[coupons[0].code] == statuses[coupons[1].code] == "voided"
    assert statuses[rival_coupon.code] == "available"
    assert {statuses[c.code] for c in coupons[2:]} == {"available"}
    again = api.post("/coupons/void", {"codes": [coupons[0].code], "reason": "x"}).json()
    assert again["results"][0]["error"]["message"].startswith(f"Coupon {coupons[0].code} is")
    assert api.post("/coupons/void", {"codes": ["x"] * 1001, "reason": "x"}).status_code == 422
