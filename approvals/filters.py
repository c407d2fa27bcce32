"""Filters of the Approval Status page."""
import django_filters
from django.utils.translation import gettext_lazy as _

from couponplatform.dates import PlatformDateFilter
from coupons.models import IssuanceRequest


class IssuanceRequestFilter(django_filters.FilterSet):
    template = django_filters.NumberFilter(field_name="template_id", label=_("Template ID"))
    template_name = django_filters.CharFilter(
        field_name="template__name", lookup_expr="icontains", label=_("Template name"),
    )
    status = django_filters.ChoiceFilter(
        choices=IssuanceRequest.Status.choices, empty_label=_("Any status"), label=_("Status"),
    )
    submitted_from = PlatformDateFilter(
        field_name="submitted_at", lookup_expr="date__gte", label=_("Submitted from"),
    )
    submitted_to = PlatformDateFilter(
        field_name="submitted_at", lookup_expr="date__lte", label=_("Submitted to"),
    )

    class Meta:
        model = IssuanceRequest
        fields = ["template", "template_name", "status", "submitted_from", "submitted_to"]
