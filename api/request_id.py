"""The id of the request an error names: the one a request-id middleware set, if any,
otherwise one made here once per request."""
import uuid

# Where a request-id middleware leaves its id (the first found wins).
_ATTRIBUTES = ("request_id", "id")


def request_id(request) -> str:
    for name in _ATTRIBUTES:
        value = getattr(request, name, None)
        if isinstance(value, str) and value:
            return value
    value = f"req_{uuid.uuid4().hex}"
    request.request_id = value
    return value
