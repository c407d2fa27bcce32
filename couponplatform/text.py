"""Wording helpers for messages shown to people."""


def count(n: int, singular: str, plural: str | None = None) -> str:
    """count(1, "account") → "1 account"; count(3, "account") → "3 accounts"."""
    word = singular if n == 1 else (plural or singular + "s")
    return f"{n:,} {word}"


def named(ids: list[str], limit: int = 20) -> str:
    """The first `limit` of `ids`, and how many more: "A1, A2 and 3 more"."""
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
