"""Coupon templates: list, get, create (the console form's rules and messages, through
the same form and service), disable."""
from typing import Literal

from django.db.models import Prefetch
from django.utils.translation import gettext
from ninja import Query, Router, Schema

from accounts.models import Product
from api.common import ERRORS, IdempotencyKey, dump, partner_of, user_of
from api.errors import ApiError
from api.idempotency import idempotent_post
from api.pagination import PageParams, page
from api.presenters import template_out
from api.schemas import Bearer, Kind, TemplateIn, TemplateOut, TemplatePage
from coupons import selectors, services
from coupons.forms import CouponTemplateForm

router = Router(tags=["Templates"])


class TemplateFilters(Schema):
    status: Literal["active", "disabled"] | None = None
    kind: Kind | None = None
    cost_bearer: Bearer | None = None


def _with_products(qs):
    return qs.prefetch_related(Prefetch("products", queryset=Product.objects.only("code")))


@router.get("/templates", response={200: TemplatePage, **ERRORS}, summary="List templates")
def template_list(request, filters: Query[TemplateFilters], params: Query[PageParams]):
    qs = selectors.coupon_template_list(partner=partner_of(request))
    anchor = qs
    for name in ("status", "kind", "cost_bearer"):
        if (value := getattr(filters, name)) is not None:
            qs = qs.filter(**{name: value})
    return page(_with_products(qs), order=("-created_at", "-id"), params=params,
                cursor_field="id", present=template_out, anchor_qs=anchor)


@router.get("/templates/{int:template_id}", response={200: TemplateOut, **ERRORS},
            summary="Get a template")
def template_get(request, template_id: int):
    return template_out(selectors.coupon_template_get(partner=partner_of(request),
                                                      pk=template_id))


def _form_data(payload: TemplateIn) -> dict:
    """The payload as the console's form would post it: the form reads amounts, numbers
    and dates with the console's own parsers and messages."""
    data = {}
    for name, value in payload.model_dump(exclude={"products", "all_products"}).items():
        if value is not None:
            data[name] = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if payload.all_products:
        data["all_products"] = "on"
    codes = list(dict.fromkeys(payload.products))
    products = dict(Product.objects.filter(code__in=codes).values_list("code", "pk"))
    if unknown := [c for c in codes if c not in products]:
        raise ApiError(422, "parameter_invalid",
                       gettext("products: no such product codes: %(codes)s.")
                       % {"codes": ", ".join(unknown[:20])},
                       param="products")
    data["products"] = [str(products[c]) for c in codes]
    if payload.kind == "discount" and "face_value" in data:
        # The API's one face_value is a discount's upper limit per use: the form's field.
        data[DISCOUNT_FORM_FIELD] = data.pop("face_value")
    return data


# The form's field for a discount's face value (its upper limit per use); the API calls it
# face_value for every kind (docs/API.md), and so do its errors.
DISCOUNT_FORM_FIELD = "upper_limit"


def _param(field: str) -> str | None:
    if field == "__all__":
        return None
    return "face_value" if field == DISCOUNT_FORM_FIELD else field


def _create(request, payload: TemplateIn) -> tuple[int, dict]:
    partner = partner_of(request)
    form = CouponTemplateForm(data=_form_data(payload), platform_allowed=True)
    if not form.is_valid():
        errors = [{"param": _param(field), "message": message}
                  for field, messages in form.errors.items() for message in messages]
        raise ApiError(422, "parameter_invalid",
                       "; ".join(f"{e['param'] or 'template'}: {e['message']}" for e in errors),
                       param=errors[0]["param"], errors=errors)
    template = services.coupon_template_create(partner=partner, acting_user=user_of(request),
                                               **form.service_kwargs())
    template = _with_products(selectors.coupon_template_list(partner=partner)).get(
        pk=template.pk)
    return 201, dump(TemplateOut, template_out(template))


@router.post("/templates", response={201: TemplateOut, **ERRORS}, summary="Create a template")
def template_create(request, payload: TemplateIn, idempotency_key: str | None = IdempotencyKey):
    return idempotent_post(request, lambda: _create(request, payload))


@router.post("/templates/{int:template_id}/disable", response={200: TemplateOut, **ERRORS},
             summary="Disable a template")
def template_disable(request, template_id: int,
                     idempotency_key: str | None = IdempotencyKey):
    def work():
        template = selectors.coupon_template_get(partner=partner_of(request), pk=template_id)
        template = services.coupon_template_disable(template=template,
                                                    acting_user=user_of(request))
        return 200, dump(TemplateOut, template_out(template))

    return idempotent_post(request, work)
