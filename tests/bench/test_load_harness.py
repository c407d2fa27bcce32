"""The load harness's pieces (bench/load/), cheaply and without load: the dataset builder at
a tiny scale leaves a clean ledger and what the run needs; the runner's bounds; the
samples' figures; the locustfile loads (in a child process: Locust monkey-patches the
standard library on import, so the test process never imports it)."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest
from django.test import Client

from bench.load import run, samples
from bench.load.dataset import usable
from bench.load.pages import _own
from bench.load.report import TARGET_RATE
from bench.load.scale import Scale
from bench.load.session import _in_flight, _redelivered

# ---------------------------------------------------------------------------------------
# The dataset


@pytest.mark.django_db
def test_the_tiny_world_is_ledger_clean_and_holds_what_the_run_needs(postgres_only):
    from bench.load.plan import plan_make
    from bench.load.world import world_make
    from billing.ledger import ledger_check
    from billing.models import DailyBill, MonthlyBill, UsageRecord
    from coupons.models import Coupon, IssuanceRequest

    scale = Scale.tiny()
    manifest = world_make(scale, log=lambda _m: None)

    assert ledger_check() == []
    assert manifest["coupons"] == Coupon.objects.count() == scale.coupons
    assert manifest["sub_accounts"] == scale.sub_accounts
    # Posted history with closed months, and the run's two billing days still unbilled.
    assert DailyBill.objects.filter(posted_at__isnull=True).count() == 0
    assert DailyBill.objects.count() == (
        (scale.history_big + scale.history_mid * scale.mid_partners) * scale.history_days)
    assert MonthlyBill.objects.exists() and manifest["closed_months"]
    for day in manifest["billing_days"]:
        assert UsageRecord.objects.filter(usage_date=day, line__isnull=True).count() == (
            2 * scale.billing_accounts)
        assert not DailyBill.objects.filter(date=day).exists()
    # The two releases wait for their BD; the BDs' queues are filled.
    releases = IssuanceRequest.objects.filter(pk__in=manifest["release_requests"])
    assert [(r.status, r.recipient_count) for r in releases] == [
        ("pending", scale.release_accounts)] * 2
    assert IssuanceRequest.objects.filter(status="pending").count() == (
        manifest["pending_at_build"] + 2)
    assert set(Coupon.objects.values_list("status", flat=True)) >= {
        "available", "expired", "voided", "used_up"}

    # The plan's sessions are signed in, each as its kind of user.
    plan = plan_make(manifest, host="http://127.0.0.1:8107",
                     sessions={"partner": 3, "bd": 2, "sub": 2})
    assert [len(plan[k]) for k in ("partner", "bd", "sub")] == [3, 2, 2]
    for kind, url in (("partner", "/coupons/templates/"), ("sub", "/billing/bills/"),
                      ("bd", "/admin/approvals/pendingrequest/")):
        client = Client()
        client.cookies["sessionid"] = plan[kind][0]["session"]
        assert client.get(url).status_code == 200, kind
    assert plan["partner"][0]["templates"] and plan["partner"][0]["prefix"]
    assert plan["sub"][0]["days"] and plan["sub"][0]["months"]


def test_a_dataset_is_reused_only_when_it_is_this_codes_and_young():
    import datetime as dt

    from bench.load.dataset import VERSION

    built = {"version": VERSION, "scale_name": "full", "built_on": "2026-06-01"}
    assert usable(built, scale_name="full", today=dt.date(2026, 6, 17)) is None
    assert "version" in usable({**built, "version": VERSION - 1}, scale_name="full",
                               today=dt.date(2026, 6, 17))
    assert "scale" in usable(built, scale_name="tiny", today=dt.date(2026, 6, 17))
    assert "days ago" in usable(built, scale_name="full", today=dt.date(2026, 8, 1))
    assert "no dataset" in usable(None, scale_name="full")


# ---------------------------------------------------------------------------------------
# The runner's arguments and bounds


def test_the_full_measurement_steps_to_300_per_second_and_runs_both_scenarios():
    opts = run.parse_args([])
    assert opts.rates[0] < TARGET_RATE < opts.rates[-1]
    assert opts.scenarios == ["normal", "kill"]
    assert (opts.step_seconds, opts.run_seconds) == run.FULL[:2]
    assert opts.write_doc and not opts.quick


def test_quick_and_explicit_rates():
    quick = run.parse_args(["--quick", "--no-doc", "--only", "kill"])
    assert quick.step_seconds == run.QUICK[0] and quick.scenarios == ["kill"]
    assert not quick.write_doc
    assert run.parse_args(["--rates", "90, 30,60,60"]).rates == [30, 60, 90]
    opts = run.parse_args(["--rate", "120"])
    assert opts.rate == 120
    # Each simulated user makes about USER_RATE × REQUESTS_PER_TASK requests a second.
    assert opts.users(116) == 100
    assert opts.max_requests > 2 * 300 * opts.run_seconds


@pytest.mark.parametrize("argv", [
    ["--rates", "fast"], ["--rates", "0,50"], ["--rates", "50,5000"], ["--rate", "0"],
    ["--step-seconds", "5"], ["--run-seconds", "10000"], ["--celery-workers", "1"],
    ["--port", "80"], ["--visibility-timeout", "1"], ["--page-rounds", "-1"],
])
def test_out_of_bounds_arguments_stop_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        run.parse_args(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# Figures from the samples


def _samples(rows):
    return [samples.Sample(t, "GET", name, status, ms) for t, name, status, ms in rows]


def test_a_window_counts_pages_not_exports_and_every_5xx():
    rows = [(100 + i / 10, "partner: Templates", 200, 10.0 + i) for i in range(100)]
    rows += [(105.0, "export: Coupon Usage CSV", 200, 5000.0),
             (106.0, "partner: Templates", 503, 20.0), (107.0, "sub-account: Bills", 0, 0.0),
             (108.0, "sub-account: Bills", 404, 15.0)]
    w = samples.window(_samples(rows))

    assert w.page_names == ["partner: Templates", "sub-account: Bills"]
    assert w.total().count == 102  # the export and the lost request are not page samples
    assert w.server_errors == 1 and w.failed == 1
    assert w.total().client_errors == 1
    assert w.p95 < 300 and not w.passed(10)  # a 5xx and a lost request fail the step
    assert w.rate == pytest.approx(102 / 9.9)


def test_a_window_skips_the_ramp_and_passes_a_clean_fast_step():
    rows = [(float(i), "partner: Templates", 200, 900.0 if i < 5 else 50.0)
            for i in range(60)]
    w = samples.window(_samples(rows), skip_first=5)

    assert w.p95 == 50.0 and w.passed(0.9) and not w.passed(2)
    assert samples.page_rows(w)[-1][0] == "**all pages**"


def test_samples_files_skip_torn_lines(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("1.0,GET,partner: Templates,200,12.5\n2.0,GET,half a line\n")
    assert [(s.name, s.ms) for s in samples.read(path)] == [("partner: Templates", 12.5)]


# ---------------------------------------------------------------------------------------
# The page figures' own statements, the kill's bookkeeping


def test_a_pages_own_statements_are_those_the_bare_page_does_not_run():
    page = ["session", "user", "membership", "coupons", "coupons", "totals"]
    assert _own(page, ["session", "user", "membership", "coupons"]) == [
        "coupons", "totals"]


def test_tasks_in_flight_at_the_kill_and_their_redelivery(tmp_path):
    killed = tmp_path / "w1.log"
    before = ("Task billing.tasks.bills_post_task[aaa-1] received\n"
              "Task billing.tasks.bills_post_task[aaa-1] succeeded in 0.2s: 10\n"
              "Task billing.tasks.bills_post_task[bbb-2] received\n")
    killed.write_text(before + "restarted\nTask billing.tasks.bills_post_task[bbb-2] "
                      "succeeded in 0.3s: 12\n")
    other = tmp_path / "w2.log"
    other.write_text("")
    in_flight = _in_flight(before)
    assert in_flight == ["billing.tasks.bills_post_task[bbb-2]"]

    class W:
        def __init__(self, path):
            self.log_path = path

    kill = {"in_flight": in_flight, "_log": str(killed), "_offset": len(before)}
    assert _redelivered(kill, [W(killed), W(other)]) == {"in_flight": 1, "succeeded_after": 1}


# ---------------------------------------------------------------------------------------
# The locustfile, in a child process


LOCUST = importlib.util.find_spec("locust") is not None


def _import_locustfile(tmp_path, host: str) -> subprocess.CompletedProcess:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"host": host, "partner": [], "bd": [], "sub": [],
                                "billing_days": ["2026-06-15", "2026-06-16"]}))
    code = ("import bench.load.locustfile as f; "
            "print(sorted((c.__name__, c.weight) for c in "
            "(f.PartnerUser, f.BDUser, f.SubAccountUser)))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "LOAD_PLAN": str(plan)},
                          timeout=120, check=False)


@pytest.mark.skipif(not LOCUST, reason="locust is not installed (requirements.txt pins it)")
def test_the_locustfile_loads_its_three_kinds_of_user(tmp_path):
    done = _import_locustfile(tmp_path, "http://127.0.0.1:8107")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('BDUser', 10), ('PartnerUser', 45), ('SubAccountUser', 45)]"


@pytest.mark.skipif(not LOCUST, reason="locust is not installed (requirements.txt pins it)")
def test_the_locustfile_refuses_a_host_other_than_this_machine(tmp_path):
    done = _import_locustfile(tmp_path, "http://example.com")
    assert done.returncode != 0
    assert "this machine only" in done.stderr


def test_the_test_process_never_imports_locust():
    assert "locust" not in sys.modules
