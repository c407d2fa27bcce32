"""Locust's users of the console, run headless by `python -m bench.load.run` (never by the
test suite, which does not import Locust).

Three kinds of people, each signed in through a session of its own from the plan file
(LOAD_PLAN, written by bench/load/plan.py):
- partner admins and operators: templates, Issue Coupon searches, small submissions, their
  requests, Coupon Usage with filters, and exports;
- BDs in the admin: the pending queue, a request, approve and reject;
- sub-account users: Billing → Coupons (by status, with their deductions) and Bills.

Every request is one "page" sample in LOAD_SAMPLES (CSV: time, method, name, status, ms),
which the runner turns into the figures. Traffic goes only to the loopback host of the
plan; Locust itself is bounded by `-t` and by LOAD_MAX_REQUESTS.
"""
from __future__ import annotations

import datetime as dt
import http.cookiejar
import itertools
import json
import os
import random
import re
import secrets
import string
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import gevent
from locust import FastHttpUser, constant_throughput, events, task

PLAN = json.loads(Path(os.environ["LOAD_PLAN"]).read_text())
HOST = PLAN["host"]
if urlsplit(HOST).hostname not in ("127.0.0.1", "::1", "localhost"):
    raise SystemExit(f"The load test sends traffic to this machine only, not to {HOST}.")
USER_RATE = float(os.environ.get("LOAD_USER_RATE", "1"))  # tasks a second per user
MAX_REQUESTS = int(os.environ.get("LOAD_MAX_REQUESTS", "1000000"))
WORDS = ["logis", "retail", "games", "media", "health", "foods", "systems", "labs", "acme",
         "summit", "nova", "pacific", "zephyr robo", "golden", "analytics", "pte", "gmbh"]
EXPORT_PREFIX = "export: "

# ---------------------------------------------------------------------------------------
# Samples and bounds

_samples = open(os.environ.get("LOAD_SAMPLES", os.devnull), "a", buffering=1 << 16)  # noqa: SIM115
_count = itertools.count(1)


@events.request.add_listener
def _record(request_type, name, response_time, response, exception, **_kwargs):
    status = getattr(response, "status_code", 0) or 0
    _samples.write(f"{time.time():.3f},{request_type},{name},{status},{response_time:.2f}\n")
    if next(_count) == MAX_REQUESTS:
        gevent.spawn(_quit)


_environment = None


@events.init.add_listener
def _init(environment, **_kwargs):
    global _environment
    _environment = environment


def _quit():
    if _environment is not None and _environment.runner is not None:
        _environment.runner.quit()


@events.test_start.add_listener
def _check_host(environment, **_kwargs):
    if environment.host and urlsplit(environment.host).hostname not in ("127.0.0.1", "::1",
                                                                        "localhost"):
        raise SystemExit(f"Refusing to load {environment.host}: loopback only.")


@events.quitting.add_listener
def _flush(**_kwargs):
    _samples.flush()


# ---------------------------------------------------------------------------------------
# Sessions


class LoopbackCookies(http.cookiejar.DefaultCookiePolicy):
    """Send the Secure cookies production sets over the plain HTTP of 127.0.0.1, as the
    TLS proxy in front of gunicorn would (the proxy is not part of what is measured)."""

    def return_ok_secure(self, cookie, request):
        return True


def _cookie(name: str, value: str) -> http.cookiejar.Cookie:
    host = urlsplit(HOST).hostname
    return http.cookiejar.Cookie(
        version=0, name=name, value=value, port=None, port_specified=False, domain=host,
        domain_specified=False, domain_initial_dot=False, path="/", path_specified=True,
        secure=False, expires=None, discard=True, comment=None, comment_url=None, rest={},
    )


_taken: dict[str, itertools.count] = {}


class Console(FastHttpUser):
    """A signed-in person: a session from the plan, the headers a browser behind the TLS
    proxy sends, and a CSRF token of its own (Django accepts a client's well-formed one)."""

    abstract = True
    host = HOST
    kind = ""
    wait_time = constant_throughput(USER_RATE)

    def on_start(self):
        pool = PLAN[self.kind]
        if not pool:
            raise SystemExit(f"The plan has no {self.kind} sessions.")
        n = next(_taken.setdefault(self.kind, itertools.count()))
        self.me = pool[n % len(pool)]
        self.rng = random.Random(n)
        self.csrf = "".join(secrets.choice(string.ascii_letters + string.digits)
                            for _ in range(32))
        jar = self.client.cookiejar
        jar.set_policy(LoopbackCookies())
        jar.set_cookie(_cookie("sessionid", self.me["session"]))
        jar.set_cookie(_cookie("csrftoken", self.csrf))
        self.headers = {"X-Forwarded-Proto": "https"}
        self.post_headers = {**self.headers, "X-CSRFToken": self.csrf,
                             "Origin": HOST.replace("http://", "https://", 1)}

    def page(self, name: str, url: str, *, ok=(200,)):
        with self.client.get(url, name=name, headers=self.headers, allow_redirects=False,
                             catch_response=True) as response:
            if response.status_code not in ok:
                response.failure(f"{response.status_code} from {url}")
            return response

    def post(self, name: str, url: str, data: dict, *, ok=(302,)):
        with self.client.post(url, name=name, data=data, headers=self.post_headers,
                              allow_redirects=False, catch_response=True) as response:
            if response.status_code not in ok:
                response.failure(f"{response.status_code} from POST {url}")
            return response


# ---------------------------------------------------------------------------------------
# Partner admins and operators


