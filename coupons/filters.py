"""Filters of the partner console's lists."""
import django_filters
from django.db.models import Q

from coupons.models import CostBearer, CouponKind, CouponTemplate


class CouponTemplateFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Name or ID")
    kind = django_filters.ChoiceFilter(choices=CouponKind.choices, empty_label="Any kind")
    cost_bearer = django_filters.ChoiceFilter(
        choices=CostBearer.choices, empty_label="Any cost bearer",
    )
    status = django_filters.ChoiceFilter(
        choices=CouponTemplate.Status.choices, empty_label="Any status",
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
