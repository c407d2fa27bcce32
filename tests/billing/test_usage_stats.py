"""Coupon Usage statistics (billing/stats.py, docs/ARCHITECTURE.md "Usage statistics").

The database's triggers keep the delta tables equal to the coupons and deductions through
every write path (release by COPY, posting, void, expiry, plain ORM updates, deletes);
compaction folds them without changing a figure, even while writers insert; and the page's
totals and chart read from them equal the sums over the rows for every filter.
Every test here also ends with the ledger check (tests/billing/conftest.py), which compares
the statistics with the rows key by key (`usage_stats_check`).
"""
import itertools
import threading
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from celery.schedules import crontab
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import Count, F, Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import coupon_status, selectors
from billing.filters import CouponUsageFilter
from billing.ledger import ledger_check
from billing.models import CouponStat, Deduction, DeductionStat
from billing.stats import (
    coupon_stats_compact,
    coupon_stats_rebuild,
    on_post_migrate,
    stats_timezone,
    stats_timezone_sync,
    usage_stats_check,
)
from billing.tasks import coupon_stats_compact_task
from coupons.models import Coupon
from tests import factories as f
from tests.billing import page_helpers as ph
from tests.billing.helpers import D
from tests.factories import make_coupon

pytestmark = pytest.mark.django_db

USAGE = "/coupons/usage/"
KEY = ("partner_id", "template_id", "status", "cost_bearer", "currency", "released_on",
       "valid_until")
COUPON_MEASURES = ("coupons", "amount", "balance", "voided")


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def cents(value) -> Decimal:
    return Decimal(str(value)).quantize(D("0.01"))


def figures(model, key=KEY, measures=COUPON_MEASURES, **filters) -> dict:
    """The statistics summed per key (SQLite's float sums to the cent); keys summing to 0
    left out, as the page leaves them out."""
    out = {}
    rows = model.objects.filter(**filters).values(*key).annotate(
        **{f"s_{m}": Sum(m) for m in measures}).order_by()
    for row in rows:
        values = tuple(cents(row[f"s_{m}"]) for m in measures)
        if any(values):
            out[tuple(row[k] for k in key)] = values
    return out


def by_status(model, measure="amount", **filters) -> dict[str, Decimal]:
    return {status: total for (status,), (total,) in figures(
        model, key=("status",), measures=(measure,), **filters).items()}


def rows_per_key(model, key=KEY) -> int:
    """The most rows any key has."""
    return max((row["n"] for row in model.objects.values(*key).annotate(n=Count("id"))
                .order_by()), default=0)


def world_accounts(distributor, *names):
    return [ph.account(distributor, f"ST-{i:04d}", name) for i, name in enumerate(names, 1)]


@pytest.fixture
def three(distributor, dist_admin, bd):
    """Three accounts, each with one coupon of a 10-day-old release, and bills of three
    days ago: A's 20.00 coupon is used up by a 30.00 bill, B's 50.00 pays 10.00 and C's
    40.00 pays 15.00."""
    f.make_product("ecs")
    today = timezone.localdate()
    a, b, c = world_accounts(distributor, "Alpha", "Beta", "Gamma")
    window = (today - timedelta(days=10), today + timedelta(days=5))
    small = ph.template(distributor, dist_admin, "Stats small", face="20.00", valid=window)
    big = ph.template(distributor, dist_admin, "Stats big", face="50.00", valid=window)
    mid = ph.template(distributor, dist_admin, "Stats mid", face="40.00", valid=window)
    at = ph.local(today - timedelta(days=10))
    coupons = {"a": ph.issue(small, dist_admin, bd, [a], at=at)[0],
               "b": ph.issue(big, dist_admin, bd, [b], at=at)[0],
               "c": ph.issue(mid, dist_admin, bd, [c], at=at)[0]}
    day = today - timedelta(days=3)
    ph.bill([(a, day, "ecs", "30.00"), (b, day, "ecs", "10.00"), (c, day, "ecs", "15.00")])
    for coupon in coupons.values():
        coupon.refresh_from_db()
    return coupons


# ---------------------------------------------------------------------------------------
# The triggers, through every write path


