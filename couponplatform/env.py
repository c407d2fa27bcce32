"""Reading settings from the environment: each variable parsed and checked where it is read,
so a missing or malformed one stops start-up with a message naming it (docs/DEPLOY.md lists
them all)."""
import os
import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


class EnvError(ImproperlyConfigured):
    """A variable of the environment is missing or malformed; the message names it."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"Environment variable {name}: {problem} (see docs/DEPLOY.md)")
        self.name = name


def raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def required(name: str, why: str) -> str:
    value = raw(name)
    if not value:
        raise EnvError(name, f"must be set {why}")
    return value


def string(name: str, default: str) -> str:
    value = raw(name)
    return default if value is None else value


def boolean(name: str, default: bool) -> bool:
    value = raw(name)
    if value is None:
        return default
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise EnvError(name, f"{value!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def integer(name: str, default: int, *, minimum: int | None = None,
            maximum: int | None = None) -> int:
    value = raw(name)
    if value is None or value == "":
        return default
    if not re.fullmatch(r"-?[0-9]+", value):
        raise EnvError(name, f"{value!r} is not a whole number")
    number = int(value)
    if minimum is not None and number < minimum:
        raise EnvError(name, f"{number} is below the least allowed, {minimum}")
    if maximum is not None and number > maximum:
        raise EnvError(name, f"{number} is above the most allowed, {maximum}")
    return number


def seconds(name: str, default: float, *, minimum: float = 0) -> float:
    """A duration in seconds, e.g. 2.5."""
    value = raw(name)
    if value is None or value == "":
        return default
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        raise EnvError(name, f"{value!r} is not a number of seconds")
    number = float(value)
    if number < minimum:
        raise EnvError(name, f"{value} is below the least allowed, {minimum:g}")
    return number


def items(name: str, default: str) -> list[str]:
    """A comma-separated list; blanks between commas are dropped."""
    return [item.strip() for item in string(name, default).split(",") if item.strip()]


def url(name: str, default: str | None, *, schemes: tuple[str, ...], why: str = "") -> str:
    """A URL with one of `schemes`; `default` None makes the variable required."""
    value = raw(name)
    if not value:
        if default is None:
            raise EnvError(name, f"must be set {why}".rstrip())
        return default
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise EnvError(name, f"the scheme {parts.scheme or '(none)'!r} is not one of "
                             f"{', '.join(schemes)}")
    if parts.scheme not in {"sqlite", "memory"} and not parts.hostname:
        raise EnvError(name, "names no host")
    return value


def origins(name: str) -> list[str]:
    """CSRF_TRUSTED_ORIGINS: scheme and host, as Django compares them."""
    found = items(name, "")
    for origin in found:
        parts = urlsplit(origin)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise EnvError(name, f"{origin!r} is not an origin such as https://coupons.example.com")
    return found


def time_zone(name: str, default: str) -> str:
    value = string(name, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise EnvError(name, f"{value!r} is not a time zone such as Asia/Singapore") from exc
    return value


def choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = string(name, default)
    if value not in choices:
        raise EnvError(name, f"{value!r} is not one of {', '.join(choices)}")
    return value


def secret_key(name: str, *, production: bool) -> str:
    value = raw(name) or ""
    if not production:
        return value or "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105
    if not value:
        raise EnvError(name, "must be set when DEBUG is off (50 or more random characters)")
    # What `check --deploy` (security.W009) calls weak, refused at start-up instead.
    if len(value) < 50 or len(set(value)) < 5 or value.startswith("django-insecure-"):
        raise EnvError(name, "is too weak: use 50 or more random characters")
    return value
