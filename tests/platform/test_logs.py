"""One JSON line per request and per task (couponplatform/logs.py), the request id in the
X-Request-ID header, in the tasks the request enqueued and in the audit rows it wrote."""
import json
import logging

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditLog
from couponplatform import logs
from couponplatform.celery import app
from tests import factories as f

FORMAT = logs.JsonFormatter()


@pytest.fixture
def template(distributor, dist_admin):
    return f.make_template(distributor, dist_admin)


@pytest.fixture
def access_lines(caplog):
    """The request lines, as the JSON the production handler writes."""
    caplog.set_level(logging.INFO, logger="couponplatform.access")

    def lines() -> list[dict]:
        return [json.loads(FORMAT.format(r)) for r in caplog.records
                if r.name == "couponplatform.access"]
    return lines


@pytest.fixture
def task_lines(caplog):
    caplog.set_level(logging.INFO, logger="couponplatform.tasks")

    def lines() -> list[dict]:
        return [json.loads(FORMAT.format(r)) for r in caplog.records
                if r.name == "couponplatform.tasks"]
    return lines


@pytest.mark.django_db
def test_each_request_gets_an_id_in_its_response_header(client):
    first, second = client.get("/accounts/login/"), client.get("/accounts/login/")
    assert len(first["X-Request-ID"]) == 32 and int(first["X-Request-ID"], 16) >= 0
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert logs.current_request_id() == ""  # not left behind for the next request


@pytest.mark.django_db
@pytest.mark.parametrize("incoming", ["lb-7f3a2c", "2c1e4b8a-9d4f-4c1b-8e0f-1a2b3c4d5e6f",
                                      "req_01HV8Z3QK9:edge.7"])
def test_a_sane_incoming_request_id_is_kept(client, incoming):
    assert client.get("/accounts/login/", HTTP_X_REQUEST_ID=incoming)["X-Request-ID"] == incoming


@pytest.mark.django_db
@pytest.mark.parametrize("incoming", [
    "x" * 65, "has space", 'quote"d', "semi;colon", "-leading-dash", "<script>", "é-accent",
    "new\tline",
])
def test_an_insane_incoming_request_id_is_replaced(client, incoming):
    got = client.get("/accounts/login/", HTTP_X_REQUEST_ID=incoming)["X-Request-ID"]
    assert got != incoming and len(got) == 32


@pytest.mark.django_db
def test_one_json_line_per_request_with_user_partner_path_status_duration(
    client, access_lines, distributor, dist_admin,
):
    client.force_login(dist_admin)
    response = client.get(reverse("coupons:template_list"), HTTP_X_REQUEST_ID="req-1")
    assert response.status_code == 200
    [line] = access_lines()
    assert line["request_id"] == "req-1" == response["X-Request-ID"]
    assert line["event"] == "request" and line["level"] == "INFO"
    assert line["logger"] == "couponplatform.access"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/coupons/templates/", 200)
    assert (line["user"], line["partner"]) == (dist_admin.pk, distributor.pk)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["time"].endswith("+00:00")


@pytest.mark.django_db
def test_a_sub_account_request_names_its_partner_and_account(client, access_lines, customers):
    user = f.make_subaccount_user(customers[0])
    client.force_login(user)
    assert client.get(reverse("billing:coupons")).status_code == 200
    [line] = access_lines()
    assert (line["user"], line["partner"], line["sub_account"]) == (
        user.pk, customers[0].partner_id, customers[0].pk)


@pytest.mark.django_db
def test_refusals_redirects_and_misses_are_logged_once_each(
    client, access_lines, dist_viewer, template,
):
    anonymous = Client()
    assert anonymous.get(reverse("coupons:template_list")).status_code == 302
    assert anonymous.get("/no/such/page/").status_code == 404
    assert anonymous.get("/healthz").status_code == 200
    client.force_login(dist_viewer)
    assert client.post(reverse("coupons:template_disable", args=[template.pk])).status_code == 403
    assert [(line["path"], line["status"], line["user"]) for line in access_lines()] == [
        ("/coupons/templates/", 302, None), ("/no/such/page/", 404, None),
        ("/healthz", 200, None),
        (f"/coupons/templates/{template.pk}/disable/", 403, dist_viewer.pk),
    ]