def test_a_release_adds_its_coupons_as_one_row_per_key(distributor, dist_admin, bd, customers):
    tpl = ph.template(distributor, dist_admin, "Stats cash", face="12.50")
    coupons = ph.issue(tpl, dist_admin, bd, customers)

    assert len(coupons) == 5
    assert figures(CouponStat, template_id=tpl.pk) == {
        (distributor.pk, tpl.pk, "available", "partner", "USD",
         timezone.localdate(coupons[0].released_at), coupons[0].valid_until):
        (5, D("62.50"), D("62.50"), D("0.00")),
    }
    if is_postgres():
        # The release writes its coupons with one COPY: one statement, one grouped row.
        assert CouponStat.objects.filter(template_id=tpl.pk).count() == 1
    assert usage_stats_check() == []


def test_posting_void_and_expiry_move_coupons_and_their_deductions_between_statuses(
    three, dist_admin,
):
    # Posting: A's coupon is used up (its status changed in the posting's own UPDATE).
    assert three["a"].status == Coupon.Status.USED_UP
    assert by_status(DeductionStat) == {"used_up": D("20.00"), "available": D("25.00")}
    assert usage_stats_check() == []

    coupon_status.coupon_void(coupon=three["b"], acting_user=dist_admin, reason="Issued twice")
    coupon_status.coupons_expire(today=timezone.localdate() + timedelta(days=6))

    assert by_status(DeductionStat) == {
        "used_up": D("20.00"), "voided": D("10.00"), "expired": D("15.00")}
    assert figures(CouponStat, key=("status",)) == {
        ("used_up",): (1, D("20.00"), D("0.00"), D("0.00")),
        ("voided",): (1, D("50.00"), D("0.00"), D("40.00")),
        ("expired",): (1, D("40.00"), D("25.00"), D("0.00")),
    }
    assert usage_stats_check() == []


def test_a_balance_only_update_leaves_the_deductions_and_a_status_change_moves_them(three):
    coupon = three["b"]
    coupon_rows, deduction_rows = CouponStat.objects.count(), DeductionStat.objects.count()

    # Balance and voided amount move, the key stays: deltas for the coupon only.
    Coupon.objects.filter(pk=coupon.pk).update(
        balance=F("balance") - D("1.00"), voided_amount=F("voided_amount") + D("1.00"))
    assert DeductionStat.objects.count() == deduction_rows
    assert CouponStat.objects.count() == coupon_rows + (1 if is_postgres() else 2)
    assert usage_stats_check() == []

    # A field outside the statistics: nothing at all on PostgreSQL (the deltas net to 0).
    Coupon.objects.filter(pk=coupon.pk).update(void_reason="note")
    if is_postgres():
        assert CouponStat.objects.count() == coupon_rows + 1

    # The status is part of the key: the coupon's deductions leave `available` for
    # `expired` (one bill day: one row out, one row in).
    Coupon.objects.filter(pk=coupon.pk).update(status=Coupon.Status.EXPIRED)
    assert DeductionStat.objects.count() == deduction_rows + 2
    assert by_status(DeductionStat) == {
        "used_up": D("20.00"), "available": D("15.00"), "expired": D("10.00")}
    assert usage_stats_check() == []


def test_a_save_of_the_whole_row_and_a_template_change_keep_the_figures(three):
    coupon = three["c"]
    coupon.balance -= D("5.00")
    coupon.voided_amount += D("5.00")
    coupon.save()  # every column in the SET list, two of them changed
    other = Coupon.objects.get(pk=three["a"].pk)
    Coupon.objects.filter(pk=coupon.pk).update(template_id=other.template_id,
                                               valid_until=other.valid_until + timedelta(1))
    assert usage_stats_check() == []
    assert figures(DeductionStat, key=("template_id",), measures=("amount",)) == {
        (other.template_id,): (D("35.00"),), (three["b"].template_id,): (D("10.00"),)}


def test_deleting_deductions_and_coupons_takes_them_out_in_either_order(three, ledger_broken):
    a, b = three["a"], three["b"]
    Deduction.objects.filter(coupon=a).delete()
    assert "used_up" not in by_status(DeductionStat)
    assert usage_stats_check() == []

    # The coupon before its deductions (the foreign key is checked at commit): the coupon's
    # delete takes its deductions out with it, theirs then find no coupon to count.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM coupons_coupon WHERE id = %s", [b.pk])
        cursor.execute("DELETE FROM billing_deduction WHERE coupon_id = %s", [b.pk])
    Coupon.objects.filter(pk=a.pk).delete()
    assert usage_stats_check() == []
    assert figures(CouponStat, key=("status",)) == {
        ("available",): (1, D("40.00"), D("25.00"), D("0.00"))}
    assert by_status(DeductionStat) == {"available": D("15.00")}


