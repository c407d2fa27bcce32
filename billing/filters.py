"""Filters of Coupon Usage; choices are scoped to the signed-in partner."""
import django_filters
from django import forms
from django.db.models import Q

from coupons.models import CostBearer, Coupon, CouponTemplate

DATE = forms.DateInput(attrs={"type": "date"})


def partner_templates(request):
    partner = getattr(request, "partner", None)
    if partner is None:
        return CouponTemplate.objects.none()
    return CouponTemplate.objects.filter(partner=partner).order_by("name", "id")


class CouponUsageFilter(django_filters.FilterSet):
    template = django_filters.ModelChoiceFilter(
        queryset=partner_templates, empty_label="Any template",
    )
    sub_account = django_filters.CharFilter(method="by_sub_account", label="Sub-account")
    status = django_filters.ChoiceFilter(choices=Coupon.Status.choices, empty_label="Any status")
    cost_bearer = django_filters.ChoiceFilter(
        choices=CostBearer.choices, empty_label="Any cost bearer",
    )
    released_from = django_filters.DateFilter(
        field_name="released_at", lookup_expr="date__gte", label="Released from", widget=DATE,
    )
    released_to = django_filters.DateFilter(
        field_name="released_at", lookup_expr="date__lte", label="Released to", widget=DATE,
    )
    valid_until_from = django_filters.DateFilter(
        field_name="valid_until", lookup_expr="gte", label="Valid until from", widget=DATE,
    )
    valid_until_to = django_filters.DateFilter(
        field_name="valid_until", lookup_expr="lte", label="Valid until to", widget=DATE,
    )

    class Meta:
        model = Coupon
        fields = ["template", "sub_account", "status", "cost_bearer"]

    def by_sub_account(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(sub_account__account_id__istartswith=value) | Q(sub_account__name__icontains=value),
        )
