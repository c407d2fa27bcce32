"""The pure "which coupon pays" rule of PRODUCT §7, case by case, with no database."""
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.allocation import (
    CouponIn,
    LineIn,
    allocate,
    allocate_line,
    coupon_applies,
    coupon_order_key,
)

D = Decimal
DAY = date(2025, 3, 15)
JAN1, DEC31 = date(2025, 1, 1), date(2025, 12, 31)
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def line(original="100.00", *, product="ecs", deducted="0.00", day=DAY, currency="USD",
         paid_by=(), key="L1") -> LineIn:
    return LineIn(key=key, product=product, original=D(original), deducted=D(deducted),
                  bill_date=day, currency=currency, paid_by=frozenset(paid_by))


def cash(id, balance="50.00", *, kind="cash", until=DEC31, since=JAN1, products=None,
         released=0, currency="USD", minimum=None) -> CouponIn:
    return CouponIn(
        id=id, kind=kind, currency=currency, balance=D(balance), valid_from=since,
        valid_until=until, released_at=T0 + timedelta(hours=released),
        all_products=products is None, products=frozenset(products or ()),
        min_amount=D(minimum) if minimum is not None else None,
    )


def threshold(id, balance="20.00", *, minimum="200.00", **kwargs) -> CouponIn:
    return cash(id, balance, kind="threshold", minimum=minimum, **kwargs)


def discount(id, rate, cap, uses=3, *, balance=None, until=DEC31, products=None,
             released=0, currency="USD", since=JAN1) -> CouponIn:
    return CouponIn(
        id=id, kind="discount", currency=currency,
        balance=D(balance) if balance is not None else D(cap) * uses,
        valid_from=since, valid_until=until, released_at=T0 + timedelta(hours=released),
        all_products=products is None, products=frozenset(products or ()),
        rate=D(rate), cap=D(cap), uses_left=uses,
    )


JUN30 = date(2025, 6, 30)

