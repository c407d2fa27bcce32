"""Connects approvals to the coupons app's submit signal."""
from django.dispatch import receiver

from approvals.numbers import request_number_assign
from approvals.services import approval_route
from coupons.services import issuance_request_submitted


@receiver(issuance_request_submitted, dispatch_uid="approvals.route")
def route_submitted_request(sender, request, acting_user, **kwargs):
    request_number_assign(request=request)
    approval_route(request=request, acting_user=acting_user)
