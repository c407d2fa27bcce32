"""The API's routes (under /api/v1/) and the console's API keys and webhooks pages."""
from django.urls import path, re_path

from api import views
from api.main import api

# No app namespace: ninja finds its own routes by its namespace, "api-v1", at the top.
urlpatterns = [
    path("api/v1/", api.urls),
    # Any other path under /api/ is a JSON 404, not the site's page.
    re_path(r"^api/", views.not_found, name="api_not_found"),
    path("coupons/api-keys/", views.ApiKeyListView.as_view(), name="api_keys"),
    path("coupons/api-keys/<int:pk>/revoke/", views.ApiKeyRevokeView.as_view(),
         name="api_key_revoke"),
    path("coupons/webhooks/", views.WebhookListView.as_view(), name="webhooks"),
    path("coupons/webhooks/<int:pk>/", views.WebhookDetailView.as_view(), name="webhook_detail"),
    path("coupons/webhooks/<int:pk>/disable/", views.WebhookDisableView.as_view(),
         name="webhook_disable"),
    path("coupons/webhooks/deliveries/<int:pk>/redeliver/", views.WebhookRedeliverView.as_view(),
         name="webhook_redeliver"),
]
