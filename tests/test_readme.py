"""The README's demo figures are what seed_demo makes: each figure the README states is
read from its text and checked against demo.seeding.DEMO, the one place the seeding reads
them from, and a small seeded demo is counted to check the seeding follows DEMO."""
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

import demo.usage
from accounts.models import Partner, SubAccount
from demo.seeding import DEMO, LOGINS, seed
from tests import factories as f

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def figure(pattern: str) -> tuple[int, ...]:
    """The numbers of the README's one sentence matching `pattern` (thousands commas
    allowed); fails when the README does not say it, or says it twice."""
    found = re.findall(pattern, " ".join(README.split()))
    assert len(found) == 1, f"the README should say {pattern!r} once; found {found}"
    groups = found[0] if isinstance(found[0], tuple) else (found[0],)
    return tuple(int(g.replace(",", "")) for g in groups)


def test_the_readmes_figures_are_the_demos():
    assert figure(r"search Northwind's ([\d,]+) sub-accounts \(its ([\d,]+) customers and "
                  r"the accounts of its (\d+) tier-2 resellers\)") == (
        DEMO.northwind_accounts(), DEMO.customers, len(DEMO.tier2_resellers))
    assert figure(r"The demo has ([\d,]+) sub-accounts in all: besides Northwind's, "
                  r"Bluebird's ([\d,]+) customers, Quiet Partners' ([\d,]+) and ([\d,]+) "
                  r"customers of each tier-2 reseller") == (
        DEMO.sub_accounts(), DEMO.bluebird_customers, DEMO.quiet_customers,
        DEMO.tier2_customers)
    assert figure(r"Seeding the demo takes about (\d+) seconds the first time \(it bills "
                  r"(\d+) days of usage of (\d+) accounts\)") == (
        DEMO.seconds, DEMO.usage_days, DEMO.usage_accounts)
    # The figures themselves, as issue reports quoted them: 2,400 customers, 2,405
    # selectable by Northwind, 2,925 in all.
    assert (DEMO.customers, DEMO.northwind_accounts(), DEMO.sub_accounts()) == (
        2400, 2405, 2925)


def test_the_readmes_logins_are_the_ones_seed_demo_prints():
    table = re.findall(r"^\| (`[^|]+`) \| (.+) \|$", README, flags=re.M)
    named = [name for cell, _ in table for name in re.findall(r"`(\w+)`", cell)]
    assert named == [username for username, _ in LOGINS]
    who = {name: text for cell, text in table for name in re.findall(r"`(\w+)`", cell)}
    assert "BD of Quiet Partners and Southgate Distribution" in who["bd2"]
    assert "Quiet Partners" in who["nocoupons"]


@pytest.mark.django_db
def test_seed_demo_makes_the_figures_of_demo(monkeypatch):
    """Seeded with 60 customers instead of 2,400 (the rest as DEMO says), and with its
    usage step recorded instead of run (it bills DEMO's days of DEMO's accounts)."""
    usage_calls = []
    monkeypatch.setattr(demo.usage, "seed_usage",
                        lambda **kwargs: usage_calls.append(kwargs))
    with f.fast_passwords():
        seed(password="pw", accounts=60, log=lambda *a, **k: None)
    northwind = Partner.objects.get(name="Northwind Distribution")
    assert SubAccount.objects.count() == DEMO.sub_accounts(60)
    assert SubAccount.objects.filter(partner=northwind).count() == DEMO.northwind_accounts(60)
    tier2 = Partner.objects.filter(parent=northwind, tier=2)
    assert sorted(tier2.values_list("name", flat=True)) == sorted(DEMO.tier2_resellers)
    for reseller in tier2:
        assert SubAccount.objects.filter(partner=reseller).count() == DEMO.tier2_customers
    assert SubAccount.objects.filter(partner__name="Bluebird Cloud").count() == (
        DEMO.bluebird_customers)
    assert SubAccount.objects.filter(partner__name="Quiet Partners").count() == (
        DEMO.quiet_customers)
    bd_of = dict(Partner.objects.filter(parent=None).values_list("name", "bd__username"))
    assert bd_of == {"Northwind Distribution": "bd", "Bluebird Cloud": "bd",
                     "Quiet Partners": "bd2", "Southgate Distribution": "bd2"}
    users = set(get_user_model().objects.values_list("username", flat=True))
    assert {username for username, _ in LOGINS} <= users
    [call] = usage_calls
    assert call["days"] == DEMO.usage_days
    assert len(call["account_ids"]) == DEMO.usage_accounts
    assert sum(a.startswith("NW") for a in call["account_ids"]) == DEMO.usage_northwind
