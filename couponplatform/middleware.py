"""Security headers Django's SecurityMiddleware does not set."""
from django.utils.cache import patch_cache_control

# Scripts only from our own static files (no inline script, so injected markup can not run
# code); inline style attributes stay allowed for the chart bars' heights.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'self'; object-src 'none'"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CSP)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            # A signed-in page or export is one tenant's: no shared cache may keep it, and
            # no browser may keep it on disk for the next person at the machine.
            patch_cache_control(response, private=True, no_store=True)
        return response
