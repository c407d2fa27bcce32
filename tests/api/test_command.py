from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from api.models import ApiKey
from tests.api.helpers import Api


def test_api_key_create_prints_a_working_key(shop):
    out = StringIO()
    call_command("api_key_create", partner=shop.partner.name, role="read-only", name="Ops",
                 stdout=out, stderr=StringIO())
    token = out.getvalue().strip()
    key = ApiKey.objects.get(name="Ops")
    assert key.role == "read_only" and key.created_by == shop.admin
    assert Api(token).get("/partner").status_code == 200
    with pytest.raises(CommandError):
        call_command("api_key_create", partner="No such", role="operator", name="x")
