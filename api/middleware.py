"""Under /api/: the request id and the key's rate-limit headers on every answer, and
an error that left Django as a page (no route, a method the route does not take) turned
into the API's JSON error shape, so /api/ never answers HTML."""
import json
from http import HTTPStatus

from django.http import JsonResponse
from django.utils.translation import gettext as _

from api.errors import error_body
from api.request_id import request_id

PREFIX = "/api/"


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _code(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


class ApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(PREFIX):
            return self.get_response(request)
        rid = request_id(request)
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response):
            status = response.status_code
            message = {404: _("No such route in the API; see /api/v1/docs."),
                       405: _("This route does not take %(method)s.")
                       % {"method": request.method}}.get(
                status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_
                else "Error")
            replacement = JsonResponse(
                error_body(request, status=status, code=_code(status), message=message),
                status=status)
            if response.has_header("Allow"):
                replacement["Allow"] = response["Allow"]
            response = replacement
        response.setdefault("X-Request-ID", rid)
        bucket = getattr(request, "api_ratelimit", None)
        if bucket is not None:
            for name, value in bucket.headers().items():
                response[name] = value
        return response

    def process_exception(self, request, exception):
        """A failure outside the API's handlers (its own middleware, a URL resolver): the
        error shape with 500, never Django's page."""
        if not request.path.startswith(PREFIX):
            return None
        return JsonResponse(error_body(
            request, status=500, code="internal_error", type="api_error",
            message=_("Something went wrong on our side. Quote the request_id when you ask "
                      "us."),
        ), status=500)


def json_body(response) -> dict:
    return json.loads(response.content or b"{}")
