"""Read-only admin views of billing; BDs see deductions of their partners only."""
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.admin import BDScopedAdminMixin, ReadOnlyAdminMixin
from accounts.permissions import user_may
from billing.forms import UsageUploadForm
from billing.models import DailyBill, Deduction, MonthlyBill, UsageImport
from billing.usage_import import UsageImportError, usage_import
from couponplatform.admin_money import money_display
from couponplatform.exceptions import ApplicationError


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Billing's rows are written by its services only."""


@admin.register(Deduction)
class DeductionAdmin(BDScopedAdminMixin, ReadOnlyAdmin):
    list_display = ("id", "bill_date", "coupon", "sub_account", "partner", "amount_money",
                    "created_at")
    list_filter = ("bill_date",)
    search_fields = ("coupon__code", "sub_account__account_id")
    list_select_related = ("coupon", "sub_account", "partner")
    raw_id_fields = ("coupon", "line", "sub_account", "partner")
    ordering = ("-bill_date", "-id")
    show_full_result_count = False

    amount_money = money_display("amount", description=gettext_lazy("Amount"),
                                 currency="coupon__currency")


@admin.register(DailyBill)
class DailyBillAdmin(ReadOnlyAdmin):
    list_display = ("id", "date", "sub_account", "original_money", "deduction_money",
                    "payable_money", "posted_at")
    list_filter = ("date",)
    search_fields = ("sub_account__account_id",)
    list_select_related = ("sub_account",)
    raw_id_fields = ("sub_account",)
    show_full_result_count = False

    original_money = money_display("original_amount", description=gettext_lazy("Original"))
    deduction_money = money_display("deduction_amount",
                                    description=gettext_lazy("Coupon deduction"))
    payable_money = money_display("payable_amount", description=gettext_lazy("Payable"))

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(MonthlyBill)
class MonthlyBillAdmin(DailyBillAdmin):
    list_display = ("id", "month", "sub_account", "original_money", "deduction_money",
                    "payable_money")
    list_filter = ("month",)


@admin.register(UsageImport)
class UsageImportAdmin(ReadOnlyAdmin):
    """Imported usage files; platform operators upload new ones here."""

    list_display = ("id", "created_at", "source", "file_name", "record_count", "imported_by")
    change_list_template = "admin/billing/usageimport_change_list.html"

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_module_permission(self, request):
        return request.user.is_superuser

    def get_urls(self):
        return [
            path("upload/", self.admin_site.admin_view(self.upload_view),
                 name="billing_usageimport_upload"),
        ] + super().get_urls()

    def upload_view(self, request):
        if not user_may(request.user, "usage_upload"):
            raise PermissionDenied(_("Only platform operators upload usage."))
        form = UsageUploadForm(request.POST or None, request.FILES or None)
        errors: list = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                batch = usage_import(file=upload, file_name=upload.name,
                                     acting_user=request.user,
                                     source=UsageImport.Source.UPLOAD)
            except UsageImportError as exc:
                errors = exc.errors
                self.message_user(request, exc.message, messages.ERROR)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, ngettext(
                    "Imported %(n)s usage record from %(file)s. Bills for past days are made "
                    "by run_billing or the nightly schedule.",
                    "Imported %(n)s usage records from %(file)s. Bills for past days are made "
                    "by run_billing or the nightly schedule.", batch.record_count,
                ) % {"n": f"{batch.record_count:,}", "file": batch.file_name}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:billing_usageimport_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Upload usage CSV"),
            "form": form,
            "errors": errors[:500],
            "errors_more": max(len(errors) - 500, 0),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/usage_upload.html", context)
