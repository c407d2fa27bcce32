"""Locust's samples (one CSV line per request, written by the locustfile) turned into the
figures: per page p50/p95/p99, the rate, the 4xx, 5xx and failed connections. No Django
and no Locust here."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import percentile

EXPORT_PREFIX = "export: "
P95_LIMIT_MS = 300.0


@dataclass
class Sample:
    t: float
    method: str
    name: str
    status: int
    ms: float


def read(path: Path) -> list[Sample]:
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        parts = line.split(",")
        if len(parts) != 5:
            continue
        try:
            out.append(Sample(float(parts[0]), parts[1], parts[2], int(parts[3]),
                              float(parts[4])))
        except ValueError:
            continue
    return out


@dataclass
class PageStats:
    name: str
    times: list[float] = field(default_factory=list)
    client_errors: int = 0  # 4xx
    server_errors: int = 0  # 5xx
    failed: int = 0  # no response (refused, reset, timed out)

    @property
    def count(self) -> int:
        return len(self.times)

    def q(self, pct: float) -> float:
        return percentile(self.times, pct) if self.times else float("nan")


@dataclass
class Window:
    """The samples of one step or run, past its ramp-up."""

    seconds: float
    pages: dict[str, PageStats]
    # CPU seconds each process group spent over the whole Locust run, and its request count
    # (the runner fills these in).
    cpu: dict[str, float] = field(default_factory=dict)
    requests_all: int = 0

    def cpu_ms_per_request(self, group: str) -> float | None:
        if not self.requests_all or group not in self.cpu:
            return None
        return self.cpu[group] * 1000 / self.requests_all

    @property
    def page_names(self) -> list[str]:
        return sorted(n for n in self.pages if not n.startswith(EXPORT_PREFIX))

    def total(self, *, exports: bool = False) -> PageStats:
        total = PageStats("all pages" if not exports else "all requests")
        for name, stats in self.pages.items():
            if not exports and name.startswith(EXPORT_PREFIX):
                continue
            total.times += stats.times
            total.client_errors += stats.client_errors
            total.server_errors += stats.server_errors
            total.failed += stats.failed
        return total

    @property
    def rate(self) -> float:
        """Page requests a second (exports not counted: a download is not a page)."""
        return self.total().count / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_errors(self) -> int:
        return self.total(exports=True).server_errors

    @property
    def failed(self) -> int:
        return self.total(exports=True).failed

    @property
    def p95(self) -> float:
        return self.total().q(95)

    def passed(self, target_rate: float) -> bool:
        """Page p95 within the bar, no 5xx, no lost request, and the rate asked for
        reached (a saturated server serves less than it is sent)."""
        return (self.p95 <= P95_LIMIT_MS and self.server_errors == 0 and self.failed == 0
                and self.rate >= 0.9 * target_rate)


def window(samples: list[Sample], *, skip_first: float = 0.0, skip_last: float = 0.0) -> Window:
    """The samples past the first `skip_first` seconds and before the last `skip_last`."""
    if not samples:
        return Window(0.0, {})
    start = min(s.t for s in samples) + skip_first
    end = max(s.t for s in samples) - skip_last
    pages: dict[str, PageStats] = {}
    for s in samples:
        if not start <= s.t <= end:
            continue
        stats = pages.setdefault(s.name, PageStats(s.name))
        if s.status == 0:
            stats.failed += 1
            continue
        stats.times.append(s.ms)
        if 400 <= s.status < 500:
            stats.client_errors += 1
        elif s.status >= 500:
            stats.server_errors += 1
    return Window(max(end - start, 0.0), pages)


def page_rows(w: Window) -> list[list[str]]:
    """Table rows: page, requests, rate, p50, p95, p99 (ms), 4xx, 5xx."""
    rows = []
    for name in [*w.page_names, *sorted(n for n in w.pages if n.startswith(EXPORT_PREFIX))]:
        s = w.pages[name]
        rows.append(_row(s, w.seconds))
    rows.append(_row(w.total(), w.seconds, bold=True))
    return rows


def _row(s: PageStats, seconds: float, *, bold: bool = False) -> list[str]:
    name = f"**{s.name}**" if bold else s.name
    rate = s.count / seconds if seconds else 0.0
    return [name, f"{s.count:,}", f"{rate:.1f}", f"{s.q(50):.0f}", f"{s.q(95):.0f}",
            f"{s.q(99):.0f}", f"{s.client_errors:,}", f"{s.server_errors:,}"]


PAGE_HEADERS = ["page", "requests", "per s", "p50 ms", "p95 ms", "p99 ms", "4xx", "5xx"]
