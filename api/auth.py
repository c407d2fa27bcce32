"""Who is calling: the bearer key of every request, checked before any operation runs.
The key's partner is the tenant, whatever the request says; each bad key is its own 401
or 403 in the API's error shape, and nothing is written for it."""
from django.utils.translation import gettext, gettext_lazy
from ninja.security.base import AuthBase

from accounts.permissions import COUPON_FUNCTION_OFF
from api.errors import ApiError
from api.keys import api_key_for_token, api_key_touch
from api.models import ApiKey
from api.ratelimit import bucket_take

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

_REFUSALS = {
    "malformed": ("api_key_malformed",
                  gettext_lazy("This is not an API key: keys look like cpk_<12 letters or "
                               "digits>_<43 characters>, sent as 'Authorization: Bearer "
                               "<key>'.")),
    "unknown": ("api_key_invalid", gettext_lazy("No such API key.")),
    "revoked": ("api_key_revoked", gettext_lazy("This API key was revoked.")),
    "expired": ("api_key_expired", gettext_lazy("This API key has expired.")),
}


class BearerKey(AuthBase):
    """`Authorization: Bearer <key>`; request.auth is the ApiKey, request.api_key too."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    def __call__(self, request) -> ApiKey:
        header = request.headers.get("Authorization", "")
        if not header.strip():
            raise ApiError(401, "api_key_missing",
                           gettext("Send your API key as 'Authorization: Bearer <key>'."))
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "api_key_malformed", _REFUSALS["malformed"][1])
        key, problem = api_key_for_token(token.strip())
        if problem:
            code, message = _REFUSALS[problem]
            raise ApiError(401, code, message)
        bucket = bucket_take(key.pk)
        request.api_ratelimit = bucket
        if bucket is not None and not bucket.allowed:
            raise ApiError(429, "rate_limited",
                           gettext("Too many requests for this key; retry after %(n)s s.")
                           % {"n": max(bucket.retry_after, 1)},
                           headers={"Retry-After": str(max(bucket.retry_after, 1))})
        if not key.partner.coupon_enabled:
            raise ApiError(403, "coupon_function_off", gettext(COUPON_FUNCTION_OFF) + ".")
        if request.method not in SAFE_METHODS and not key.can_write:
            raise ApiError(403, "api_key_read_only",
                           gettext("This key is read-only; use an operator key to change "
                                   "anything."))
        _refuse_nul(request)
        api_key_touch(key)
        request.api_key = key
        return key


def _refuse_nul(request) -> None:
    """No text the platform keeps can hold a NUL character (PostgreSQL refuses it in any
    string), so a request with one in its path, query or JSON body is refused here, once,
    rather than failing in whichever query first meets it."""
    if ("\x00" in request.path or any("\x00" in v for values in request.GET.lists()
                                       for v in [values[0], *values[1]])
            or b"\x00" in request.body or b"\\u0000" in request.body):
        raise ApiError(422, "parameter_invalid",
                       gettext("Text can not contain the NUL character."))
