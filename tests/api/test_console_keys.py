"""The console's API keys page: a partner admin makes a key (shown once), sees its prefix,
role and last use, and revokes it; other roles and partners can not."""
import re

from django.test import Client
from django.urls import reverse

from api.models import ApiKey
from tests import factories as f
from tests.api.helpers import Api


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def test_admin_creates_a_key_shown_once_then_only_its_prefix(shop):
    client = _client(shop.admin)
    response = client.post(reverse("api_keys"), {"name": "CRM", "role": "operator"})
    assert response.status_code == 200
    token = re.search(r"cpk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}", response.content.decode())[0]
    key = ApiKey.objects.get(partner=shop.partner, name="CRM")
    assert key.role == "operator" and token.startswith(key.display_prefix)
    assert Api(token).get("/partner").status_code == 200
    page = client.get(reverse("api_keys")).content.decode()
    assert key.display_prefix in page and token not in page
    assert "API keys" in client.get(reverse("coupons:template_list")).content.decode()


def test_admin_revokes_a_key(shop):
    client = _client(shop.admin)
    client.post(reverse("api_keys"), {"name": "Nightly", "role": "read_only"})
    key = ApiKey.objects.get(name="Nightly")
    response = client.post(reverse("api_key_revoke", args=[key.pk]))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_by == shop.admin


def test_a_bad_form_writes_nothing(shop):
    response = _client(shop.admin).post(reverse("api_keys"), {"name": "", "role": "god"})
    assert response.status_code == 200 and not ApiKey.objects.exists()


def test_operators_viewers_and_other_partners_get_no_key_page(shop):
    operator = f.make_member(shop.partner, "operator")
    viewer = f.make_member(shop.partner, "viewer")
    for user in (operator, viewer):
        client = _client(user)
        assert client.get(reverse("api_keys")).status_code == 403
        assert client.post(reverse("api_keys"), {"name": "x", "role": "operator"}
                           ).status_code == 403
        assert "API keys" not in client.get(reverse("coupons:template_list")).content.decode()
    rival = f.make_shop(0, template=False)
    _client(shop.admin).post(reverse("api_keys"), {"name": "Mine", "role": "operator"})
    key = ApiKey.objects.get(name="Mine")
    assert _client(rival.admin).post(reverse("api_key_revoke", args=[key.pk])).status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None
    assert not ApiKey.objects.filter(name="x").exists()
