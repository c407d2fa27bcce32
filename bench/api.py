"""The Partner API (the "API" bar): listing coupons by cursor pages with Coupon Usage's
filters at 1,000,000 coupons, against the console's own call (its selector and FilterSet,
one page of rows); and submitting one request for 10,000 accounts through the API, against
the console's service call `issuance_request_submit`. Both baselines run in the same run,
interleaved.

Sizes: BENCH_API_COUPONS (1,000,000) and BENCH_API_ACCOUNTS (10,000) run the same work at
a smaller size, to check the benchmark itself (the figures of docs/BENCHMARKS.md are of
the full size). At the full size the coupons are usage_pages' "Bench Usage Big"
distributor, reused when that benchmark built it in the same database.
"""
from __future__ import annotations

import json
import os
import random
import statistics
from datetime import timedelta
from decimal import Decimal
from itertools import count
from types import SimpleNamespace
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import F
from django.db.models.fields.tuple_lookups import TupleGreaterThan, TupleLessThan
from django.test import Client
from django.utils import timezone

from api.keys import api_key_create
from api.routers.coupons import SORTS
from bench import data, usage_pages
from bench.harness import Check, Report, log, measure_interleaved, ms, percentile, timed
from billing import selectors
from billing.filters import CouponUsageFilter
from coupons.models import Coupon, CouponTemplate
from coupons.services import coupon_template_create, issuance_request_submit

NAME = "api"
COUPONS = int(os.environ.get("BENCH_API_COUPONS", "1000000"))
SELECTED = int(os.environ.get("BENCH_API_ACCOUNTS", "10000"))
TITLE = (f"Partner API: coupon list at {COUPONS:,} coupons, submit for {SELECTED:,} "
         "accounts")
FULL = COUPONS >= usage_pages.BIG
LIST_RUNS = 40
LIST_WARMUP = 3
SUBMIT_RUNS = 7
SUBMIT_WARMUP = 1
LIMIT = 100
LIST_P95_MS = 50.0
SUBMIT_RATIO = 1.2
DEEP_PAGE = 50  # the cursor of this page is where "deep page" starts

_names = count(1)


# ---------------------------------------------------------------------------------------
# Data


