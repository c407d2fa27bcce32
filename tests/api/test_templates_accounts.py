"""Templates and sub-accounts over the API, through the console's form, services and
rules: the same rules, the same messages."""
import re

from coupons.models import CouponTemplate
from tests import factories as f
from tests.api.helpers import error_of
from tests.api.test_keys import TEMPLATE

MONEY = re.compile(r"^\d+\.\d{2}$")
OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+08:00$")


def test_create_a_template_as_the_form_would(shop, api):
    product = f.make_product("ecs")
    body = {**TEMPLATE, "name": "Welcome", "face_value": "20.5", "all_products": False,
            "products": ["ecs"], "release_cap_amount": "1000"}
    response = api.post("/templates", body)
    assert response.status_code == 201, response.content
    out = response.json()
    template = CouponTemplate.objects.get(pk=out["id"], partner=shop.partner)
    assert list(template.products.all()) == [product]
    assert out["face_value"] == "20.50" and out["release_cap_amount"] == "1000.00"
    assert out["products"] == ["ecs"] and out["status"] == "active"
    assert OFFSET.match(out["created_at"]), out["created_at"]


def test_the_services_rules_refuse_with_their_messages(shop, api):
    tier2, _account = f.make_tier2(shop.partner)
    admin2 = f.make_member(tier2, "admin")
    from tests.api.helpers import Api, make_key

    _key, token = make_key(tier2, admin2, "operator")
    response = Api(token).post("/templates", {**TEMPLATE, "cost_bearer": "platform"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["param"] == "cost_bearer"
    assert error["errors"][0]["message"] == "A tier-2 reseller can create partner-borne " \
                                            "templates only."
    for bad, field in (({"face_value": "1,000"}, "face_value"),
                       ({"face_value": "0.001"}, "face_value"),
                       ({"valid_days": 2000}, "valid_days"),
                       ({"all_products": False, "products": []}, "products"),
                       ({"products": ["nope"], "all_products": False}, "products"),
                       ({"name": " "}, "name")):
        response = api.post("/templates", {**TEMPLATE, **bad})
        assert response.status_code == 422, (bad, response.content)
        assert field in {e["param"] for e in error_of(response).get("errors") or
                         [{"param": error_of(response)["param"]}]}, (bad, response.json())
    assert not CouponTemplate.objects.filter(name="API made").exists()


def test_list_filters_get_and_disable(shop, api):
    made = api.post("/templates", {**TEMPLATE, "kind": "threshold",
                                   "min_bill_amount": "200"}).json()
    listed = api.get("/templates", {"kind": "threshold"}).json()
    assert [t["id"] for t in listed["data"]] == [made["id"]]
    assert {t["id"] for t in api.get("/templates", {"cost_bearer": "platform"}).json()["data"]
            } == {shop.template.pk}
    assert api.get(f"/templates/{made['id']}").json()["min_bill_amount"] == "200.00"
    response = api.post(f"/templates/{made['id']}/disable")
    assert response.status_code == 200 and response.json()["status"] == "disabled"
    again = api.post(f"/templates/{made['id']}/disable")
    assert again.status_code == 422
    assert error_of(again)["message"] == "This template is already disabled."
    assert [t["id"] for t in api.get("/templates", {"status": "disabled"}).json()["data"]
            ] == [made["id"]]


def test_templates_page_by_cursor(shop, api):
    ids = [f.make_template(shop.partner, shop.admin).pk for _ in range(4)] + [shop.template.pk]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"starting_after": cursor} if cursor else {})}
        body = api.get("/templates", params).json()
        seen += [t["id"] for t in body["data"]]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        cursor = body["next_cursor"]
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert api.get("/templates", {"starting_after": "abc"}).status_code == 422


def test_sub_accounts_search_type_and_eligibility(shop, api):
    _reseller, tier2_account = f.make_tier2(shop.partner, account_id="T2-API")
    eur = f.make_accounts(shop.partner, 1, prefix="EUR-", currency="EUR")[0]
    body = api.get("/sub_accounts", {"q": "API-00000", "limit": 100}).json()
    assert {a["account_id"] for a in body["data"]} == {a.account_id for a in shop.accounts}
    body = api.get("/sub_accounts", {"type": "tier2_reseller"}).json()
    assert [a["account_id"] for a in body["data"]] == ["T2-API"]
    body = api.get("/sub_accounts", {"template_id": shop.template.pk, "limit": 100}).json()
    by_id = {a["account_id"]: a for a in body["data"]}
    assert by_id[shop.accounts[0].account_id]["eligible"] is True
    assert [r["code"] for r in by_id["T2-API"]["refusals"]] == ["tier2"]
    assert [r["code"] for r in by_id[eur.account_id]["refusals"]] == ["wrong_currency"]
    assert by_id[eur.account_id]["refusals"][0]["message"] == "Billed in EUR"
    one = api.get(f"/sub_accounts/{tier2_account.account_id}",
                  {"template_id": shop.template.pk}).json()
    assert one["eligible"] is False
    rival = f.make_shop(1, prefix="RIVAL-")
    assert api.get(f"/sub_accounts/{rival.accounts[0].account_id}").status_code == 404
    assert api.get("/sub_accounts", {"template_id": rival.template.pk}).status_code == 404
