"""QUALITY.md's page figures in production mode: each page over HTTP from gunicorn (DEBUG
off), one request at a time, interleaved with the bare page (same sign-in, middleware and
base template, no queries of its own: bench/load/bare.py) and timed against the raw SQL of
its own statements (those the bare page does not run too). The bar: page p95 ≤ SQL p95 +
1.5 × bare-page p95, and each page's absolute p95 bar."""
from __future__ import annotations

import datetime as dt
import http.client
import re
import time
from collections import Counter
from urllib.parse import urlencode, urlsplit

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.harness import percentile
from bench.load.plan import session_for

BARE = {"partner": "/bench/bare/partner/", "sub": "/bench/bare/sub-account/"}
RATIO_BARE = 1.5


def _pages(manifest: dict, templates: dict[str, int], account: str, today: str):
    """(label, who, url, absolute p95 bar in ms)."""
    back = lambda days: (dt.date.fromisoformat(today) - dt.timedelta(days=days)).isoformat()  # noqa: E731
    usage = [
        ("no filter, newest first", {}),
        ("no filter, by amount", {"sort": "-amount"}),
        ("template 'Monthly loyalty credit'", {"template": templates["Monthly loyalty credit"]}),
        ("status available, by amount", {"status": "available", "sort": "-amount"}),
        ("platform-borne + expired", {"cost_bearer": "platform", "status": "expired"}),
        ("one sub-account (account ID)", {"sub_account": account}),
        ("released in a 30-day range", {"released_from": back(120), "released_to": back(90),
                                        "sort": "released_at"}),
    ]
    issue = templates["Monthly loyalty credit"]
    out = [(f"Coupon Usage: {label}", "partner", "/coupons/usage/?" + urlencode(q), 150.0)
           for label, q in usage]
    out += [(f"Issue Coupon: {label}", "partner",
             f"/coupons/templates/{issue}/issue/?" + urlencode(q), 150.0)
            for label, q in [("name fragment 'logis'", {"q": "logis"}),
                             ("account ID prefix", {"q": account[:-3]}),
                             ("type = tier-2 reseller", {"type": "tier2_reseller"}),
                             ("no filter, page 40", {"page": 40})]]
    out += [("Sub-account: Coupons", "sub", "/billing/coupons/", 80.0),
            ("Sub-account: Coupons used up", "sub", "/billing/coupons/?status=used_up", 80.0),
            ("Sub-account: Bills", "sub", "/billing/bills/", 80.0)]
    return out


class Browser:
    """One keep-alive connection with a session cookie, as a signed-in browser tab."""

    def __init__(self, host: str, session: str):
        parts = urlsplit(host)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.headers = {"Cookie": f"sessionid={session}", "X-Forwarded-Proto": "https"}

    def get(self, url: str) -> float:
        start = time.perf_counter()
        self.conn.request("GET", url, headers=self.headers)
        response = self.conn.getresponse()
        response.read()
        took = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status}")
        return took


def _statements(session: str, url: str) -> list[str]:
    """The statements the page runs, in this process on the same database."""
    client = Client()
    client.cookies["sessionid"] = session
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, secure=True)
    if response.status_code != 200:
        raise RuntimeError(f"{url}: {response.status_code} in-process")
    return [re.sub(r'^DECLARE "?\w+"? .*?CURSOR WITH(?:OUT)? HOLD FOR ', "", q["sql"],
                   flags=re.S) for q in ctx.captured_queries]


def _own(page: list[str], bare: list[str]) -> list[str]:
    """The page's statements less one of each the bare page runs as well."""
    left = Counter(bare)
    out = []
    for sql in page:
        if left[sql]:
            left[sql] -= 1
        else:
            out.append(sql)
    return out


def _raw_seconds(sqls: list[str]) -> float:
    connection.ensure_connection()
    start = time.perf_counter()
    with connection.connection.cursor() as cursor:
        for sql in sqls:
            cursor.execute(sql)
            if cursor.description is not None:
                cursor.fetchall()
    return time.perf_counter() - start


def measure(*, host: str, manifest: dict, rounds: int, warmup: int = 3, log=print) -> dict:
    from django.contrib.auth import get_user_model

    from coupons.models import CouponTemplate

    users = get_user_model().objects
    sessions = {"partner": session_for(users.get(username="load-admin-lb")),
                "sub": session_for(users.filter(username__startswith="load-sub-")
                                   .order_by("pk").first())}
    browsers = {k: Browser(host, s) for k, s in sessions.items()}
    templates = dict(CouponTemplate.objects.filter(partner_id=manifest["partners"]["big"])
                     .values_list("name", "pk"))
    account = f"LB{manifest['scale']['big_accounts'] // 2:07d}"
    bare_sql = {k: _statements(s, BARE[k]) for k, s in sessions.items()}
    rows = []
    for label, who, url, bar in _pages(manifest, templates, account, manifest["billing_days"][-1]):
        own = _own(_statements(sessions[who], url), bare_sql[who])
        page, bare, sql = [], [], []
        for i in range(warmup + rounds):
            # The order turns each round, so a change of load touches the three alike.
            browser = browsers[who]
            steps = [("page", lambda b=browser, u=url: b.get(u)),
                     ("bare", lambda b=browser, u=BARE[who]: b.get(u)),
                     ("sql", lambda o=own: _raw_seconds(o))]
            for name, fn in steps[i % 3:] + steps[:i % 3]:
                took = fn()
                if i >= warmup:
                    {"page": page, "bare": bare, "sql": sql}[name].append(took * 1000)
        p95 = {k: percentile(v, 95) for k, v in (("page", page), ("bare", bare), ("sql", sql))}
        budget = p95["sql"] + RATIO_BARE * p95["bare"]
        rows.append({"page": label, "queries": len(own), "page_p50": percentile(page, 50),
                     "page_p95": p95["page"], "sql_p95": p95["sql"], "bare_p95": p95["bare"],
                     "budget": budget, "bar": bar,
                     "passed": p95["page"] <= budget and p95["page"] <= bar})
        log(f"pages: {label}: p95 {p95['page']:.1f} ms (SQL {p95['sql']:.1f} + 1.5 × bare "
            f"{p95['bare']:.1f} = {budget:.1f})")
    return {"rows": rows, "rounds": rounds}
