"""Wording helpers for messages shown to people. A counted noun is written with
`ngettext` where the message is (its two forms literal, so the catalogs can hold them),
not pluralised here."""
from django.utils.translation import ngettext

# The longest value `named` shows whole: an account ID's length (accounts.SubAccount).
NAMED_WIDTH = 32


def named(ids: list[str], limit: int = 20, width: int = NAMED_WIDTH) -> str:
    """The first `limit` of `ids`, and how many more: "A1, A2 and 3 more". Each value is cut
    to `width` characters, so a pasted 400,000-character value is shown by its start, not
    kept whole in the session's messages."""
    shown = ", ".join(_shortened(value, width) for value in ids[:limit])
    if len(ids) <= limit:
        return shown
    more = len(ids) - limit
    return ngettext("%(shown)s and %(n)s more", "%(shown)s and %(n)s more", more) % {
        "shown": shown, "n": more}


def _shortened(value: str, width: int) -> str:
    return value if len(value) <= width else value[:width] + "…"