def test_deduction_updates_move_between_days_and_coupons(three, ledger_broken):
    deduction = Deduction.objects.get(coupon=three["c"])
    Deduction.objects.filter(pk=deduction.pk).update(
        bill_date=deduction.bill_date - timedelta(days=1), amount=D("14.00"))
    Deduction.objects.filter(pk=deduction.pk).update(coupon=three["b"])
    assert usage_stats_check() == []
    assert by_status(DeductionStat) == {"used_up": D("20.00"), "available": D("24.00")}


def test_the_release_day_is_the_platform_time_zones_and_follows_a_changed_time_zone(
    distributor, settings,
):
    account = f.make_accounts(distributor, 1, prefix="TZ-")[0]
    # 17:30 UTC on 1 March is 01:30 on 2 March in Singapore.
    late = datetime(2025, 3, 1, 17, 30, tzinfo=UTC)
    coupon = make_coupon(account, released_at=late)
    assert settings.TIME_ZONE == "Asia/Singapore"
    assert stats_timezone() == "Asia/Singapore"
    assert list(CouponStat.objects.filter(template_id=coupon.template_id)
                .values_list("released_on", flat=True)) == [date(2025, 3, 2)]

    settings.TIME_ZONE = "UTC"
    try:
        assert stats_timezone_sync() is True  # as the post_migrate hook would
        assert stats_timezone() == "UTC"
        assert stats_timezone_sync() is False
        assert usage_stats_check() == []  # rebuilt: every key's day counted in UTC
        make_coupon(account, released_at=late)  # the triggers now count in UTC too
        assert figures(CouponStat, key=("released_on",), template_id=coupon.template_id) == {
            (date(2025, 3, 1),): (2, D("200.00"), D("200.00"), D("0.00"))}
    finally:
        settings.TIME_ZONE = "Asia/Singapore"
        stats_timezone_sync()
    assert stats_timezone() == "Asia/Singapore"
    assert usage_stats_check() == []


def test_the_ledger_names_each_key_whose_statistics_differ_from_the_rows(three, ledger_broken):
    coupon = three["c"]
    key = dict(partner_id=coupon.partner_id, template_id=coupon.template_id,
               status=coupon.status, cost_bearer=coupon.cost_bearer, currency=coupon.currency,
               released_on=timezone.localdate(coupon.released_at),
               valid_until=coupon.valid_until)
    CouponStat.objects.create(**key, coupons=0, amount=D("0"), balance=D("0.01"),
                              voided=D("0"))
    DeductionStat.objects.create(**key, bill_date=date(2025, 1, 7), amount=D("3.00"))

    found = ledger_check()
    assert [(d.rule, d.obj) for d in found] == [
        ("coupon statistics ≠ the coupons",
         f"coupons of partner #{coupon.partner_id}, template #{coupon.template_id}, available, "
         f"partner-borne, USD, released {key['released_on']}, valid until "
         f"{coupon.valid_until}"),
        ("deduction statistics ≠ the deductions",
         f"deductions of partner #{coupon.partner_id}, template #{coupon.template_id}, "
         f"available, partner-borne, USD, released {key['released_on']}, valid until "
         f"{coupon.valid_until}, bill day 2025-01-07"),
    ]
    assert "balance" in str(found[0]) and "25.00" in str(found[0]) and "25.01" in str(found[0])
    # A missed delta is found as well: a coupon inserted with the triggers' rows removed.
    CouponStat.objects.filter(balance=D("0.01"), coupons=0).delete()
    DeductionStat.objects.filter(bill_date=date(2025, 1, 7)).delete()
    assert usage_stats_check() == []
    CouponStat.objects.filter(template_id=coupon.template_id).delete()
    assert [d.rule for d in usage_stats_check()] == ["coupon statistics ≠ the coupons"]


# ---------------------------------------------------------------------------------------
# Compaction


