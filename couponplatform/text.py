"""Wording helpers for messages shown to people."""


def count(n: int, singular: str, plural: str | None = None) -> str:
    """count(1, "account") → "1 account"; count(3, "account") → "3 accounts"."""
    word = singular if n == 1 else (plural or singular + "s")
    return f"{n:,} {word}"