def usage_filters(rng, templates: list[dict], account: str, today: str) -> dict:
    """One Coupon Usage question, as partners ask it (bench/usage_pages.py's filters)."""
    by_name = {t["name"]: t["id"] for t in templates}
    template = rng.choice(templates)["id"]
    loyalty = by_name.get("Monthly loyalty credit", by_name.get("Monthly credit", template))
    back = lambda days: (dt.date.fromisoformat(today) - dt.timedelta(days=days)).isoformat()  # noqa: E731
    return rng.choice([
        {},
        {"sort": "-amount"},
        {"template": template},
        {"status": "available", "sort": "-amount"},
        {"cost_bearer": "platform", "status": "expired"},
        {"sub_account": account},
        {"released_from": back(120), "released_to": back(90), "sort": "released_at"},
        {"template": loyalty, "status": "available", "released_from": back(180),
         "sort": "-balance"},
        {"status": "used_up"},
        {"page": rng.randint(2, 40)},
    ])


class PartnerUser(Console):
    kind = "partner"
    weight = 45

    def account(self) -> str:
        return f"{self.me['prefix']}{self.rng.randint(1, self.me['accounts']):07d}"

    def template(self, *, issuable: bool = False) -> dict:
        templates = self.me["templates"]
        if issuable:
            templates = [t for t in templates if t["limit"] == "unlimited"] or templates
        return self.rng.choice(templates)

    @task(12)
    def templates(self):
        self.page("partner: Templates", "/coupons/templates/")

    @task(6)
    def template_detail(self):
        self.page("partner: Template detail", f"/coupons/templates/{self.template()['id']}/")

    @task(22)
    def issue_search(self):
        rng = self.rng
        query = rng.choice([
            {"q": rng.choice(WORDS)},
            {"q": self.account()[:-3]},
            {"type": "tier2_reseller"},
            {"page": rng.randint(1, 40)},
            {"q": rng.choice(WORDS), "type": "customer", "page": rng.randint(1, 3)},
        ])
        self.page("partner: Issue Coupon search",
                  f"/coupons/templates/{self.template(issuable=True)['id']}/issue/?"
                  + urlencode(query))

    @task(4)
    def submit_small(self):
        """Paste 1–5 account IDs into Selected Accounts and confirm: auto-approved requests
        release at once in the request, the others wait in a BD's queue."""
        template = self.template(issuable=True)
        url = f"/coupons/templates/{template['id']}/issue/"
        ids = " ".join(self.account() for _ in range(self.rng.randint(1, 5)))
        self.post("partner: Issue Coupon add", url, {"action": "paste", "account_ids": ids})
        response = self.post("partner: Issue Coupon confirm", url, {"action": "confirm"})
        target = response.headers.get("Location", "") if response.status_code == 302 else ""
        if re.match(r"^/approvals/\d+/$", target):
            self.page("partner: Request detail", target)

    @task(5)
    def requests(self):
        self.page("partner: Requests", "/approvals/")

    @task(22)
    def coupon_usage(self):
        query = usage_filters(self.rng, self.me["templates"], self.account(),
                              PLAN["billing_days"][-1])
        self.page("partner: Coupon Usage", "/coupons/usage/?" + urlencode(query))

    @task(2)
    def export(self):
        rng = self.rng
        fmt = rng.choice(["csv", "csv", "xlsx"])
        query = rng.choice([
            {"sub_account": self.account()},
            {"template": self.template()["id"], "released_from": PLAN["billing_days"][0]},
            {"sub_account": self.me["prefix"] + f"{rng.randint(1, 99):02d}"},
        ])
        self.page(f"{EXPORT_PREFIX}Coupon Usage {fmt.upper()}",
                  "/coupons/usage/?" + urlencode({**query, "_export": fmt}))


# ---------------------------------------------------------------------------------------
# BDs in the admin

PENDING = "/admin/approvals/pendingrequest/"


class BDUser(Console):
    kind = "bd"
    weight = 10

    def queue(self) -> list[str]:
        response = self.page("BD: Pending queue", PENDING)
        return re.findall(rf'href="{PENDING}(\d+)/change/', response.text or "")

    @task(4)
    def look(self):
        ids = self.queue()
        if ids:
            self.page("BD: Request", f"{PENDING}{self.rng.choice(ids)}/change/")

    @task(3)
    def approve(self):
        ids = self.queue()
        if ids:
            pk = self.rng.choice(ids)
            self.post("BD: Approve", f"{PENDING}{pk}/approve/", {})

    @task(1)
    def reject(self):
        ids = self.queue()
        if ids:
            pk = self.rng.choice(ids)
            self.page("BD: Reject form", f"{PENDING}{pk}/reject/")
            self.post("BD: Reject", f"{PENDING}{pk}/reject/",
                      {"reason": "Outside this quarter's programme."})


# ---------------------------------------------------------------------------------------
# Sub-account users


class SubAccountUser(Console):
    kind = "sub"
    weight = 45

    @task(10)
    def coupons(self):
        status = self.rng.choice(["", "", "used_up", "expired", "voided"])
        self.page("sub-account: Coupons",
                  "/billing/coupons/" + (f"?status={status}" if status else ""))

    @task(6)
    def bills(self):
        self.page("sub-account: Bills", "/billing/bills/")

    @task(5)
    def daily_bill(self):
        day = self.rng.choice(self.me["days"])
        self.page("sub-account: Daily bill", f"/billing/bills/daily/{day}/")

    @task(2)
    def monthly_bill(self):
        if self.me["months"]:
            month = self.rng.choice(self.me["months"])
            self.page("sub-account: Monthly bill", f"/billing/bills/monthly/{month}/")
