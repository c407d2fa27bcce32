"""The project's URLconf: each app's routes by include, so the project imports no view."""
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy

admin.site.site_header = gettext_lazy("Coupon Management — BD admin")
admin.site.site_title = gettext_lazy("Coupon Management admin")
# The admin's lists are wide (the BD's queue): its navigation sidebar would take 300 px of
# a 1,280 px screen; the index and the breadcrumbs lead everywhere it does.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    # Home, sign-in, and the admin's own login and "View on site", before admin/.
    path("", include("accounts.urls")),
    path("", include("api.urls")),  # /api/v1/ and the console's API keys page
    path("coupons/usage/", include("billing.usage_urls")),
    path("coupons/", include("coupons.urls")),
    path("approvals/", include("approvals.urls")),
    path("billing/", include("billing.urls")),
    path("admin/", admin.site.urls),
]
