"""How big the load dataset is (no Django here: the runner reads it before setup)."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Scale:
    """How big the world is. The default is the load test's; `tiny()` is the tests'."""

    big_accounts: int = 50_000
    big_coupons: int = 900_000
    mid_partners: int = 9
    mid_accounts: int = 1_000
    mid_coupons: int = 10_000
    billing_accounts: int = 10_000  # the billing run's bills, each run
    release_accounts: int = 10_000  # the release's accounts, each run
    history_big: int = 2_000  # accounts with posted daily bills
    history_mid: int = 100
    history_days: int = 45
    operators_big: int = 80
    operators_mid: int = 10
    sub_users: int = 1_000
    pending_per_partner: int = 100

    @classmethod
    def tiny(cls) -> Scale:
        return cls(big_accounts=60, big_coupons=400, mid_partners=2, mid_accounts=20,
                   mid_coupons=40, billing_accounts=6, release_accounts=5, history_big=6,
                   history_mid=2, history_days=20, operators_big=2, operators_mid=1,
                   sub_users=4, pending_per_partner=2)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> Scale:
        return replace(cls(), **{k: v for k, v in values.items()
                                 if k in {f.name for f in fields(cls)}})

    @property
    def coupons(self) -> int:
        return self.big_coupons + self.mid_partners * self.mid_coupons + self.billing_accounts

    @property
    def sub_accounts(self) -> int:
        return (self.big_accounts + self.mid_partners * self.mid_accounts
                + self.billing_accounts + self.release_accounts)
