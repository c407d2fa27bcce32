from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("coupons/", views.CouponListView.as_view(), name="coupons"),
]
