"""Cursor pages (docs/API.md, Lists): `limit` 1–100 (default 20) and `starting_after`, the
cursor of the last row seen. The page is read by keyset on an indexed order (a row
comparison such as `(released_at, id) < (…)`), so page 5,000 costs what page 1 costs, and
rows added meanwhile never shift a page."""
from collections.abc import Callable
from typing import Any

from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import TupleGreaterThan, TupleLessThan
from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import Field

from api.errors import ApiError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageParams(Schema):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Rows a page, 1–100.")
    starting_after: str | None = Field(
        None, max_length=64, description="The `next_cursor` of the page before.")


def page(
    qs: QuerySet, *, order: tuple[str, ...], params: PageParams, cursor_field: str,
    present: Callable[[Any], dict], anchor_qs: QuerySet | None = None,
) -> dict:
    """A page of `qs` in `order` (every column in one direction, a unique one last).
    The cursor is `cursor_field` of the page's last row; the row it names is looked up in
    `anchor_qs` (the tenant's rows, without the filters) to learn where the page starts."""
    descending = order[0].startswith("-")
    columns = [name.lstrip("-") for name in order]
    qs = qs.order_by(*order)
    if params.starting_after:
        anchor_rows = (anchor_qs if anchor_qs is not None else qs).filter(
            **{cursor_field: _cursor_value(params.starting_after, cursor_field, qs)},
        ).values_list(*columns)[:1]
        anchor = next(iter(anchor_rows), None)
        if anchor is None:
            raise ApiError(422, "parameter_invalid",
                           _("starting_after is not the cursor of one of your rows."),
                           param="starting_after")
        compare = TupleLessThan if descending else TupleGreaterThan
        qs = qs.filter(compare(tuple(F(c) for c in columns), tuple(anchor)))
    rows = list(qs[: params.limit + 1])
    has_more = len(rows) > params.limit
    rows = rows[: params.limit]
    last = rows[-1] if rows and has_more else None
    return {
        "object": "list",
        "data": [present(row) for row in rows],
        "has_more": has_more,
        "next_cursor": str(_attr(last, cursor_field)) if last is not None else None,
    }


def _attr(row, path: str):
    for part in path.split("__"):
        row = getattr(row, part)
    return row


def _cursor_value(text: str, field: str, qs: QuerySet):
    """A cursor of an integer column must be digits (a bigint): anything else names no row."""
    model_field = qs.model._meta.get_field(field.split("__")[0])
    if model_field.get_internal_type() in ("AutoField", "BigAutoField", "IntegerField",
                                          "BigIntegerField"):
        if not text.isascii() or not text.isdigit() or int(text) > 9_223_372_036_854_775_807:
            raise ApiError(422, "parameter_invalid",
                           _("starting_after is not the cursor of one of your rows."),
                           param="starting_after")
        return int(text)
    return text
