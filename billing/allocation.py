"""Which coupon pays: the pure allocation rule, plain values in and out (for partners:
docs/WHICH_COUPON_PAYS.md).

No ORM here, so the rule is tested on its own and reads the same in the partners' docs:

1. A coupon can pay a line when it is in the line's currency, valid on the bill's date
   (valid from and valid until both count), its products include the line's product, the
   line's original amount reaches the coupon's minimum (threshold cash), it still has
   balance (and, for a discount, uses), and it has not paid this line already.
2. Discount coupons go first. Each takes one use per line: its rate of the line's original
   amount, rounded half up to the cent, at most its cap per use, at most what the line still
   owes.
3. Then cash and threshold cash coupons, in this order: earliest valid until, then the
   narrowest product scope (a coupon for all products is the widest), then earliest
   release, then lowest id. Each takes min(its balance, what the line still owes).
4. Lines are served in the order given (the caller gives bill date, then product), and a
   coupon's balance and uses carry from one line to the next.
"""
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal

from couponplatform.money import ZERO, quantize

CASH = "cash"
THRESHOLD = "threshold"
DISCOUNT = "discount"
HUNDRED = Decimal("100")


@dataclass(frozen=True)
class LineIn:
    """A bill line that may still owe money."""

    key: Hashable
    product: str
    original: Decimal
    bill_date: date
    currency: str
    deducted: Decimal = ZERO
    # Coupons that already paid this line: one deduction per (coupon, line).
    paid_by: frozenset = field(default_factory=frozenset)

    @property
    def owed(self) -> Decimal:
        return self.original - self.deducted


@dataclass(frozen=True)
class CouponIn:
    """An available coupon of the line's account, as the allocation needs to see it."""

    id: int
    kind: str
    currency: str
    balance: Decimal
    valid_from: date
    valid_until: date
    released_at: datetime
    all_products: bool = True
    products: frozenset[str] = frozenset()
    min_amount: Decimal | None = None
    # Discount only: percent off (1–99), the most one use may take, and uses left.
    rate: Decimal | None = None
    cap: Decimal | None = None
    uses_left: int | None = None


@dataclass(frozen=True)
class Allocation:
    coupon_id: int
    line_key: Hashable
    amount: Decimal
    # 1 when the deduction spends a discount use, else 0.
    uses: int = 0


def coupon_applies(line: LineIn, coupon: CouponIn) -> bool:
    """Whether the coupon may pay on this line at all (rule 1), whatever it has left."""
    if coupon.currency != line.currency:
        return False
    if not coupon.valid_from <= line.bill_date <= coupon.valid_until:
        return False
    if not coupon.all_products and line.product not in coupon.products:
        return False
    if coupon.min_amount is not None and line.original < coupon.min_amount:
        return False
    if coupon.id in line.paid_by:
        return False
    if coupon.balance <= ZERO:
        return False
    if coupon.kind == DISCOUNT and not (coupon.uses_left or 0) > 0:
        return False
    return True


def coupon_order_key(coupon: CouponIn) -> tuple:
    """Discount first; then earliest valid until, narrowest scope, earliest release, id."""
    # Infinity sorts an all-products coupon after any chosen set, however large.
    scope = float("inf") if coupon.all_products else len(coupon.products)
    return (
        0 if coupon.kind == DISCOUNT else 1,
        coupon.valid_until,
        scope,
        coupon.released_at,
        coupon.id,
    )


def _discount_amount(line: LineIn, coupon: CouponIn) -> Decimal:
    amount = quantize(line.original * coupon.rate / HUNDRED)
    if coupon.cap is not None:
        amount = min(amount, coupon.cap)
    return amount


def allocate_line(line: LineIn, coupons: Iterable[CouponIn]) -> list[Allocation]:
    """The deductions for one line, given the coupons as they stand before it."""
    owed = line.owed
    allocations: list[Allocation] = []
    for coupon in sorted(coupons, key=coupon_order_key):
        if owed <= ZERO:
            break
        if not coupon_applies(line, coupon):
            continue
        if coupon.kind == DISCOUNT:
            amount = min(_discount_amount(line, coupon), owed, coupon.balance)
            uses = 1
        else:
            amount = min(coupon.balance, owed)
            uses = 0
        # A discount too small to reach a cent spends no use.
        if amount <= ZERO:
            continue
        allocations.append(Allocation(coupon.id, line.key, amount, uses))
        owed -= amount
    return allocations


def allocate(lines: Sequence[LineIn], coupons: Iterable[CouponIn]) -> list[Allocation]:
    """The deductions for many lines in order; each coupon's balance and uses carry over."""
    state = {coupon.id: coupon for coupon in coupons}
    allocations: list[Allocation] = []
    for line in lines:
        taken = allocate_line(line, state.values())
        for allocation in taken:
            coupon = state[allocation.coupon_id]
            uses_left = coupon.uses_left
            if allocation.uses:
                uses_left = (uses_left or 0) - allocation.uses
            state[coupon.id] = replace(
                coupon, balance=coupon.balance - allocation.amount, uses_left=uses_left,
            )
        allocations.extend(taken)
    return allocations