def test_compaction_keeps_every_figure_and_leaves_one_row_per_key(three, dist_admin):
    for _ in range(3):  # more deltas on the same keys
        Coupon.objects.filter(pk=three["c"].pk).update(
            balance=F("balance") - D("1.00"), voided_amount=F("voided_amount") + D("1.00"))
    coupon_status.coupon_void(coupon=three["b"], acting_user=dist_admin, reason="Issued twice")
    coupons_before, deductions_before = figures(CouponStat), figures(
        DeductionStat, key=(*KEY, "bill_date"), measures=("amount",))
    rows_before = CouponStat.objects.count() + DeductionStat.objects.count()
    assert rows_per_key(CouponStat) > 1

    result = coupon_stats_compact()

    assert figures(CouponStat) == coupons_before
    assert figures(DeductionStat, key=(*KEY, "bill_date"), measures=("amount",)) \
        == deductions_before
    assert rows_per_key(CouponStat) == 1
    assert rows_per_key(DeductionStat, key=(*KEY, "bill_date")) == 1
    # Keys whose coupons all left (the void moved B's coupon out of `available`) are gone.
    assert CouponStat.objects.count() == len(coupons_before)
    assert DeductionStat.objects.count() == len(deductions_before)
    assert not CouponStat.objects.filter(compacted=False).exists()
    rows_after = CouponStat.objects.count() + DeductionStat.objects.count()
    assert result.coupon_rows_folded + result.deduction_rows_folded == rows_before
    assert result.coupon_rows_written + result.deduction_rows_written == rows_after
    assert usage_stats_check() == []

    # Nothing pending: nothing folded. New deltas: only their keys are folded.
    again = coupon_stats_compact()
    assert (again.coupon_rows_folded, again.deduction_rows_folded) == (0, 0)
    Coupon.objects.filter(pk=three["c"].pk).update(
        balance=F("balance") - D("1.00"), voided_amount=F("voided_amount") + D("1.00"))
    third = coupon_stats_compact()
    assert (third.coupon_rows_folded, third.coupon_rows_written) == (
        (2, 1) if is_postgres() else (3, 1))
    assert usage_stats_check() == []


def test_the_command_and_the_beat_task_compact_and_the_command_rebuilds(three, capsys):
    coupon_rows = CouponStat.objects.count()
    call_command("compact_usage_stats")
    assert "folded into" in capsys.readouterr().out
    assert CouponStat.objects.count() < coupon_rows

    Coupon.objects.filter(pk=three["c"].pk).update(status=Coupon.Status.EXPIRED)
    assert "folded" in coupon_stats_compact_task.delay().get()
    assert usage_stats_check() == []

    call_command("compact_usage_stats", "--rebuild")
    assert "rebuilt" in capsys.readouterr().out
    assert usage_stats_check() == []


def test_the_beat_schedule_compacts_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["usage-stats-compact"]
    assert entry["task"] == "billing.tasks.coupon_stats_compact_task"
    assert entry["schedule"] == crontab()


def test_rebuild_counts_the_statistics_again_from_the_rows(three):
    before = figures(CouponStat)
    CouponStat.objects.all().delete()
    DeductionStat.objects.all().delete()
    coupon_stats_rebuild()
    assert figures(CouponStat) == before
    assert usage_stats_check() == []


def test_after_a_flush_statistics_without_any_coupon_are_dropped(db):
    """SQLite's flush deletes table by table in no set order, so the coupons' delete
    triggers may write into statistics already emptied; post_migrate clears them."""
    CouponStat.objects.create(partner_id=1, template_id=1, status="available",
                              cost_bearer="partner", currency="USD",
                              released_on=date(2025, 1, 1), valid_until=date(2025, 2, 1),
                              coupons=-1, amount=D("-5"), balance=D("-5"), voided=D("0"))
    on_post_migrate(sender=None)
    assert not CouponStat.objects.exists()


