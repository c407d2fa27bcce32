"""The API's one error shape, `{"error": {"type", "code", "message", "param",
"request_id"}}`, and the handlers that turn every exception under /api/ into it
(docs/API.md, Errors)."""
import logging
from http import HTTPStatus

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from ninja.errors import AuthenticationError, HttpError, ValidationError

from api.request_id import request_id
from couponplatform.exceptions import (
    ApplicationError,
    InvalidTransitionError,
    PermissionDeniedError,
)

log = logging.getLogger(__name__)

# The error type of each status (as Stripe's `type`).
TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "invalid_request_error", 405: "invalid_request_error", 409: "invalid_request_error",
    413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
}


class ApiError(Exception):
    """An answer other than success, with its code; raised by the API's own layers."""

    def __init__(self, status: int, code: str, message: str, *, param: str | None = None,
                 type: str | None = None, errors: list[dict] | None = None,
                 headers: dict | None = None):
        message = str(message)  # a lazy message, read in the request's language
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param
        self.type = type or TYPES.get(status, "api_error")
        self.errors = errors
        self.headers = headers or {}


def error_body(request, *, status: int, code: str, message: str, param: str | None = None,
               type: str | None = None, errors: list[dict] | None = None) -> dict:
    error = {
        "type": type or TYPES.get(status, "api_error"), "code": code, "message": message,
        "param": param, "request_id": request_id(request),
    }
    if errors:
        error["errors"] = errors
    return {"error": error}


def error_response(request, exc: ApiError) -> JsonResponse:
    response = JsonResponse(
        error_body(request, status=exc.status, code=exc.code, message=exc.message,
                   param=exc.param, type=exc.type, errors=exc.errors),
        status=exc.status,
    )
    for name, value in exc.headers.items():
        response[name] = value
    return response


def _param(loc) -> str | None:
    """A pydantic error's location as the parameter's name: ("body", "payload",
    "face_value") → "face_value"; ("query", "limit") → "limit"; list items by index."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "payload")]
    return ".".join(parts) or None


def from_application_error(exc: ApplicationError) -> ApiError:
    """A service's refusal, in its own words: 403 for who may act, 409 for a status that
    can not move, 422 for every other broken rule (a template's terms field by field)."""
    if isinstance(exc, PermissionDeniedError):
        return ApiError(403, "permission_denied", exc.message)
    if isinstance(exc, InvalidTransitionError):
        return ApiError(409, "invalid_state", exc.message)
    field_errors = exc.extra.get("errors") if isinstance(exc.extra, dict) else None
    if field_errors:
        errors = [{"param": k, "message": str(v)} for k, v in field_errors.items()]
        first = errors[0]
        return ApiError(422, "parameter_invalid", "; ".join(
            f"{e['param']}: {e['message']}" for e in errors), param=first["param"],
            errors=errors)
    return ApiError(422, "rule_refused", exc.message)


def install(api) -> None:
    """Every exception ninja can meet, in the one shape."""

    @api.exception_handler(ApiError)
    def _api_error(request, exc):
        return error_response(request, exc)

    @api.exception_handler(ApplicationError)
    def _application_error(request, exc):
        return error_response(request, from_application_error(exc))

    @api.exception_handler(ValidationError)
    def _validation_error(request, exc):
        errors = [{"param": _param(e.get("loc", ())), "message": e.get("msg", _("Invalid."))}
                  for e in exc.errors]
        message = "; ".join(f"{e['param'] or 'body'}: {e['message']}" for e in errors)
        return error_response(request, ApiError(
            422, "parameter_invalid", message or _("The request is not valid."),
            param=errors[0]["param"] if errors else None, errors=errors))

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(request, exc):
        return error_response(request, ApiError(
            401, "api_key_missing", _("Send your API key as 'Authorization: Bearer <key>'.")))

    @api.exception_handler(HttpError)
    def _http_error(request, exc):
        status = exc.status_code
        return error_response(request, ApiError(status, HTTPStatus(status).phrase.lower()
                                                .replace(" ", "_"), str(exc)))

    @api.exception_handler(Http404)
    def _not_found(request, exc):
        return error_response(request, ApiError(
            404, "resource_missing", _("No such object (or it is not your partner's).")))

    @api.exception_handler(PermissionDenied)
    def _denied(request, exc):
        return error_response(request, ApiError(403, "permission_denied", str(exc) or
                                                _("You may not do this.")))

    @api.exception_handler(Exception)
    def _unexpected(request, exc):
        log.exception("API error on %s %s (request %s)", request.method, request.path,
                      request_id(request))
        return error_response(request, ApiError(
            500, "internal_error", _("Something went wrong on our side; nothing was changed "
                                     "by this request unless its result says so. Quote the "
                                     "request_id when you ask us."), type="api_error"))
