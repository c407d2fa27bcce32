"""What the ledger's checks report: the rule a row breaks, the row, and what differs; sums
compare within half a cent (PostgreSQL sums Decimals exactly, SQLite in floating point, and
real amounts are whole cents either way)."""
from dataclasses import dataclass
from decimal import Decimal

TOLERANCE = Decimal("0.005")


@dataclass(frozen=True)
class Discrepancy:
    rule: str
    obj: str
    detail: str

    def __str__(self) -> str:
        return f"{self.obj}: {self.rule} ({self.detail})"


def money_shown(value) -> Decimal:
    """A summed amount as the check names it: to the cent."""
    return Decimal(value).quantize(Decimal("0.01"))