@pytest.mark.race
def test_rows_written_while_compaction_runs_are_never_lost(
    postgres_only, transactional_db, distributor,
):
    """Writers commit deltas all the time while compactions run back to back; every
    delta is either folded by a compaction or left for the next one, never deleted
    unsummed. (A compaction that summed in one statement and deleted in a second, with a
    fresh snapshot, loses the rows committed in between; this test then fails.)"""
    accounts = f.make_accounts(distributor, 8, prefix="RC-")
    coupons = [make_coupon(account, amount="500.00") for account in accounts]
    writers_done = threading.Event()
    errors, compactions = [], []
    lock = threading.Lock()

    def writer(coupon_id: int, n: int):
        try:
            for i in range(n):
                with transaction.atomic():
                    Coupon.objects.filter(pk=coupon_id).update(
                        balance=F("balance") - D("0.01"),
                        voided_amount=F("voided_amount") + D("0.01"))
                    if i % 25 == 0:  # now and then a new coupon: an INSERT's delta
                        make_coupon(Coupon.objects.get(pk=coupon_id).sub_account,
                                    amount="1.00")
        except Exception as exc:  # noqa: BLE001
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    def compactor():
        try:
            while not writers_done.is_set():
                result = coupon_stats_compact()
                with lock:
                    compactions.append(result.coupon_rows_folded)
        except Exception as exc:  # noqa: BLE001
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(c.pk, 150)) for c in coupons]
    compactors = [threading.Thread(target=compactor) for _ in range(2)]
    for thread in compactors + threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    writers_done.set()
    for thread in compactors:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads + compactors), "a thread hung"

    assert errors == []
    assert sum(1 for folded in compactions if folded) > 10, compactions[:20]
    assert usage_stats_check() == []
    assert figures(CouponStat, key=("partner_id",)) == {
        (distributor.pk,): (8 + 8 * 6, D("4048.00"), D("4036.00"), D("12.00"))}
    coupon_stats_compact()
    assert rows_per_key(CouponStat) == 1
    assert usage_stats_check() == []


# ---------------------------------------------------------------------------------------
# The page reads them


def _filter(world, params: dict) -> CouponUsageFilter:
    class Request:
        partner = world.partner

    filterset = CouponUsageFilter(params, queryset=selectors.coupon_usage_list(
        partner=world.partner), request=Request())
    assert filterset.is_valid(), (params, filterset.errors)
    return filterset


def _from_rows(world, filterset) -> tuple[list, list]:
    """Totals and chart summed in Python over the rows the filter selects."""
    coupons = list(filterset.qs)
    totals: dict = {}
    for c in coupons:
        row = totals.setdefault(c.currency, [D("0")] * 4)
        for i, value in enumerate((c.amount, c.balance, c.voided_amount, ph.used(c))):
            row[i] += value
    chart: dict = defaultdict(lambda: D("0"))
    start = timezone.localdate() - timedelta(days=selectors.CHART_DAYS)
    for d in Deduction.objects.filter(coupon__in=coupons, bill_date__gte=start).select_related(
            "coupon"):
        chart[(d.bill_date, d.coupon.currency)] += d.amount
    return ([{"currency": cur, "amount": a, "remaining": b, "voided": v, "used": u}
             for cur, (a, b, v, u) in sorted(totals.items())],
            [{"bill_date": day, "currency": cur, "total": total}
             for (day, cur), total in sorted(chart.items())])


