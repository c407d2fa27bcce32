"""A signed-in user reads the product in the language they chose (User.language).

Django's LocaleMiddleware, before authentication, picks the language cookie or else the
browser's Accept-Language; this one, after it, puts the user's own choice above both, so
their choice follows them to another browser. A user who never chose keeps LocaleMiddleware's.
"""
from django.utils import translation

from couponplatform.languages import chosen_language


class UserLanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            language = chosen_language(user)
            if language and language != getattr(request, "LANGUAGE_CODE", None):
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
