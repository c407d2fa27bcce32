"""Money columns of the admin, shown as on every page (`{% load money %}`'s `amount`):
"1,234.50 USD" on one line, the currency beside the figure rather than in a column of its
own."""
from django.contrib import admin

from couponplatform.templatetags.money import amount_html


def _attr(obj, path: str):
    for name in path.split("__"):
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


def money_display(field: str, *, description: str, currency: str = "currency",
                  ordering: bool = True):
    """A ModelAdmin (or inline) method showing `field` with the currency at `currency`
    (a lookup path such as "coupon__currency"); ordered by the field unless told not."""

    @admin.display(description=description, ordering=field if ordering else None)
    def show(self, obj):
        return amount_html(_attr(obj, field), _attr(obj, currency) or "")

    show.__name__ = f"{field}_money"
    return show