class TestThePage:
    def test_totals_and_chart_equal_the_rows_for_every_filter_combination(self, world):
        w = world
        assert w.partner_coupons()
        templates = [None, *(t.pk for t in w.templates.values())]
        statuses = ["", *Coupon.Status.values]
        bearers = ["", "partner", "platform"]
        # Promo was released at 02:00 local time on d1 − 1: the day before in UTC.
        released = [{}, {"released_from": w.d1 - timedelta(days=1)},
                    {"released_to": w.d1 - timedelta(days=2)},
                    {"released_from": w.d1 - timedelta(days=3),
                     "released_to": w.d1 - timedelta(days=1)}]
        valid = [{}, {"valid_until_from": w.today + timedelta(days=61)},
                 {"valid_until_to": w.today + timedelta(days=60)}]
        seen_totals = seen_chart = 0
        for tpl, status, bearer, rel, val in itertools.product(
                templates, statuses, bearers, released, valid):
            params = {"template": tpl or "", "status": status, "cost_bearer": bearer,
                      **{k: v.isoformat() for k, v in {**rel, **val}.items()}}
            filterset = _filter(w, params)
            lookups = selectors.usage_stat_lookups(filterset.form.cleaned_data)
            assert lookups is not None
            totals = selectors.coupon_usage_totals_from_stats(partner=w.partner,
                                                              lookups=lookups)
            chart = selectors.deductions_per_day_from_stats(partner=w.partner,
                                                            lookups=lookups)
            assert (totals, chart) == _from_rows(w, filterset), params
            seen_totals += bool(totals)
            seen_chart += bool(chart)
        assert seen_totals > 50 and seen_chart > 20  # the combinations select something

    def test_a_status_filter_bounded_by_the_statistics_keeps_the_same_rows(self, world):
        w = world
        templates = [None, *(t.pk for t in w.templates.values())]
        bearers = ["", "partner", "platform"]
        released = [{}, {"released_from": w.d1 - timedelta(days=1)},
                    {"released_to": w.d1 - timedelta(days=2)}]
        narrowed = 0
        for tpl, status, bearer, rel in itertools.product(
                templates, Coupon.Status.values, bearers, released):
            params = {"template": tpl or "", "status": status, "cost_bearer": bearer,
                      **{k: v.isoformat() for k, v in rel.items()}}
            filterset = _filter(w, params)
            rows = selectors.coupon_usage_narrowed(
                filterset.qs, partner=w.partner, cleaned=filterset.form.cleaned_data)
            assert sorted(rows.values_list("pk", flat=True)) == sorted(
                filterset.qs.values_list("pk", flat=True)), params
            bound = '"coupons_coupon"."released_at" < '
            narrowed += str(rows.query).count(bound) > str(filterset.qs.query).count(bound)
        assert narrowed > 50  # the bound was added, not only left out

    def test_the_page_bounds_a_status_filter_by_release_days(self, client, world):
        w = world
        client.force_login(w.admin)
        with CaptureQueriesContext(connection) as ctx:
            client.get(USAGE, {"status": "expired", "cost_bearer": "platform"})
        rows = [q["sql"] for q in ctx.captured_queries
                if 'FROM "coupons_coupon"' in q["sql"] and "LIMIT" in q["sql"]]
        assert rows and all('"coupons_coupon"."released_at" >=' in sql for sql in rows)

    def test_the_page_reads_the_statistics_not_the_coupons(self, client, world):
        w = world
        client.force_login(w.admin)
        for params in [{}, {"status": "available", "sort": "-amount"},
                       {"template": w.templates["welcome"].pk, "cost_bearer": "partner"},
                       {"released_from": f"{w.d1 - timedelta(days=1):%Y-%m-%d}"},
                       {"valid_until_to": f"{w.today + timedelta(days=60):%Y-%m-%d}"}]:
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(USAGE, params)
            sqls = [q["sql"] for q in ctx.captured_queries]
            assert any("billing_couponstat" in s for s in sqls)
            assert any("billing_deductionstat" in s for s in sqls)
            assert not any('SUM("coupons_coupon"' in s or 'FROM "billing_deduction"' in s
                           for s in sqls), params
            filterset = _filter(w, {k: v for k, v in params.items() if k != "sort"})
            totals, chart = _from_rows(w, filterset)
            assert response.context["totals"] == totals
            assert [{k: d[k] for k in ("bill_date", "currency", "total")}
                    for d in response.context["chart"]] == chart

    def test_the_sub_account_search_sums_the_rows_of_the_accounts_it_finds(self, client,
                                                                            world):
        w = world
        client.force_login(w.admin)
        for params in [{"sub_account": "CB-"}, {"sub_account": "alpha", "status": "expired"},
                       {"sub_account": "CA-", "template": w.templates["promo"].pk}]:
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(USAGE, params)
            sqls = [q["sql"] for q in ctx.captured_queries]
            assert not any("billing_couponstat" in s or "billing_deductionstat" in s
                           for s in sqls)
            assert selectors.usage_stat_lookups(
                _filter(w, params).form.cleaned_data) is None
            totals, chart = _from_rows(w, _filter(w, params))
            assert response.context["totals"] == totals
            assert [{k: d[k] for k in ("bill_date", "currency", "total")}
                    for d in response.context["chart"]] == chart
        response = client.get(USAGE, {"sub_account": "CB-"})
        assert {d["bill_date"]: d["total"] for d in response.context["chart"]} == {
            w.d1: D("12.34")}

    def test_a_blank_sub_account_search_keeps_the_statistics(self, world):
        assert selectors.usage_stat_lookups(
            _filter(world, {"sub_account": "  "}).form.cleaned_data) == {}

    def test_another_partner_sees_only_its_own_figures(self, client, world):
        w = world
        client.force_login(w.rival_admin)
        response = client.get(USAGE)
        assert response.context["totals"] == [
            {"currency": "USD", "amount": D("30.00"), "remaining": D("20.01"),
             "voided": D("0.00"), "used": D("9.99")}]
        assert [(d["bill_date"], d["total"]) for d in response.context["chart"]] == [
            (w.d1, D("9.99"))]
