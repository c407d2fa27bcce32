"""One error shape under /api/: JSON always (no route, a wrong method, bad input, a
failure of ours), validation errors naming each field, a request id on each."""
from unittest import mock

from django.test import Client

from tests.api.helpers import error_of


def test_an_unknown_path_under_api_is_a_json_404(api):
    for path in ("/api/v1/nope", "/api/v2/templates", "/api/", "/api/v1/templates/abc"):
        response = Client().get(path, headers=api.headers)
        assert response.status_code == 404, path
        assert error_of(response)["type"] == "invalid_request_error"


def test_a_method_a_route_does_not_take_is_json(api):
    response = api.call("DELETE", "/templates")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_validation_errors_name_each_field(api):
    response = api.post("/templates", {"name": "x", "kind": "gold", "currency": "USD",
                                       "face_value": 20, "validity_type": "relative",
                                       "cost_bearer": "partner", "issue_limit": "one"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "parameter_invalid"
    params = {e["param"] for e in error["errors"]}
    assert {"kind", "face_value"} <= params, error


def test_the_forms_own_rules_and_messages_come_back_field_by_field(api):
    response = api.post("/templates", {
        "name": "x", "kind": "discount", "currency": "USD", "face_value": "1e3",
        "discount_rate": "150", "validity_type": "fixed", "valid_from": "2026-07-01",
        "valid_until": "2026-06-01", "cost_bearer": "partner", "issue_limit": "one"})
    assert response.status_code == 422
    errors = {e["param"]: e["message"] for e in error_of(response)["errors"]}
    assert "face_value" in errors and "discount_rate" in errors, errors
    assert errors["valid_until"] == "Valid until can not be before valid from."


def test_a_query_parameter_out_of_range_is_422_naming_it(api):
    response = api.get("/coupons", {"limit": 1000})
    assert response.status_code == 422 and error_of(response)["param"] == "limit"


def test_a_failure_of_ours_is_a_json_500_with_the_request_id(api):
    with mock.patch("api.routers.templates.selectors.coupon_template_list",
                    side_effect=RuntimeError("boom")):
        response = api.get("/templates")
    assert response.status_code == 500
    error = error_of(response)
    assert error["type"] == "api_error" and "boom" not in error["message"]
    assert response["X-Request-ID"] == error["request_id"]


def test_the_request_id_set_by_a_middleware_is_the_errors(api):
    from api.request_id import request_id

    class Req:
        request_id = "req-from-middleware"

    assert request_id(Req()) == "req-from-middleware"
    response = api.get("/templates/999999999")
    assert error_of(response)["request_id"] == response["X-Request-ID"]


def test_nul_characters_are_refused_not_a_500(api):
    assert api.get("/sub_accounts", {"q": "a\x00b"}).status_code == 422
    assert api.get("/coupons/AB%00C").status_code in (404, 422)
    response = api.post("/coupons/void", {"codes": ["a\u0000"], "reason": "x"})
    assert response.status_code == 422


def test_the_schema_and_the_docs_page_are_served_from_our_own_static_files():
    client = Client()
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["version"] == "1"
    assert "/api/v1/coupons" in schema.json()["paths"]
    docs = client.get("/api/v1/docs")
    html = docs.content.decode()
    assert docs.status_code == 200 and "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
