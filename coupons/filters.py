"""Filters of the partner console's lists."""
import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from coupons.models import CostBearer, CouponKind, CouponTemplate


class CouponTemplateFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label=_("Name or ID"))
    kind = django_filters.ChoiceFilter(choices=CouponKind.choices, empty_label=_("Any kind"),
                                       label=_("Kind"))
    cost_bearer = django_filters.ChoiceFilter(
        choices=CostBearer.choices, empty_label=_("Any cost bearer"), label=_("Cost bearer"),
    )
    status = django_filters.ChoiceFilter(
        choices=CouponTemplate.Status.choices, empty_label=_("Any status"), label=_("Status"),
    )

    class Meta:
        model = CouponTemplate
        fields = ["q", "kind", "cost_bearer", "status"]

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        condition = Q(name__icontains=value)
        if value.isdecimal():  # not isdigit: int("²") raises (a 500)
            condition |= Q(pk=int(value))
        return queryset.filter(condition)
