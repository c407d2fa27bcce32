"""Reads of the API's own rows, scoped to a partner."""
from django.db.models import QuerySet

from api.models import ApiKey, WebhookDelivery, WebhookEndpoint


def api_key_list(*, partner) -> QuerySet[ApiKey]:
    return (ApiKey.objects.filter(partner=partner)
            .select_related("created_by", "revoked_by").order_by("-created_at", "-id"))


def webhook_endpoint_list(*, partner) -> QuerySet[WebhookEndpoint]:
    return (WebhookEndpoint.objects.filter(partner=partner)
            .select_related("created_by", "disabled_by").order_by("-created_at", "-id"))


def webhook_delivery_log(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """The endpoint's deliveries, newest first (its partner is the endpoint's, which the
    caller found through webhook_endpoint_list)."""
    return (WebhookDelivery.objects.filter(endpoint=endpoint)
            .select_related("event").order_by("-id"))


def webhook_delivery_for(*, partner, pk: int) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(pk=pk, endpoint__partner=partner).select_related(
        "endpoint__partner", "event")