def _list_partner():
    """(partner, admin user, template pks by name) holding COUPONS coupons."""
    if FULL:
        found = usage_pages._existing("Bench Usage Big")
        if found:
            log(f"{NAME}: reusing usage_pages' {usage_pages.BIG:,} coupons")
            return found[:3]
        log(f"{NAME}: building {usage_pages.BIG:,} coupons (usage_pages' dataset)")
        built = usage_pages._partner("Bench Usage Big", "UB", usage_pages.BIG_ACCOUNTS,
                                     usage_pages.BIG, usage_pages.BIG_ACTIVE, seed=5)
        data.analyze()
        return built[:3]
    name = f"Bench API {COUPONS}"
    found = usage_pages._existing(name)
    if found:
        return found[:3]
    log(f"{NAME}: building {COUPONS:,} coupons (usage_pages' builder, smaller)")
    built = usage_pages._partner(name, "BA", max(COUPONS // 20, 50), COUPONS,
                                 min(3, max(COUPONS // 200, 1)), seed=7)
    data.analyze()
    return built[:3]


def _api_client(partner, user) -> Client:
    _key, token = api_key_create(partner=partner, acting_user=user,
                                 name=f"bench {next(_names)}", role="operator")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


# ---------------------------------------------------------------------------------------
# The coupon list


def _list_cases(templates: dict, account_id: str, today):
    back = lambda days: (today - timedelta(days=days)).isoformat()  # noqa: E731
    loyalty = templates.get("Monthly loyalty credit") or next(iter(templates.values()))
    return [
        ("no filter, newest first", {}, "-released_at"),
        ("no filter, by amount", {}, "-amount"),
        ("one template", {"template_id": loyalty}, "-released_at"),
        ("available, by balance", {"status": "available"}, "-balance"),
        ("platform-borne + expired", {"cost_bearer": "platform", "status": "expired"},
         "-released_at"),
        ("one sub-account", {"sub_account": account_id}, "-released_at"),
        ("released in a 30-day range, oldest first",
         {"released_from": back(120), "released_to": back(90)}, "released_at"),
    ]


def _console_page(partner, filters: dict, sort: str, cursor: str | None):
    """The console's call for the same rows: Coupon Usage's selector and FilterSet, the
    same order, one page of coupons as model rows (what its table reads), after the coupon
    `cursor` (looked up each time, as the API looks its cursor up)."""
    data_ = {("template" if k == "template_id" else k): str(v) for k, v in filters.items()}
    request = SimpleNamespace(partner=partner)
    columns = [c.lstrip("-") for c in SORTS[sort]]
    compare = TupleLessThan if SORTS[sort][0].startswith("-") else TupleGreaterThan

    def run():
        filterset = CouponUsageFilter(
            data_, queryset=selectors.coupon_usage_list(partner=partner), request=request)
        assert filterset.is_valid(), filterset.errors
        qs = filterset.qs.order_by(*SORTS[sort])
        if cursor:
            anchor = selectors.coupon_usage_list(partner=partner).filter(
                code=cursor).values_list(*columns).get()
            qs = qs.filter(compare(tuple(F(c) for c in columns), tuple(anchor)))
        return list(qs.select_related("sub_account")[:LIMIT + 1])

    return run


def _api_page(client: Client, filters: dict, sort: str, cursor: str | None):
    params = {**filters, "sort": sort, "limit": LIMIT}
    if cursor:
        params["starting_after"] = cursor
    url = f"/api/v1/coupons?{urlencode(params)}"

    def run():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        return response

    return run


def _deep_cursor(client: Client, filters: dict, sort: str) -> tuple[str | None, int]:
    """The cursor after DEEP_PAGE pages (or the last page there is), and the page's number."""
    cursor, pages = None, 0
    for _ in range(DEEP_PAGE):
        body = _api_page(client, filters, sort, cursor)().json()
        if not body["has_more"]:
            break
        cursor, pages = body["next_cursor"], pages + 1
    return cursor, pages


def _list(report: Report, partner, user, templates) -> None:
    client = _api_client(partner, user)
    today = timezone.localdate()
    middle = (Coupon.objects.filter(partner=partner).order_by("pk")
              .values_list("sub_account__account_id", flat=True)[COUPONS // 2 : COUPONS // 2 + 1])
    account_id = next(iter(middle), "")
    cases = []
    for label, filters, sort in _list_cases(templates, account_id, today):
        cases.append((label, filters, sort, None, 0))
    # A deep page: the keyset makes it cost what the first does.
    cursor, pages = _deep_cursor(client, {}, "-released_at")
    if cursor:
        cases.append((f"no filter, page {pages + 1}", {}, "-released_at", cursor, pages))
    for label, filters, sort, cursor, _pages in cases:
        log(f"{NAME}: coupon list — {label}")
        shown = len(_api_page(client, filters, sort, cursor)().json()["data"])
        timings = measure_interleaved(
            {"api": _api_page(client, filters, sort, cursor),
             "console": _console_page(partner, filters, sort, cursor)},
            runs=LIST_RUNS, warmup=LIST_WARMUP)
        api_t, console_t = timings["api"], timings["console"]
        check = Check(f"list, {label}: API p95", api_t.p95 * 1000, LIST_P95_MS, "ms")
        report.checks.append(check)
        report.rows.append([
            f"list: {label}", str(shown), ms(api_t.p50), ms(api_t.p95), ms(api_t.cpu_p50),
            ms(console_t.p50), ms(console_t.p95), f"{api_t.p95 / console_t.p95:.2f}×",
            "PASS" if check.passed else "MISS",
        ])


# ---------------------------------------------------------------------------------------
# Submit


def _template(partner, user):
    return coupon_template_create(
        partner=partner, acting_user=user, name=f"Bench API submit {next(_names)}",
        kind="cash", currency="USD", face_value=Decimal("10.00"), cost_bearer="partner",
        issue_limit="one", validity_type="relative", valid_days=30,
    )


def _submit_service(partner, user, ids):
    template = _template(partner, user)

    def run():
        request = issuance_request_submit(template=template, acting_user=user, account_ids=ids)
        assert request.recipient_count == len(ids)

    return run


def _submit_api(client, partner, user, ids):
    template = _template(partner, user)
    body = json.dumps({"template_id": template.pk, "account_ids": ids})
    key = f"bench-submit-{next(_names)}"

    def run():
        response = client.post("/api/v1/issuance_requests", body,
                               content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
        assert response.status_code == 201, response.content[:500]
        assert response.json()["recipient_count"] == len(ids)

    return run


def _submit(report: Report) -> None:
    accounts_n = SELECTED + SELECTED // 5
    log(f"{NAME}: submit — {accounts_n:,} sub-accounts")
    partner, user = data.make_partner(f"Bench API Submit {next(_names)}",
                                      requires_bd_approval=True)
    accounts = data.make_sub_accounts(partner, accounts_n, prefix="AS")
    ids = [a for _pk, a in random.Random(13).sample(accounts, SELECTED)]
    data.analyze()
    client = _api_client(partner, user)
    samples = {"api": [], "service": []}
    for i in range(SUBMIT_WARMUP + SUBMIT_RUNS):
        log(f"{NAME}: submit round {i + 1} of {SUBMIT_WARMUP + SUBMIT_RUNS}")
        # Fresh templates each round ("Limited to 1" never meets an earlier request); the
        # order alternates.
        steps = [("api", _submit_api(client, partner, user, ids)),
                 ("service", _submit_service(partner, user, ids))]
        for kind, fn in (steps if i % 2 else steps[::-1]):
            seconds, _ = timed(fn)
            if i >= SUBMIT_WARMUP:
                samples[kind].append(seconds)
    api_p50 = statistics.median(samples["api"])
    service_p50 = statistics.median(samples["service"])
    check = Check(f"submit {SELECTED:,} accounts: API / service call (p50)",
                  api_p50 / service_p50, SUBMIT_RATIO, "×")
    report.checks.append(check)
    report.rows.append([
        f"submit: {SELECTED:,} accounts", str(SELECTED), ms(api_p50),
        ms(percentile(samples["api"], 95)), "", ms(service_p50),
        ms(percentile(samples["service"], 95)), f"{api_p50 / service_p50:.2f}× (p50)",
        "PASS" if check.passed else "MISS",
    ])


def run() -> Report:
    # The bucket is part of every request's cost, but must not refuse the benchmark's.
    settings.API_RATELIMIT_BURST = 10**9
    report = Report(
        name=NAME, title=TITLE,
        target=f"`GET /api/v1/coupons` (cursor pages of {LIMIT}, Coupon Usage's filters and "
               f"sorts) at {COUPONS:,} coupons: p95 ≤ {LIST_P95_MS:.0f} ms, beside the "
               "console's call for the same page (its selector and FilterSet, the rows "
               f"fetched); `POST /api/v1/issuance_requests` for {SELECTED:,} accounts ≤ "
               f"{SUBMIT_RATIO}× the console's service call `issuance_request_submit` "
               "(medians).",
        headers=["work", "rows", "API p50", "API p95", "API CPU p50", "console p50",
                 "console p95", "API / console", ""],
    )
    partner, user, templates = _list_partner()
    total = Coupon.objects.filter(partner=partner).count()
    _list(report, partner, user, templates)
    _submit(report)
    report.notes.append(
        f"Setup: the list runs on a distributor with {total:,} coupons of "
        f"{CouponTemplate.objects.filter(partner=partner).count()} templates (usage_pages' "
        "dataset builder), as an operator key; each case times the API request through "
        "Django's full stack (middleware, bearer key, rate-limit bucket, the FilterSet, the "
        f"keyset page, JSON) and the console's call for the same {LIMIT} rows, interleaved, "
        f"{LIST_RUNS} runs after {LIST_WARMUP} warm-up. The submit makes fresh \"Limited to "
        f"1\" partner-borne templates each round (BD approval on, so nothing is released) "
        f"and times the API's POST (with an Idempotency-Key, as clients send it) against "
        f"`issuance_request_submit` for the same {SELECTED:,} account IDs, in alternating "
        f"order, {SUBMIT_RUNS} rounds after {SUBMIT_WARMUP} warm-up."
        + ("" if FULL else f" **Run at a reduced size** (BENCH_API_COUPONS={COUPONS}, "
           f"BENCH_API_ACCOUNTS={SELECTED}): a check of the benchmark, not the bar's figures.")
    )
    return report
