"""Reads of the API's own rows, scoped to a partner."""
from django.db.models import QuerySet

from api.models import ApiKey


def api_key_list(*, partner) -> QuerySet[ApiKey]:
    return (ApiKey.objects.filter(partner=partner)
            .select_related("created_by", "revoked_by").order_by("-created_at", "-id"))
