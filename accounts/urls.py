"""Home, sign-in and the admin's tenant-checked routes. No namespace: their names ("home",
"login", "admin_login", …) are the project's."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.i18n import JavaScriptCatalog

from accounts.admin import scoped_view_on_site
from accounts.views import (
    RateLimitedAdminLoginView,
    RateLimitedLoginView,
    home,
    set_language,
)

urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The language switch of every page's header (Django's i18n URL and name, with the
    # user's choice kept on their user) and the script strings' catalog.
    path("i18n/setlang/", set_language, name="set_language"),
    # Only the project's catalog (LOCALE_PATHS, locale/<lang>/djangojs.po): the admin's
    # scripts load their own.
    path("i18n/js/", JavaScriptCatalog.as_view(packages=["accounts"]),
         name="javascript-catalog"),
    # Before the admin's own "View on site" redirect, which checks no tenant (the project's
    # URLconf includes these before admin/).
    path("admin/r/<path:content_type_id>/<path:object_id>/",
         admin.site.admin_view(scoped_view_on_site), name="admin_view_on_site"),
    path("admin/login/", RateLimitedAdminLoginView.as_view(), name="admin_login"),
]
