"""Home: sends each user to the console of their role."""
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views import i18n
from django.views.decorators.http import require_POST

from accounts.access import user_language_set
from accounts.selectors import membership_for, subaccount_membership_for
from couponplatform import ratelimit
from couponplatform.languages import chosen_language


@login_required
def home(request):
    if membership_for(request.user) is not None:
        return redirect("coupons:template_list")
    if subaccount_membership_for(request.user) is not None:
        return redirect("billing:coupons")
    if request.user.is_staff:
        return redirect("admin:index")
    return render(request, "home_no_role.html")


@require_POST
def set_language(request):
    """The header's language switch: Django's set_language (the cookie, back to `next`),
    and for a signed-in user their choice kept on their user, for every browser."""
    response = i18n.set_language(request)
    language = request.POST.get("language", "")
    codes = {code for code, _name in settings.LANGUAGES}
    if request.user.is_authenticated and language in codes:
        user_language_set(user=request.user, language=language)
    return response


def language_cookie_set(response, user):
    """After sign-in: the user's own choice, when they made one, becomes the cookie too, so
    the pages after they sign out stay in it."""
    language = chosen_language(user)
    if language:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME, language, max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH, domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE, httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE)
    return response


class RateLimitedLoginView(LoginView):
    """Sign-in with the limits of couponplatform.ratelimit: 5 failures lock a username for
    the client that sent them, 50 for everyone, and 30 lock the client; each says until
    when. The username is counted as authentication reads it (NFKC, case-folded)."""

    def post(self, request, *args, **kwargs):
        refusal = ratelimit.login_refusal(request, request.POST.get("username"))
        if refusal:
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, refusal)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        refusal = ratelimit.login_failed(self.request, self.request.POST.get("username"))
        if refusal:
            form.add_error(None, refusal)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_invalid(form)

    def form_valid(self, form):
        ratelimit.login_succeeded(self.request, form.get_user().get_username())
        return language_cookie_set(super().form_valid(form), form.get_user())


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
        context.update(admin.site.each_context(self.request), title=gettext("Log in"),
                       app_path=self.request.get_full_path())
        context.setdefault("next", self.request.GET.get("next") or "/admin/")
        return context

    def get_default_redirect_url(self):
        return "/admin/"
