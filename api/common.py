"""What every router shares: the calling key's partner and user, the error responses each
operation documents, and the JSON body of a POST's answer."""
from ninja import Header
from pydantic import Field

from api.schemas import ErrorOut

# The error answers every operation may give, in the one shape (api/errors.py).
ERRORS = {frozenset({401, 403, 404, 409, 422, 429}): ErrorOut}

IdempotencyKey = Header(None, alias="Idempotency-Key", max_length=255,
                        description="Makes a retried POST answer what the first did "
                        "(docs/API.md, Idempotency).")


def partner_of(request):
    return request.auth.partner


def user_of(request):
    """The key's own user: the services check its membership and audit it as the actor."""
    return request.auth.user


def dump(schema, data: dict) -> dict:
    """`data` as `schema` writes it in JSON: what a POST answers and what a replay repeats."""
    return schema.model_validate(data).model_dump(mode="json")


__all__ = ["ERRORS", "Field", "IdempotencyKey", "dump", "partner_of", "user_of"]
