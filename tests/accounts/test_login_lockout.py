"""The sign-in lockout against an outside attacker: look-alike spellings of a username,
password spraying from one client, and five guesses that would lock a user out for
everyone (docs/ARCHITECTURE.md, Security).

Each test signs in from addresses of its own (REMOTE_ADDR), so the counters of one test,
kept in the shared cache for 15 minutes, never meet another's."""
import uuid

import pytest

from couponplatform import ratelimit
from tests import factories as f

pytestmark = pytest.mark.django_db

LOGIN_URLS = ["/accounts/login/", "/admin/login/"]


@pytest.fixture(autouse=True)
def limits_on(settings):
    settings.RATELIMIT_ENABLED = True
    settings.RATELIMIT_TRUSTED_PROXIES = 0


def new_address() -> str:
    """An address of 10/8 drawn at random: no other test, nor a run of a few minutes ago
    (whose counters the cache still holds), sends from it."""
    r = uuid.uuid4().int
    return f"10.{r >> 16 & 255}.{r >> 8 & 255}.{r & 255}"


def bd_user() -> str:
    """A BD (may sign in at both doors) whose name has letters with look-alikes."""
    username = f"bd{uuid.uuid4().hex[:6]}"
    f.make_bd(username)  # password "pw"
    return username


def sign_in(client, url, username, password, address):
    return client.post(url, {"username": username, "password": password},
                       REMOTE_ADDR=address)


def fullwidth(text: str) -> str:
    """'bd2' → 'ｂｄ２': the fullwidth forms, which NFKC turns back into ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def lookalikes(username: str) -> list[str]:
    """Spellings of `username` that authentication reads as it, or that differ by case."""
    return [fullwidth(username[0]) + username[1:], username.upper(), f"  {username} ",
            fullwidth(username), username[0].upper() + fullwidth(username[1:])]


def test_every_spelling_that_signs_in_as_a_user_counts_as_that_user():
    key = ratelimit.login_username_key
    assert len({key(s) for s in ["bd2", "ｂd2", "ＢＤ２", " BD2 ", "Bd２", "bd2\t"]}) == 1
    assert key("bd2") != key("bd3")
    assert key("ﬀ") == key("FF")  # a ligature NFKC splits
    assert key("Straße") == key("STRASSE")  # case-folding, not lower()
    assert len(key("x" * 100_000)) == 32  # the cache key stays short


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_a_look_alike_spelling_does_not_sign_in_past_the_lockout(client, url):
    """After five wrong passwords for bd…, 'ｂd…' with the right password is refused too
    (it signed in as the user: the lockout counted the raw spelling)."""
    username, address = bd_user(), new_address()
    for _ in range(5):
        assert sign_in(client, url, username, "wrong", address).status_code == 200
    for spelling in lookalikes(username):
        response = sign_in(client, url, spelling, "pw", address)
        assert response.status_code == 429, spelling
        assert "Too many failed sign-ins for this user" in response.content.decode()
        assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_guesses_spread_over_look_alike_spellings_lock_the_user(client, url):
    username, address = bd_user(), new_address()
    spellings = [username, *lookalikes(username)]
    for spelling in spellings[:5]:
        assert sign_in(client, url, spelling, "wrong", address).status_code == 200
    for spelling in spellings:
        assert sign_in(client, url, spelling, "pw", address).status_code == 429, spelling
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_one_client_spraying_many_usernames_is_stopped(client, url):
    """Password spraying: one wrong password each for 40 usernames from one client. After
    30 the client is refused, whichever username it tries; another client is not."""
    address = new_address()
    usernames = [f"spray-{uuid.uuid4().hex[:6]}" for _ in range(40)]
    answers = [sign_in(client, url, name, "Winter2026!", address).status_code
               for name in usernames]
    assert answers[:ratelimit.LOGIN_CLIENT_FAILURES.limit] == [200] * 30
    assert set(answers[30:]) == {429}, answers
    refused = sign_in(client, url, usernames[0], "Winter2026!", address)
    assert "Too many failed sign-ins from your network" in refused.content.decode()
    username = bd_user()
    assert sign_in(client, url, username, "pw", address).status_code == 429
    assert sign_in(client, url, username, "pw", new_address()).status_code == 302


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_five_guesses_from_a_stranger_do_not_lock_the_user_out_elsewhere(client, url):
    """The free denial of service: five wrong guesses for `bd` from anywhere locked the BD
    out for 15 minutes. They lock the stranger's client for that user; the BD, elsewhere,
    signs in."""
    username, stranger, office = bd_user(), new_address(), new_address()
    for _ in range(6):
        sign_in(client, url, username, "wrong", stranger)
    assert sign_in(client, url, username, "pw", stranger).status_code == 429
    assert sign_in(client, url, username, "pw", office).status_code == 302


def test_guesses_from_many_clients_still_lock_the_user_for_everyone(client):
    """A guesser with many addresses meets the username's own limit: 50 failures from 25
    clients (two each, under any client's limit) lock it everywhere."""
    username = bd_user()
    for _ in range(ratelimit.LOGIN_USER_FAILURES.limit // 2):
        address = new_address()
        for _ in range(2):
            assert sign_in(client, "/accounts/login/", username, "wrong", address
                           ).status_code == 200
    response = sign_in(client, "/accounts/login/", username, "pw", new_address())
    assert response.status_code == 429
    assert "Try again at" in response.content.decode()


def test_a_forged_forwarded_for_is_not_read_without_a_trusted_proxy(client):
    """With no proxy configured, X-Forwarded-For is the client's own text: a new value per
    guess must not make each guess a new client."""
    username, address = bd_user(), new_address()
    for i in range(5):
        client.post("/accounts/login/", {"username": username, "password": "wrong"},
                    REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    response = client.post("/accounts/login/", {"username": username, "password": "pw"},
                           REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_client_is_the_address_it_saw(client, settings):
    """One proxy in front: REMOTE_ADDR is the proxy, the last X-Forwarded-For entry the
    client; what the client wrote before it is not read."""
    settings.RATELIMIT_TRUSTED_PROXIES = 1
    username, proxy, guesser, office = bd_user(), new_address(), new_address(), new_address()
    for i in range(5):
        client.post("/accounts/login/", {"username": username, "password": "wrong"},
                    REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, {guesser}")
    locked = client.post("/accounts/login/", {"username": username, "password": "pw"},
                         REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=guesser)
    assert locked.status_code == 429
    ok = client.post("/accounts/login/", {"username": username, "password": "pw"},
                     REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=office)
    assert ok.status_code == 302


@pytest.mark.parametrize(("meta", "expected"), [
    ({"REMOTE_ADDR": "203.0.113.7"}, "203.0.113.7"),
    ({"REMOTE_ADDR": "2001:db8:1:2:3:4:5:6"}, "2001:db8:1:2::/64"),
    ({"REMOTE_ADDR": "::ffff:203.0.113.7"}, "203.0.113.7"),
    ({"REMOTE_ADDR": ""}, "unknown"),
])
def test_client_key(rf, meta, expected):
    assert ratelimit.client_key(rf.post("/accounts/login/", **meta)) == expected
