"""Home: sends each user to the console of their role."""
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.shortcuts import redirect, render

from accounts.selectors import membership_for, subaccount_membership_for
from couponplatform import ratelimit


@login_required
def home(request):
    if membership_for(request.user) is not None:
        return redirect("coupons:template_list")
    if subaccount_membership_for(request.user) is not None:
        return redirect("billing:coupons")
    if request.user.is_staff:
        return redirect("admin:index")
    return render(request, "home_no_role.html")


class RateLimitedLoginView(LoginView):
    """Sign-in that locks a username for 15 minutes after 5 failures, and says until when."""

    def post(self, request, *args, **kwargs):
        username = (request.POST.get("username") or "").strip().lower()[:150]
        wait = ratelimit.retry_after(ratelimit.LOGIN_FAILURES, username)
        if wait:
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, "Too many failed sign-ins for this user. "
                           + ratelimit.wait_text(wait))
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        username = (self.request.POST.get("username") or "").strip().lower()[:150]
        wait = ratelimit.hit(ratelimit.LOGIN_FAILURES, username)
        if wait:
            form.add_error(None, "Too many failed sign-ins for this user. "
                           + ratelimit.wait_text(wait))
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_invalid(form)

    def form_valid(self, form):
        ratelimit.reset(ratelimit.LOGIN_FAILURES, form.get_user().username.lower())
        return super().form_valid(form)


class RateLimitedAdminLoginView(RateLimitedLoginView):
    """The admin's sign-in with the same lockout: BDs sign in here, so it must not be the
    door where guessing is unlimited."""

    template_name = "admin/login.html"

    def get_form_class(self):
        from django.contrib.admin.forms import AdminAuthenticationForm

        return AdminAuthenticationForm

    def get_context_data(self, **kwargs):
        from django.contrib import admin

        context = super().get_context_data(**kwargs)
        context.update(admin.site.each_context(self.request), title="Log in",
                       app_path=self.request.get_full_path())
        context.setdefault("next", self.request.GET.get("next") or "/admin/")
        return context

    def get_default_redirect_url(self):
        return "/admin/"
