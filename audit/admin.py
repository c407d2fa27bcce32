"""The audit log in the admin: read only; a BD sees their partners' rows."""
from django.contrib import admin

from accounts.admin import BDScopedAdminMixin, ReadOnlyAdminMixin
from audit.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(BDScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "actor", "partner", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_id", "action", "reason"]
    list_select_related = ["actor", "partner"]
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or getattr(request.user, "is_bd", False)

    def has_module_permission(self, request):
        return request.user.is_superuser or getattr(request.user, "is_bd", False)
