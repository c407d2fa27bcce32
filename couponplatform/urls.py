from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.admin import scoped_view_on_site
from accounts.views import RateLimitedAdminLoginView, RateLimitedLoginView, home
from billing.views import CouponUsageView, CouponVoidView

admin.site.site_header = "Coupon Management — BD admin"
admin.site.site_title = "Coupon Management admin"

urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Coupon Usage reads deductions, so billing serves it (coupons does not import billing).
    path("coupons/usage/", CouponUsageView.as_view(), name="coupon_usage"),
    path("coupons/usage/<int:pk>/void/", CouponVoidView.as_view(), name="coupon_void"),
    path("coupons/", include("coupons.urls")),
    path("approvals/", include("approvals.urls")),
    path("billing/", include("billing.urls")),
    # Before the admin's own "View on site" redirect, which checks no tenant.
    path("admin/r/<path:content_type_id>/<path:object_id>/",
         admin.site.admin_view(scoped_view_on_site), name="admin_view_on_site"),
    path("admin/login/", RateLimitedAdminLoginView.as_view(), name="admin_login"),
    path("admin/", admin.site.urls),
]
