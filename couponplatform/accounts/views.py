"""Home: sends each user to the console of their role."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from couponplatform.accounts.selectors import membership_for, subaccount_membership_for


@login_required
def home(request):
    if membership_for(request.user) is not None:
        return redirect("coupons:template_list")
    if subaccount_membership_for(request.user) is not None:
        return redirect("billing:coupons")
    if request.user.is_staff:
        return redirect("admin:index")
    return render(request, "home_no_role.html")
