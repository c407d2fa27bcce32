"""Every test world builds on every awkward day of the calendar.

The suite runs on a pinned clock (tests/clock.py), so no test depends on the day it runs;
this test is what makes any pinned day safe to choose. It moves the clock to each of the
moments below and builds every world of tests/worlds.py there, in a transaction it rolls
back: a setup step the services refuse (a month closed before its usage lands, a window
that has ended, a month that has not) raises and fails the test for that moment. It builds
the worlds only; the tests that use them run at the pinned moment.

The moments: the 1st, 28th, 29th, 30th and 31st of every month of a non-leap year (2027)
and of January to March and December of a leap year (2028), which holds 29 February, 31
December and 1 January (an ordinary mid-month day is the pinned clock's, on which every
other test runs); and the seconds
around the platform time zone's midnight, where the platform's day and UTC's differ (the
platform is UTC+8 by default: from 00:00 to 08:00 its day is UTC's next), around a month's
and a year's end and 29 February. A build that starts 0.2 s or 2 s before midnight sees the
day turn early in it or well into it: a world reads "today" once and acts on that day.
"""
from __future__ import annotations

import calendar
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import transaction

from tests.worlds import WORLDS

# Every month of a non-leap year; of the leap year, the months around its 29 February and
# its end. The days: a month's first, and its last days, where a shorter month has none
# (an ordinary mid-month day is the pinned clock's own, which every other test runs on).
MONTHS = {2027: range(1, 13), 2028: (1, 2, 3, 12)}
DAYS = (1, 28, 29, 30, 31)


def awkward_moments() -> list[datetime]:
    tz = ZoneInfo(settings.TIME_ZONE)
    moments = []
    for year, months in MONTHS.items():
        for month in months:
            last = calendar.monthrange(year, month)[1]
            moments += [datetime(year, month, day, 10, tzinfo=tz) for day in DAYS if day <= last]
    # The platform's midnight: the last seconds of a day (a build that starts there runs
    # into the next day) and the first minutes of one (UTC is still on the day before).
    for day in (date(2027, 2, 28), date(2027, 12, 31), date(2028, 2, 29), date(2028, 6, 30)):
        # 0.2 s and 2 s before it: the day turns early in a build or well into it.
        for before in (0.2, 2):
            moments.append(datetime.combine(day, datetime.max.time(), tz)
                           - timedelta(seconds=before))
        following = day + timedelta(days=1)
        moments.append(datetime(following.year, following.month, following.day, 0, 0, 1,
                                tzinfo=tz))
        moments.append(datetime(following.year, following.month, following.day, 7, 59,
                                tzinfo=tz))
    return moments


MOMENTS = awkward_moments()

# Each world once per moment, except those another swept world already builds or that
# the calendar can't reach: the Coupon Usage table's world builds the billing pages' world
# first, and the money machine runs on its own clock from a fixed day (tests/worlds.py), so
# it is built once, at the first moment, to show the calendar leaves it alone.
COVERED = {"billing_pages": "billing_usage_table"}
CALENDAR_FREE = {"money_machine"}


def worlds_at(moment: datetime) -> dict:
    return {name: build for name, build in WORLDS.items()
            if name not in COVERED and (name not in CALENDAR_FREE or moment == MOMENTS[0])}


def test_the_moments_hold_what_the_sweep_promises():
    days = {m.date() for m in MOMENTS}
    assert date(2027, 12, 31) in days and date(2028, 1, 1) in days
    assert date(2028, 2, 29) in days and date(2027, 2, 28) in days
    assert sum(1 for d in days if d.year == 2027) >= 53  # every listed day of 2027
    assert {d.month for d in days if d.year == 2027} == set(range(1, 13))
    assert any(m.hour == 23 and m.minute == 59 for m in MOMENTS)
    assert any(m.hour == 0 for m in MOMENTS)
    assert set(COVERED.values()) <= set(WORLDS) and set(COVERED) | CALENDAR_FREE <= set(WORLDS)
    assert set(worlds_at(MOMENTS[0])) | set(COVERED) == set(WORLDS)


def test_the_readme_counts_the_moments_as_they_are():
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    assert f"at {len(MOMENTS)} awkward moments" in readme


@pytest.mark.django_db
@pytest.mark.parametrize("moment", MOMENTS, ids=lambda m: m.strftime("%Y-%m-%dT%H:%M:%S"))
def test_every_world_builds_on(moment, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    timings = {}
    for name, build in worlds_at(moment).items():
        with time_machine.travel(moment, tick=True):
            started = time.perf_counter()
            with transaction.atomic():
                build()
                transaction.set_rollback(True)
            timings[name] = time.perf_counter() - started
    print(moment, {name: round(seconds, 2) for name, seconds in timings.items()})
