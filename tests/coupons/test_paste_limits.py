"""Issue Coupon's paste box and pick list: a value longer than any account ID, or a paste
longer than a full request, is refused with a message saying so; no message echoes such a
value whole, and nothing large waits in the session's messages."""
import random
import string

import pytest
from django.conf import settings
from django.urls import reverse

from coupons.forms import paste_max_chars
from coupons.rules import ACCOUNT_ID_MAX
from tests import factories as f
from tests.factories import nothing_written

pytestmark = pytest.mark.django_db

# A message cookie and the session may carry this much of what the page says, at most.
MESSAGES_MAX = 4000


def junk(length: int, seed: int) -> str:
    """Letters that do not compress (the message cookie is compressed: a run of one letter
    would fit it whatever its length)."""
    return "".join(random.Random(seed).choices(string.ascii_letters, k=length))


@pytest.fixture
def template(distributor, dist_admin):
    return f.make_template(distributor, dist_admin, issue_limit="unlimited")


def post(client, template, data):
    return client.post(reverse("coupons:issue", args=[template.pk]), data)


def kept_messages(client) -> int:
    """Characters of messages waiting for the next page: the cookie's and the session's."""
    cookie = client.cookies.get("messages")
    stored = client.session.get("_messages", "")
    return len(cookie.value if cookie else "") + len(str(stored))


def shown(client, template) -> str:
    return client.get(reverse("coupons:issue", args=[template.pk])).content.decode()


def test_a_pasted_id_longer_than_any_account_id_is_refused_and_not_echoed(
    client, dist_admin, template, customers,
):
    client.force_login(dist_admin)
    huge = junk(100_000, 1)  # (the 400,000 of the report is past the paste's own limit)
    with nothing_written():
        response = post(client, template, {"action": "paste",
                                           "account_ids": f"{customers[0].account_id}\n{huge}"})
    assert response.status_code == 302
    assert kept_messages(client) < MESSAGES_MAX
    html = shown(client, template)
    assert f"An account ID has at most {ACCOUNT_ID_MAX} characters" in html
    assert "1 pasted value is longer: " + huge[:ACCOUNT_ID_MAX] + "…" in html
    assert huge[:ACCOUNT_ID_MAX + 1] not in html
    assert client.session.get(f"issue_selection:{template.pk}", []) == []


@pytest.mark.parametrize("size", [None, 400_000])
def test_a_paste_longer_than_a_full_request_is_refused_saying_how_long_it_may_be(
    client, dist_admin, template, size,
):
    client.force_login(dist_admin)
    limit = paste_max_chars()
    assert limit == settings.ISSUE_MAX_ACCOUNTS * (ACCOUNT_ID_MAX + 2)
    text = "\n".join(["B" * ACCOUNT_ID_MAX] * (limit // (ACCOUNT_ID_MAX + 1) + 1))
    if size:
        text = junk(size, 2)  # the report's one 400,000-character "account ID"
    assert len(text) > limit
    with nothing_written():
        post(client, template, {"action": "paste", "account_ids": text})
    assert kept_messages(client) < MESSAGES_MAX
    html = shown(client, template)
    assert f"Paste at most {limit:,} characters" in html
    assert f"this was {len(text):,}" in html


def test_a_full_request_of_the_longest_ids_fits_the_paste_box(client, dist_admin, template):
    client.force_login(dist_admin)
    ids = [f"{i:0{ACCOUNT_ID_MAX}d}" for i in range(settings.ISSUE_MAX_ACCOUNTS)]
    post(client, template, {"action": "paste", "account_ids": "\r\n".join(ids)})
    assert kept_messages(client) < MESSAGES_MAX
    html = shown(client, template)
    assert "not among your sub-accounts" in html  # checked, not refused for its size
    assert "Paste at most" not in html


def test_a_picked_value_of_any_length_is_shown_by_its_start(client, dist_admin, template):
    client.force_login(dist_admin)
    huge = junk(100_000, 3)
    with nothing_written():
        post(client, template, {"action": "add", "pick": [huge, "D" * 40]})
    assert kept_messages(client) < MESSAGES_MAX
    html = shown(client, template)
    assert "not among your sub-accounts: " + huge[:ACCOUNT_ID_MAX] + "…, " in html
    assert huge[:ACCOUNT_ID_MAX + 1] not in html
