"""The API's test helpers: keys made through the key service, and a client that sends
them."""
import json

from django.test import Client

from api.keys import api_key_create


def make_key(partner, admin, role="operator", name=None, **kwargs):
    key, token = api_key_create(partner=partner, acting_user=admin,
                                name=name or f"{role} key", role=role, **kwargs)
    return key, token


class Api:
    """A test client for /api/v1/ with a bearer token."""

    def __init__(self, token: str | None = None, **headers):
        self.client = Client()
        self.headers = dict(headers)
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def get(self, path, params=None, **headers):
        return self.client.get(f"/api/v1{path}", params or {},
                               headers={**self.headers, **headers})

    def post(self, path, body=None, **headers):
        return self.client.post(f"/api/v1{path}", json.dumps(body if body is not None else {}),
                                content_type="application/json",
                                headers={**self.headers, **headers})

    def call(self, method, path, **kwargs):
        return self.client.generic(method, f"/api/v1{path}", headers=self.headers, **kwargs)


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"type", "code", "message", "param", "request_id"} <= set(error), error
    assert error["request_id"]
    return error