@pytest.mark.django_db
def test_the_log_line_costs_no_query_for_a_request_that_loaded_no_user(
    django_assert_num_queries, access_lines,
):
    with django_assert_num_queries(0):
        Client().get("/healthz")
    assert access_lines()[-1]["user"] is None


@pytest.mark.django_db
def test_audit_rows_carry_the_request_id(client, dist_admin, template):
    client.force_login(dist_admin)
    response = client.post(reverse("coupons:template_disable", args=[template.pk]),
                           HTTP_X_REQUEST_ID="disable-req-42")
    assert response.status_code == 302
    row = AuditLog.objects.filter(object_id=str(template.pk)).latest("pk")
    assert (row.action, row.request_id) == ("template.disable", "disable-req-42")


@pytest.mark.django_db
def test_audit_rows_written_outside_a_request_or_task_have_no_request_id(distributor, dist_admin):
    f.make_template(distributor, dist_admin)
    assert AuditLog.objects.latest("pk").request_id == ""


@app.task(name="tests.platform.request_id_probe")
def request_id_probe() -> str:
    return logs.current_request_id()


# An eager result read here; Celery's guard against waiting on a subtask looks at its task
# stack, which a test that ran earlier in the same process may have left non-empty.
SYNC = {"disable_sync_subtasks": False}


def test_a_task_runs_under_the_request_id_its_message_carries(task_lines):
    result = request_id_probe.apply(headers={logs.TASK_HEADER: "from-the-web-1"})
    assert result.get(**SYNC) == "from-the-web-1"
    [line] = task_lines()
    assert line["request_id"] == "from-the-web-1"
    assert (line["event"], line["task"], line["state"], line["retries"]) == (
        "task", "tests.platform.request_id_probe", "SUCCESS", 0)
    assert line["task_id"] == result.id and line["duration_ms"] >= 0
    assert logs.current_request_id() == ""  # reset once the task is done


def test_a_task_run_inside_a_request_keeps_its_id_and_one_without_uses_its_own(task_lines):
    token = logs.REQUEST_ID.set("the-request")
    try:
        assert request_id_probe.apply().get(**SYNC) == "the-request"  # eager, in the request
    finally:
        logs.REQUEST_ID.reset(token)
    beat = request_id_probe.apply()  # as beat sends it: no request behind it
    assert beat.get(**SYNC) == beat.id
    assert [line["request_id"] for line in task_lines()] == ["the-request", beat.id]


def test_a_failing_task_is_logged_once_with_its_state(task_lines):
    @app.task(name="tests.platform.failing_probe")
    def failing_probe():
        raise ValueError("no")

    app.conf.task_eager_propagates = False  # as in a worker: the failure is the task's state
    try:
        assert failing_probe.apply().state == "FAILURE"
    finally:
        app.conf.task_eager_propagates = True
    [line] = task_lines()
    assert (line["task"], line["state"]) == ("tests.platform.failing_probe", "FAILURE")


def test_the_published_message_carries_the_request_id(monkeypatch):
    from couponplatform import dispatch

    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args, headers: sent.append(headers))
    app.conf.task_always_eager = False
    token = logs.REQUEST_ID.set("approve-9")
    try:
        dispatch.enqueue(dispatch.REQUEST_RELEASE, 9)
        logs.REQUEST_ID.reset(token)
        dispatch.enqueue(dispatch.REQUEST_RELEASE, 10)  # outside a request: no header
    finally:
        app.conf.task_always_eager = True  # tests/conftest.py's setting for every test
    assert sent == [{logs.TASK_HEADER: "approve-9"}, None]


def test_a_log_line_is_one_line_of_json_even_with_a_traceback():
    try:
        raise RuntimeError("first\nsecond")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "broke: %s", ("a\nb",),
                                   sys.exc_info())
    text = FORMAT.format(record)
    assert "\n" not in text
    data = json.loads(text)
    assert data["message"] == "broke: a\nb"
    assert "RuntimeError: first\nsecond" in data["exception"]
