"""Home, sign-in and the admin's tenant-checked routes. No namespace: their names ("home",
"login", "admin_login", …) are the project's."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.admin import scoped_view_on_site
from accounts.views import RateLimitedAdminLoginView, RateLimitedLoginView, home

urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Before the admin's own "View on site" redirect, which checks no tenant (the project's
    # URLconf includes these before admin/).
    path("admin/r/<path:content_type_id>/<path:object_id>/",
         admin.site.admin_view(scoped_view_on_site), name="admin_view_on_site"),
    path("admin/login/", RateLimitedAdminLoginView.as_view(), name="admin_login"),
]
