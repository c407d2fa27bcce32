"""The test suite's clock: every test runs at one pinned moment, never at the calendar's.

The suite starts at PINNED_NOW (a weekday in the middle of a month, in the platform's time
zone) and time runs on from there at its real pace, so durations, timeouts and "a minute
later" still work; `timezone.now()`, `timezone.localdate()`, `date.today()`, `time.time()`
and model defaults all read the pinned clock (time-machine moves them at the C level).
`TESTS_NOW` (an ISO date or time) runs the whole suite at another moment, e.g.
`TESTS_NOW=2028-02-29T23:59:30+08:00 make test`; tests/test_dates.py builds every test world
at the awkward days of the calendar.

Processes the tests start (Celery workers) run on the same clock: `subprocess_command()`
wraps their command in `python -m tests.clock`, which shifts the child's clock by the same
offset before running the module. No pytest here: bench/ imports the worker processes too.
"""
from __future__ import annotations

import os
import runpy
import sys
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import time_machine

# Wednesday 17 June 2026, 10:00 in Asia/Singapore (the default platform time zone): no
# month, week or year boundary is near, so a test that counts days back or ahead from
# "today" lands where it means to. tests/test_dates.py covers the boundaries on purpose.
PINNED_NOW = "2026-06-17T10:00:00+08:00"
SHIFT_ENV = "TESTS_CLOCK_SHIFT"

_traveller: time_machine.travel | None = None
_shift: float | None = None


def parse_moment(text: str, tz: str = "Asia/Singapore") -> datetime:
    """'2026-06-17' (10:00 that day) or an ISO time; without an offset, in `tz`."""
    text = text.strip()
    if len(text) == 10:
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time().replace(hour=10))
    else:
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment


def pin(moment: datetime | None = None, *, tz: str = "Asia/Singapore") -> datetime:
    """Start the pinned clock (once per process); returns the moment it starts at."""
    global _traveller, _shift
    if _traveller is not None:
        return datetime.fromtimestamp(time.time(), tz=ZoneInfo(tz))
    if moment is None:
        moment = parse_moment(os.environ.get("TESTS_NOW") or PINNED_NOW, tz)
    _shift = moment.timestamp() - time.time()
    _traveller = time_machine.travel(moment, tick=True)
    _traveller.start()
    return moment


def pinned() -> bool:
    return _traveller is not None


def subprocess_command(command: list[str]) -> list[str]:
    """`[python, -m, module, …]` run on this process's clock when it is pinned."""
    if _traveller is None or command[1:2] != ["-m"]:
        return command
    return [command[0], "-m", "tests.clock", *command[2:]]


def subprocess_env() -> dict[str, str]:
    """The child's clock offset: the same as ours, so both read the same time."""
    if _shift is None:
        return {}
    return {SHIFT_ENV: repr(_shift)}


def _run_module_shifted() -> None:
    """`python -m tests.clock MODULE ARGS…`: MODULE's main on a clock shifted by
    $TESTS_CLOCK_SHIFT seconds, as the test process that started it."""
    shift = float(os.environ.get(SHIFT_ENV, "0"))
    time_machine.travel(time.time() + shift, tick=True).start()
    module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _run_module_shifted()
