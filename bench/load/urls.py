"""The product's URLconf plus the bare pages of the page benchmarks (bench/load/bare.py)."""
from django.urls import path

from bench.load.bare import PartnerBarePage, SubAccountBarePage
from couponplatform.urls import urlpatterns as product

urlpatterns = [
    path("bench/bare/partner/", PartnerBarePage.as_view(), name="bench_bare_partner"),
    path("bench/bare/sub-account/", SubAccountBarePage.as_view(), name="bench_bare_sub"),
    *product,
]