# (what it proves, line, coupons, expected [(coupon id, amount)] in the order taken)
CASES = [
    ("cash pays the whole line", line("30.00"), [cash(1, "50.00")], [(1, "30.00")]),
    ("cash pays what its balance allows", line("80.00"), [cash(1, "50.00")], [(1, "50.00")]),
    ("balance exactly equal to the line", line("50.00"), [cash(1, "50.00")], [(1, "50.00")]),
    ("cash takes only what the line still owes", line("80.00", deducted="70.00"),
     [cash(1, "50.00")], [(1, "10.00")]),
    ("earliest valid until pays first", line("80.00"),
     [cash(1, "50.00", until=DEC31), cash(2, "50.00", until=JUN30)],
     [(2, "50.00"), (1, "30.00")]),
    ("same valid until: narrowest product scope first", line("100.00"),
     [cash(1, "40.00"), cash(2, "40.00", products={"ecs", "oss"}),
      cash(3, "40.00", products={"ecs"})],
     [(3, "40.00"), (2, "40.00"), (1, "20.00")]),
    ("all products is wider than any chosen set", line("60.00"),
     [cash(1, "40.00"), cash(2, "40.00", products={f"p{i}" for i in range(50)} | {"ecs"})],
     [(2, "40.00"), (1, "20.00")]),
    ("same until and scope: earliest release first", line("60.00"),
     [cash(1, "40.00", released=5), cash(2, "40.00", released=1)],
     [(2, "40.00"), (1, "20.00")]),
    ("all else equal: lowest id first", line("60.00"),
     [cash(7, "40.00"), cash(3, "40.00")], [(3, "40.00"), (7, "20.00")]),
    ("valid until outranks scope", line("60.00"),
     [cash(1, "40.00", products={"ecs"}, until=DEC31), cash(2, "40.00", until=JUN30)],
     [(2, "40.00"), (1, "20.00")]),
    ("scope outranks release", line("60.00"),
     [cash(1, "40.00", released=0), cash(2, "40.00", products={"ecs"}, released=9)],
     [(2, "40.00"), (1, "20.00")]),
    ("release outranks id", line("60.00"),
     [cash(1, "40.00", released=9), cash(2, "40.00", released=0)],
     [(2, "40.00"), (1, "20.00")]),
    ("discount goes before cash that expires sooner", line("100.00"),
     [cash(1, "50.00", until=date(2025, 3, 31)), discount(2, "10", "30.00")],
     [(2, "10.00"), (1, "50.00")]),
    ("discount applies its rate to the original amount, not what is left", line(
        "100.00", deducted="40.00"), [discount(1, "10", "30.00")], [(1, "10.00")]),
    ("discount is capped by its upper limit per use", line("1000.00"),
     [discount(1, "20", "15.00")], [(1, "15.00")]),
    ("discount rounds half up to the cent", line("0.20"), [discount(1, "12.5", "5.00")],
     [(1, "0.03")]),
    ("a discount under half a cent takes nothing", line("0.40"), [discount(1, "1", "5.00")],
     []),
    ("discount takes at most what the line owes", line("100.00", deducted="95.00"),
     [discount(1, "10", "30.00")], [(1, "5.00")]),
    ("discount with no uses left does not apply", line("100.00"),
     [discount(1, "10", "30.00", uses=0, balance="30.00")], []),
    ("two discounts each take one use", line("100.00"),
     [discount(1, "10", "30.00"), discount(2, "20", "30.00")],
     [(1, "10.00"), (2, "20.00")]),
    ("discount first, then cash pays the rest", line("100.00"),
     [cash(1, "500.00"), discount(2, "25", "30.00")], [(2, "25.00"), (1, "75.00")]),
    ("threshold applies when the line reaches the minimum exactly", line("200.00"),
     [threshold(1, "20.00", minimum="200.00")], [(1, "20.00")]),
    ("threshold does not apply one cent below the minimum", line("199.99"),
     [threshold(1, "20.00", minimum="200.00")], []),
    ("threshold compares the original amount, not what is left", line(
        "250.00", deducted="100.00"), [threshold(1, "20.00", minimum="200.00")],
     [(1, "20.00")]),
    ("threshold and cash share one order: earliest valid until", line("300.00"),
     [cash(1, "50.00", until=DEC31), threshold(2, "20.00", until=JUN30)],
     [(2, "20.00"), (1, "50.00")]),
    ("valid from is inclusive", line("10.00", day=date(2025, 3, 1)),
     [cash(1, since=date(2025, 3, 1))], [(1, "10.00")]),
    ("valid until is inclusive", line("10.00", day=date(2025, 3, 31)),
     [cash(1, until=date(2025, 3, 31))], [(1, "10.00")]),
    ("the day before valid from does not apply", line("10.00", day=date(2025, 2, 28)),
     [cash(1, since=date(2025, 3, 1))], []),
    ("the day after valid until does not apply", line("10.00", day=date(2025, 4, 1)),
     [cash(1, until=date(2025, 3, 31))], []),
    ("another currency does not apply", line("10.00", currency="USD"),
     [cash(1, currency="EUR")], []),
    ("a product outside the coupon's set does not apply", line("10.00", product="rds"),
     [cash(1, products={"ecs", "oss"})], []),
    ("a product inside the set applies", line("10.00", product="oss"),
     [cash(1, products={"ecs", "oss"})], [(1, "10.00")]),
    ("a zero line takes nothing", line("0.00"), [cash(1), discount(2, "10", "5.00")], []),
    ("a paid line takes nothing", line("50.00", deducted="50.00"), [cash(1)], []),
    ("a coupon with no balance does not apply", line("10.00"), [cash(1, "0.00")], []),
    ("a coupon that paid this line already does not pay it again",
     line("100.00", deducted="50.00", paid_by={1}), [cash(1, "50.00"), cash(2, "80.00")],
     [(2, "50.00")]),
    ("no coupons, no allocations", line("10.00"), [], []),
    ("mixed: discount, then threshold, then cash in order", line("400.00"),
     [cash(1, "1000.00", until=DEC31), threshold(2, "30.00", minimum="300.00", until=JUN30),
      discount(3, "10", "25.00"), cash(4, "10.00", currency="EUR")],
     [(3, "25.00"), (2, "30.00"), (1, "345.00")]),
]


