"""Sign-in lockout, submit rate limit, headers, CSRF on login, session expiry (the deploy
check is in tests/platform/test_env.py)."""
import uuid

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from audit.models import AuditLog
from tests import factories as f


@pytest.fixture
def limits_on(settings):
    from couponplatform import ratelimit

    settings.RATELIMIT_ENABLED = True
    # The test client's address: its failures of earlier tests (and runs) count against the
    # per-client limit for 15 minutes.
    ratelimit.reset(ratelimit.LOGIN_CLIENT_FAILURES, "127.0.0.1")


def _login(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


@pytest.mark.django_db
def test_five_failed_sign_ins_lock_the_user_and_say_when_to_retry(client, limits_on):
    username = f"lock-{uuid.uuid4().hex[:8]}"
    f.make_user(username)  # password "pw"
    for _ in range(5):
        assert _login(client, username, "wrong").status_code == 200
    locked = _login(client, username, "wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "Try again at" in locked.content.decode()
    # Even the right password is refused while locked, so guessing gains nothing.
    right = _login(client, username, "pw")
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_successful_sign_in_clears_earlier_failures(client, limits_on):
    username = f"ok-{uuid.uuid4().hex[:8]}"
    f.make_user(username)
    for _ in range(4):
        _login(client, username, "wrong")
    assert _login(client, username, "pw").status_code == 302
    client.logout()
    for _ in range(4):
        assert _login(client, username, "wrong").status_code == 200


@pytest.mark.django_db
def test_lockout_is_per_username_not_global(client, limits_on):
    victim, other = (f"v-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}")
    f.make_user(victim)
    f.make_user(other)
    for _ in range(6):
        _login(client, victim, "wrong")
    assert _login(client, other, "pw").status_code == 302


@pytest.mark.django_db
def test_confirming_too_many_requests_a_minute_is_refused_with_a_message(
    client, limits_on, distributor, dist_admin,
):
    from couponplatform import ratelimit

    accounts = f.make_accounts(distributor, 1, prefix="RL-")
    template = f.make_template(distributor, dist_admin, issue_limit="unlimited")
    client.force_login(dist_admin)
    url = reverse("coupons:issue", args=[template.pk])
    for _ in range(ratelimit.SUBMITS.limit):
        ratelimit.hit(ratelimit.SUBMITS, f"user:{dist_admin.pk}")
    client.post(url, {"action": "paste", "account_ids": accounts[0].account_id})
    before = template.requests.count()
    response = client.post(url, {"action": "confirm"}, follow=True)
    assert "confirmed many requests in a short time" in response.content.decode()
    assert template.requests.count() == before


@pytest.mark.django_db
def test_pages_send_security_headers(client, dist_admin):
    client.force_login(dist_admin)
    response = client.get(reverse("coupons:template_list"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


@pytest.mark.django_db
def test_login_post_without_csrf_token_is_refused():
    from django.test import Client

    f.make_user("csrf-user")
    response = Client(enforce_csrf_checks=True).post(
        reverse("login"), {"username": "csrf-user", "password": "pw"},
    )
    assert response.status_code == 403


def test_sessions_expire_within_a_working_day():
    assert django_settings.SESSION_COOKIE_AGE <= 8 * 3600
    assert django_settings.SESSION_COOKIE_HTTPONLY


@pytest.mark.django_db
def test_audit_rows_refuse_update_and_delete(distributor, dist_admin):
    f.make_template(distributor, dist_admin)
    row = AuditLog.objects.latest("pk")
    row.reason = "tampered"
    with pytest.raises(TypeError):
        row.save()
    with pytest.raises(TypeError):
        row.delete()
    with pytest.raises(TypeError):
        AuditLog.objects.filter(pk=row.pk).update(reason="tampered")
    with pytest.raises(TypeError):
        AuditLog.objects.filter(pk=row.pk).delete()


@pytest.mark.django_db
def test_audit_table_refuses_raw_update_and_delete_on_postgresql(
    postgres_only, distributor, dist_admin,
):
    from django.db import DatabaseError, connection, transaction

    f.make_template(distributor, dist_admin)
    row = AuditLog.objects.latest("pk")
    for sql in ("UPDATE audit_auditlog SET reason = 'x' WHERE id = %s",
                "DELETE FROM audit_auditlog WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [row.pk])
    assert AuditLog.objects.filter(pk=row.pk, reason="").exists()


@pytest.mark.django_db
def test_admin_sign_in_locks_the_user_like_the_console_sign_in(client, limits_on):
    username = f"bdlock-{uuid.uuid4().hex[:8]}"
    f.make_bd(username)
    url = "/admin/login/"
    assert client.get(url).status_code == 200
    for _ in range(5):
        client.post(url, {"username": username, "password": "wrong"})
    locked = client.post(url, {"username": username, "password": "pw"})
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_admin_sign_in_still_lets_a_bd_in(client):
    f.make_bd("bd-in")
    response = client.post("/admin/login/", {"username": "bd-in", "password": "pw"})
    assert response.status_code == 302 and response.url == "/admin/"
    assert client.get("/admin/").status_code == 200
