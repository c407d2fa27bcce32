"""What Locust's users need, written to a JSON file the locustfile reads: a signed-in
session per simulated user (made as a sign-in makes it, in the run's database), and for
each the ids its pages take: templates, account ID prefixes, bill days and months.

Sessions are made here rather than by posting the sign-in form, because a sign-in costs a
full PBKDF2 hash by design (about half a second of one core): a few hundred of them at
the start of each step would measure the hasher, not the pages.
"""
from __future__ import annotations

import datetime as dt
from importlib import import_module

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)

from accounts.models import PartnerMembership
from coupons.models import CouponTemplate

BACKEND = "django.contrib.auth.backends.ModelBackend"


def session_for(user) -> str:
    """A session key signed in as `user`, as django.contrib.auth.login leaves it."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = BACKEND
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return store.session_key


def _cycle(users: list, count: int) -> list:
    """`count` sessions over the users: a user has several sessions (as people have several
    browsers) once the users run out."""
    return [users[n % len(users)] for n in range(count)] if users else []


def _templates(partner_id: int) -> list[dict]:
    return [
        {"id": t.pk, "name": t.name, "bearer": t.cost_bearer, "limit": t.issue_limit}
        for t in CouponTemplate.objects.filter(partner_id=partner_id,
                                               status=CouponTemplate.Status.ACTIVE)
        .order_by("pk")
    ]


def plan_make(manifest: dict, *, host: str, sessions: dict[str, int]) -> dict:
    """The plan for `sessions` = {"partner": n, "bd": n, "sub": n} simulated users."""
    user_model = get_user_model()
    console = [manifest["partners"]["big"], *manifest["partners"]["mids"]]
    info = {pk: {"partner": pk, "prefix": manifest["prefixes"][str(pk)],
                 "accounts": (manifest["scale"]["big_accounts"]
                              if pk == manifest["partners"]["big"]
                              else manifest["scale"]["mid_accounts"]),
                 "templates": _templates(pk)} for pk in console}
    # The big distributor's people are most of the console's users, as its share of the
    # accounts is.
    members = list(
        PartnerMembership.objects.filter(
            partner_id__in=console,
            role__in=[PartnerMembership.Role.ADMIN, PartnerMembership.Role.OPERATOR])
        .select_related("user").order_by("partner_id", "pk"))
    big = [m for m in members if m.partner_id == manifest["partners"]["big"]]
    others = [m for m in members if m.partner_id != manifest["partners"]["big"]]
    mixed = [m for _key, _n, m in sorted(
        [(i / 2, n, m) for n, (i, m) in enumerate(enumerate(big))]
        + [(i / 1, len(big) + n, m) for n, (i, m) in enumerate(enumerate(others))])]
    partner_sessions = [
        {"session": session_for(m.user), "role": m.role, **info[m.partner_id]}
        for m in _cycle(mixed, sessions.get("partner", 0))
    ]
    bds = list(user_model.objects.filter(username__startswith="load-bd-")
               .exclude(username=manifest["release_bd"]).order_by("pk"))
    bd_sessions = [{"session": session_for(u)} for u in _cycle(bds, sessions.get("bd", 0))]
    first, last = (dt.date.fromisoformat(d) for d in manifest["history_days"])
    days = [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    months = [m[:7] for m in manifest["closed_months"]]
    subs = list(user_model.objects.filter(username__startswith="load-sub-").order_by("pk"))
    sub_sessions = [{"session": session_for(u), "days": days, "months": months}
                    for u in _cycle(subs, sessions.get("sub", 0))]
    return {"host": host, "partner": partner_sessions, "bd": bd_sessions, "sub": sub_sessions,
            "billing_days": manifest["billing_days"]}
