"""The bare-page baseline (docs/BENCHMARKS.md, "Under load"): a page with the same sign-in,
middleware and base template as the console's pages and no queries of its own. Served only
by the benchmarks' URLconf (bench/load/urls.py), never by the product's."""
from django.http import HttpResponse
from django.template import engines
from django.views import View

from accounts.mixins import PartnerMixin, SubAccountMixin

BARE = engines["django"].from_string(
    '{% extends "base.html" %}{% block title %}Bare page{% endblock %}'
    "{% block content %}<p>Bare page.</p>{% endblock %}")


class _Bare(View):
    def get(self, request):
        return HttpResponse(BARE.render({}, request))


class PartnerBarePage(PartnerMixin, _Bare):
    """What every partner page pays before its own queries: session, user, membership,
    partner, the console's navigation and messages."""

    page_action = "templates_view"  # every partner role's


class SubAccountBarePage(SubAccountMixin, _Bare):
    """The same for the sub-account's pages."""