@pytest.mark.parametrize(("line_in", "coupons", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_which_coupon_pays(line_in, coupons, expected):
    taken = allocate_line(line_in, coupons)
    assert [(a.coupon_id, a.amount) for a in taken] == [(i, D(x)) for i, x in expected]
    assert all(a.line_key == line_in.key for a in taken)
    assert [a.uses for a in taken] == [
        1 if next(c for c in coupons if c.id == a.coupon_id).kind == "discount" else 0
        for a in taken
    ]


def test_balance_carries_from_line_to_line():
    lines = [line("30.00", key="a"), line("30.00", key="b", product="oss")]
    taken = allocate(lines, [cash(1, "50.00")])
    assert [(a.line_key, a.amount) for a in taken] == [("a", D("30.00")), ("b", D("20.00"))]


def test_discount_uses_carry_from_line_to_line():
    lines = [line("100.00", key=k) for k in "abc"]
    taken = allocate(lines, [discount(1, "10", "30.00", uses=2), cash(2, "1000.00")])
    assert [(a.line_key, a.coupon_id, a.amount) for a in taken] == [
        ("a", 1, D("10.00")), ("a", 2, D("90.00")),
        ("b", 1, D("10.00")), ("b", 2, D("90.00")),
        ("c", 2, D("100.00")),
    ]


def test_lines_are_served_in_the_order_given():
    coupon = cash(1, "50.00")
    first = allocate([line("40.00", key="x"), line("40.00", key="y")], [coupon])
    second = allocate([line("40.00", key="y"), line("40.00", key="x")], [coupon])
    assert [(a.line_key, a.amount) for a in first] == [("x", D("40.00")), ("y", D("10.00"))]
    assert [(a.line_key, a.amount) for a in second] == [("y", D("40.00")), ("x", D("10.00"))]


def test_a_used_up_coupon_stops_paying_later_lines():
    taken = allocate([line("50.00", key="a"), line("50.00", key="b")], [cash(1, "50.00")])
    assert [(a.line_key, a.amount) for a in taken] == [("a", D("50.00"))]


def test_inputs_are_not_changed():
    coupon = cash(1, "50.00")
    allocate([line("80.00")], [coupon])
    assert coupon.balance == D("50.00")


def test_order_key_puts_discounts_first_whatever_their_dates():
    keys = sorted([cash(1, until=JAN1), discount(2, "5", "1.00", until=DEC31)],
                  key=coupon_order_key)
    assert [c.id for c in keys] == [2, 1]


def test_applies_ignores_what_the_line_still_owes():
    # Eligibility is about the coupon's terms; the amount is allocate_line's business.
    assert coupon_applies(line("10.00", deducted="10.00"), cash(1))


money = st.decimals(min_value=D("0.00"), max_value=D("500.00"), places=2)


@st.composite
def coupons_strategy(draw):
    result = []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["cash", "threshold", "discount"]))
        until = date(2025, 3, 1) + timedelta(days=draw(st.integers(0, 60)))
        products = draw(st.none() | st.frozensets(st.sampled_from(["ecs", "oss", "rds"]),
                                                  min_size=1))
        if kind == "discount":
            result.append(discount(
                i + 1, draw(st.integers(1, 99)), draw(money.filter(lambda m: m > 0)),
                uses=draw(st.integers(0, 3)), until=until, products=products,
                released=draw(st.integers(0, 5)),
            ))
        else:
            result.append(cash(
                i + 1, draw(money), kind=kind, until=until, products=products,
                released=draw(st.integers(0, 5)),
                minimum=draw(money) if kind == "threshold" else None,
            ))
    return result


@settings(max_examples=300, deadline=None)
@given(
    originals=st.lists(money, min_size=1, max_size=5),
    codes=st.lists(st.sampled_from(["ecs", "oss", "rds"]), min_size=5, max_size=5),
    coupons=coupons_strategy(),
)
def test_allocation_never_overpays(originals, codes, coupons):
    """Whatever the coupons: no line paid beyond what it owes, no coupon beyond its balance
    or uses, no coupon twice on a line, and every amount positive and in cents."""
    lines = [line(o, product=codes[i], key=i, day=date(2025, 3, 20))
             for i, o in enumerate(originals)]
    taken = allocate(lines, coupons)
    by_id = {c.id: c for c in coupons}
    for a in taken:
        assert a.amount > 0 and a.amount == a.amount.quantize(D("0.01"))
        assert coupon_applies(lines[a.line_key], by_id[a.coupon_id])
    for ln in lines:
        mine = [a for a in taken if a.line_key == ln.key]
        assert sum((a.amount for a in mine), D(0)) <= ln.owed
        assert len({a.coupon_id for a in mine}) == len(mine)
    for c in coupons:
        mine = [a for a in taken if a.coupon_id == c.id]
        assert sum((a.amount for a in mine), D(0)) <= c.balance
        if c.kind == "discount":
            assert len(mine) <= c.uses_left
            assert all(a.amount <= c.cap for a in mine)
