"""Filters of Coupon Usage; choices are scoped to the signed-in partner."""
from datetime import UTC, date, datetime, time, timedelta

import django_filters
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from couponplatform.dates import PlatformDateFilter
from coupons.models import CostBearer, Coupon, CouponTemplate


def local_midnight(day: date, *, days_after: int = 0) -> datetime | None:
    """The start of `day` (plus `days_after` days) in the platform's time zone; None where
    that falls outside what a datetime holds (year 1 or 9999): no bound there."""
    try:
        start = datetime.combine(day + timedelta(days=days_after), time.min)
        aware = timezone.make_aware(start)
        aware.astimezone(UTC)  # the database gets UTC
    except OverflowError:
        return None
    return aware


def partner_templates(request):
    partner = getattr(request, "partner", None)
    if partner is None:
        return CouponTemplate.objects.none()
    return CouponTemplate.objects.filter(partner=partner).order_by("name", "id")


class CouponUsageFilter(django_filters.FilterSet):
    template = django_filters.ModelChoiceFilter(
        queryset=partner_templates, empty_label=_("Any template"), label=_("Template"),
    )
    sub_account = django_filters.CharFilter(method="by_sub_account", label=_("Sub-account"))
    status = django_filters.ChoiceFilter(choices=Coupon.Status.choices,
                                         empty_label=_("Any status"), label=_("Status"))
    cost_bearer = django_filters.ChoiceFilter(
        choices=CostBearer.choices, empty_label=_("Any cost bearer"), label=_("Cost bearer"),
    )
    # Release days are the platform's; filtered as a range of released_at between local
    # midnights, which the coupons' (partner, released_at) index serves, rather than as a
    # date cast of the column, which no index does.
    released_from = PlatformDateFilter(method="released_since", label=_("Released from"))
    released_to = PlatformDateFilter(method="released_until", label=_("Released to"))
    valid_until_from = PlatformDateFilter(
        field_name="valid_until", lookup_expr="gte", label=_("Valid until from"),
    )
    valid_until_to = PlatformDateFilter(
        field_name="valid_until", lookup_expr="lte", label=_("Valid until to"),
    )

    class Meta:
        model = Coupon
        fields = ["template", "sub_account", "status", "cost_bearer"]

    def released_since(self, queryset, name, value):
        start = local_midnight(value)
        return queryset if start is None else queryset.filter(released_at__gte=start)

    def released_until(self, queryset, name, value):
        end = local_midnight(value, days_after=1)
        return queryset if end is None else queryset.filter(released_at__lt=end)

    def by_sub_account(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(sub_account__account_id__istartswith=value) | Q(sub_account__name__icontains=value),
        )
