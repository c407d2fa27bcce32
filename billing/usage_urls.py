"""The partner's Coupon Usage, under coupons/usage/: billing serves it, since it reads
deductions and coupons imports no billing. No namespace, as the console's links name it."""
from django.urls import path

from billing import views

urlpatterns = [
    path("", views.CouponUsageView.as_view(), name="coupon_usage"),
    path("<int:pk>/", views.CouponDetailView.as_view(), name="coupon_detail"),
    path("<int:pk>/void/", views.CouponVoidView.as_view(), name="coupon_void"),
]
