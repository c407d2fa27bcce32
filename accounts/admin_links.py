"""The admin names users instead of linking to their admin page when the signed-in user can
not open that page (a BD: the users' admin is the platform operator's). Django links every
read-only foreign key to its change page whatever the viewer's permissions, so a BD's
request, template, coupon and audit pages linked to pages that answered 403."""
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist

_SHOWN: dict[tuple, object] = {}


def _user_name(model, name: str):
    """A read-only "field" (a callable, as the admin accepts in readonly_fields) showing
    the user of `model.name` by full name, or username; one object per field, so every
    list of fields the admin builds for a page holds the same one."""
    key = (model, name)
    if key not in _SHOWN:
        verbose = model._meta.get_field(name).verbose_name

        def shown(obj):
            user = getattr(obj, name, None)
            return (user.get_full_name() or user.username) if user else None

        shown.short_description = verbose
        shown.__name__ = name
        _SHOWN[key] = shown
    return _SHOWN[key]


class UnlinkedUsersMixin:
    """For viewers who may not open users' admin pages, each read-only foreign key to a
    user is shown by name, not as a link."""

    def _links_users(self, request) -> bool:
        user_admin = self.admin_site._registry.get(self._user_model())
        return user_admin is not None and user_admin.has_view_permission(request)

    @staticmethod
    def _user_model():
        from django.apps import apps

        return apps.get_model(settings.AUTH_USER_MODEL)

    def _is_user_key(self, name) -> bool:
        if not isinstance(name, str):
            return False
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return False
        return field.many_to_one and field.related_model is self._user_model()

    def __init_subclass__(cls, **kwargs):
        # An admin that defines its own get_readonly_fields (and may not call super) is
        # wrapped too, so its fieldsets and its read-only fields always name the same ones.
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("get_readonly_fields")
        if own is not None and not getattr(own, "unlinks_users", False):
            def get_readonly_fields(self, request, obj=None, _own=own):
                return self._unlinked(request, _own(self, request, obj))

            get_readonly_fields.unlinks_users = True
            cls.get_readonly_fields = get_readonly_fields

    def _unlinked(self, request, fields):
        if self._links_users(request):
            return fields
        return [_user_name(self.model, f) if self._is_user_key(f) else f for f in fields]

    def get_readonly_fields(self, request, obj=None):
        return self._unlinked(request, super().get_readonly_fields(request, obj))

    get_readonly_fields.unlinks_users = True

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self._links_users(request):
            return fieldsets
        readonly = {f.__name__ for f in self.get_readonly_fields(request, obj) if callable(f)}
        everything = not self.has_change_permission(request, obj)

        def swap(name):
            if isinstance(name, list | tuple):
                return type(name)(swap(n) for n in name)
            if self._is_user_key(name) and (everything or name in readonly):
                return _user_name(self.model, name)
            return name

        return [(title, {**options, "fields": [swap(f) for f in options["fields"]]})
                for title, options in fieldsets]

    def get_form(self, request, obj=None, **kwargs):
        # The shown names are not form fields (as a callable in readonly_fields is not).
        if kwargs.get("fields"):
            kwargs["fields"] = [f for f in kwargs["fields"] if not callable(f)]
        return super().get_form(request, obj, **kwargs)
