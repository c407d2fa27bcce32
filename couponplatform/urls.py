"""The project's URLconf: each app's routes by include, so the project imports no view."""
from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Coupon Management — BD admin"
admin.site.site_title = "Coupon Management admin"

urlpatterns = [
    # Home, sign-in, and the admin's own login and "View on site", before admin/.
    path("", include("accounts.urls")),
    path("coupons/usage/", include("billing.usage_urls")),
    path("coupons/", include("coupons.urls")),
    path("approvals/", include("approvals.urls")),
    path("billing/", include("billing.urls")),
    path("admin/", admin.site.urls),
]
