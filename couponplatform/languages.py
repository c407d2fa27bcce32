"""The language a person reads: the one they chose (User.language), else the site's default.

Pages get it from accounts/middleware.py; what is made for someone outside their own
request (a mail to a BD, an export streamed after its view returned) is rendered inside
`translation.override(language_of(user))`, so it reads in the recipient's language, not in
whatever language the process last served.
"""
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.utils import translation


def chosen_language(user) -> str:
    """The language `user` chose with the switch, "" when none (or no user)."""
    return getattr(user, "language", "") or ""


def language_of(user) -> str:
    """The language to write to `user` in: their choice, else the platform's default."""
    return chosen_language(user) or settings.LANGUAGE_CODE


def in_language(language: str, items: Iterable) -> Iterator:
    """`items`, each one made with `language` active: a streamed export's rows are made
    while the response is sent, after the view (and its request's language) has returned."""
    iterator = iter(items)
    while True:
        with translation.override(language):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item
