"""Read-only admin views of billing; BDs see deductions of their partners only."""
from django.contrib import admin

from billing.models import DailyBill, Deduction, MonthlyBill, UsageImport


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Deduction)
class DeductionAdmin(ReadOnlyAdmin):
    list_display = ("id", "bill_date", "coupon", "sub_account", "partner", "amount", "created_at")
    list_filter = ("bill_date",)
    search_fields = ("coupon__code", "sub_account__account_id")
    list_select_related = ("coupon", "sub_account", "partner")
    raw_id_fields = ("coupon", "line", "sub_account", "partner")
    ordering = ("-bill_date", "-id")
    show_full_result_count = False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(partner__bd=request.user)


@admin.register(DailyBill)
class DailyBillAdmin(ReadOnlyAdmin):
    list_display = ("id", "date", "sub_account", "currency", "original_amount",
                    "deduction_amount", "payable_amount", "posted_at")
    list_filter = ("date",)
    search_fields = ("sub_account__account_id",)
    list_select_related = ("sub_account",)
    raw_id_fields = ("sub_account",)
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(MonthlyBill)
class MonthlyBillAdmin(DailyBillAdmin):
    list_display = ("id", "month", "sub_account", "currency", "original_amount",
                    "deduction_amount", "payable_amount")
    list_filter = ("month",)


@admin.register(UsageImport)
class UsageImportAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "source", "file_name", "record_count", "imported_by")

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser
