"""Admin for platform operators and BDs: a BD sees and changes only their own partners."""
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy

from accounts import access, services
from accounts.admin_links import UnlinkedUsersMixin
from accounts.models import (
    Partner,
    PartnerMembership,
    PlatformBudget,
    Product,
    SubAccount,
    SubAccountMembership,
    User,
)
from accounts.permissions import bd_partners_q, user_may_use_bd_admin
from accounts.selectors import bd_user_list
from audit.models import AuditLog
from couponplatform.admin_money import money_display
from couponplatform.exceptions import ApplicationError
from couponplatform.fields import AmountField
from couponplatform.templatetags.money import amount_html


class BDScopedAdminMixin(UnlinkedUsersMixin):
    """Rows of the partners assigned to the signed-in BD; everything for a superuser. Users
    are named, not linked, for those who can not open the users' admin (admin_links.py).

    `partner_path` is the lookup from the model to its Partner ("" for Partner itself).
    """

    partner_path = "partner"

    def scope(self, request, qs):
        return qs.filter(bd_partners_q(request.user, self.partner_path))

    def get_queryset(self, request):
        return self.scope(request, super().get_queryset(request))

    def has_delete_permission(self, request, obj=None):
        # Nothing with money or history behind it is deleted from the admin.
        return False


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class FiniteDecimalField(AmountField):
    """The budget's amount, read as every amount is (couponplatform.money.parse_amount):
    Django's DecimalField parsed "sNaN", a signalling NaN that no comparison survives (the
    inline's has_changed() then raised InvalidOperation, a 500), and "1_000", "١٢", "1e3"."""

    def __init__(self, **kwargs):
        kwargs.pop("widget", None)  # the model field's NumberInput would send "1e3" as is
        super().__init__(**kwargs)


class PlatformBudgetForm(forms.ModelForm):
    class Meta:
        model = PlatformBudget
        fields = ["currency", "amount"]
        field_classes = {"amount": FiniteDecimalField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # A budget's currency is what it is: a changed one would be another budget
            # (platform_budget_set keys on it), leaving this one behind unchanged.
            self.fields["currency"].disabled = True

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        consumed = self.instance.consumed if self.instance.pk else Decimal("0")
        problem = services.platform_budget_amount_problem(
            amount, consumed=consumed, currency=self.instance.currency or "",
        )
        if problem:
            raise forms.ValidationError(problem)
        return amount


class PlatformBudgetInline(admin.TabularInline):
    model = PlatformBudget
    form = PlatformBudgetForm
    extra = 0
    can_delete = False
    fields = ["currency", "amount", "reserved_money", "consumed_money", "remaining_money"]
    readonly_fields = ["reserved_money", "consumed_money", "remaining_money"]
    verbose_name = gettext_lazy("platform-borne budget")
    verbose_name_plural = gettext_lazy("platform-borne budgets")

    reserved_money = money_display("reserved", description=gettext_lazy("Reserved"),
                                   ordering=False)
    consumed_money = money_display("consumed", description=gettext_lazy("Consumed"),
                                   ordering=False)

    @admin.display(description=gettext_lazy("Remaining"))
    def remaining_money(self, obj):
        return amount_html(obj.remaining, obj.currency) if obj.pk else "—"


@admin.register(Partner)
class PartnerAdmin(BDScopedAdminMixin, admin.ModelAdmin):
    partner_path = ""
    list_display = ["name", "kind", "tier", "parent", "bd", "coupon_enabled",
                    "requires_bd_approval"]
    list_filter = ["kind", "tier", "coupon_enabled", "requires_bd_approval"]
    search_fields = ["name"]
    list_select_related = ["parent", "bd"]
    inlines = [PlatformBudgetInline]

    def get_inlines(self, request, obj):
        # Tier-2 resellers get no platform-borne budget (platform_budget_set refuses one):
        # the form does not offer it, rather than accept it and then report the refusal.
        if obj is not None and obj.is_tier2:
            return []
        return super().get_inlines(request, obj)
    fieldsets = [
        (None, {"fields": ["name", "kind", "tier", "parent", "bd"]}),
        (gettext_lazy("Coupon function"), {"fields": ["coupon_enabled",
                                                      "requires_bd_approval"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ["kind", "tier", "parent"] if obj else []
        return ["name", "kind", "tier", "parent", "bd"]

    def has_add_permission(self, request):
        return request.user.is_superuser

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "bd":
            kwargs["queryset"] = bd_user_list()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            created = services.partner_create(
                acting_user=request.user, name=obj.name, kind=obj.kind, tier=obj.tier,
                parent=obj.parent, bd=obj.bd, coupon_enabled=obj.coupon_enabled,
                requires_bd_approval=obj.requires_bd_approval,
            )
            # The admin goes on with the object its form built: the budgets' inline, the
            # history entry and the redirect need the new row's id.
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        try:
            if "bd" in form.changed_data:
                services.partner_bd_assign(partner=obj, acting_user=request.user, bd=obj.bd)
            if {"coupon_enabled", "requires_bd_approval"} & set(form.changed_data):
                services.partner_coupon_settings_update(
                    partner=obj, acting_user=request.user, coupon_enabled=obj.coupon_enabled,
                    requires_bd_approval=obj.requires_bd_approval,
                )
            if "name" in form.changed_data and request.user.is_superuser:
                services.partner_rename(partner=obj, acting_user=request.user, name=obj.name)
        except ApplicationError as exc:
            messages.error(request, exc.message)

    def save_formset(self, request, form, formset, change):
        # The service writes the budgets, not formset.save(); the admin's change message
        # still reads these lists, and without them every save of a partner is a 500.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if not inline_form.has_changed() or not inline_form.cleaned_data:
                continue
            try:
                services.platform_budget_set(
                    partner=form.instance, acting_user=request.user,
                    currency=inline_form.cleaned_data["currency"],
                    amount=inline_form.cleaned_data["amount"],
                )
            except ApplicationError as exc:
                messages.error(request, exc.message)


@admin.register(SubAccount)
class SubAccountAdmin(BDScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["account_id", "name", "type", "partner", "currency"]
    list_filter = ["type", "currency"]
    search_fields = ["account_id", "name"]
    list_select_related = ["partner"]
    show_full_result_count = False


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False


class PartnerMembershipInline(admin.StackedInline):
    model = PartnerMembership
    extra = 0


class SubAccountMembershipInline(admin.StackedInline):
    model = SubAccountMembership
    extra = 0
    raw_id_fields = ["sub_account"]


PROFILE_FIELDS = ("username", "first_name", "last_name", "email", "last_login", "date_joined")


def _report(request, call) -> bool:
    """Run a service call; show its refusal on the page. True when it went through."""
    try:
        call()
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return False
    return True


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Users, their access and memberships: platform operators only. What a user may do
    (active, staff, operator, groups, permissions) and whom they act for (partner and role,
    or sub-account) change through the services, each change an audit row; a user is
    deactivated, never deleted (their memberships would go unaudited with them)."""

    inlines = [PartnerMembershipInline, SubAccountMembershipInline]
    readonly_fields = ["last_login", "date_joined"]  # shown to the minute, never typed over

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            obj.save()  # the add form: a username and a password, no access yet
            return
        fields = {name: form.cleaned_data[name] for name in PROFILE_FIELDS
                  if name in form.changed_data}
        _report(request, lambda: access.user_profile_update(
            user=obj, acting_user=request.user, fields=fields))

    def save_related(self, request, form, formsets, change):
        # Not form.save_m2m() nor formset.save(): the services write groups, permissions
        # and memberships, and audit them. The change message reads these lists.
        data = form.cleaned_data
        if change and "groups" in data:
            _report(request, lambda: access.user_access_set(
                user=form.instance, acting_user=request.user, is_active=data["is_active"],
                is_staff=data["is_staff"], is_superuser=data["is_superuser"],
                groups=data["groups"], permissions=data["user_permissions"],
            ))
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            for inline_form in formset.forms:
                self._save_membership(request, form.instance, formset, inline_form)

    def _save_membership(self, request, user, formset, inline_form):
        partner_side = formset.model is PartnerMembership
        if formset.can_delete and formset._should_delete_form(inline_form):
            if inline_form.instance.pk and _report(request, lambda: (
                access.partner_membership_remove if partner_side
                else access.subaccount_membership_remove
            )(user=user, acting_user=request.user)):
                formset.deleted_objects.append(inline_form.instance)
            return
        if not inline_form.has_changed() or not inline_form.cleaned_data:
            return
        data = inline_form.cleaned_data
        if partner_side:
            call = lambda: access.partner_membership_set(  # noqa: E731
                user=user, acting_user=request.user, partner=data["partner"], role=data["role"])
        else:
            call = lambda: access.subaccount_membership_set(  # noqa: E731
                user=user, acting_user=request.user, sub_account=data["sub_account"])
        if _report(request, call):
            if inline_form.instance.pk:
                formset.changed_objects.append((inline_form.instance, inline_form.changed_data))
            else:
                formset.new_objects.append(inline_form.instance)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    """Groups and their permissions through the audited service; never deleted (the BD
    group is what makes a BD)."""

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        saved = []
        if _report(request, lambda: saved.append(access.group_save(
            group=obj if change else None, acting_user=request.user,
            name=form.cleaned_data["name"], permissions=form.cleaned_data["permissions"],
        ))):
            obj.pk = saved[0].pk  # the admin's history and redirect name the row

    def save_related(self, request, form, formsets, change):
        pass  # group_save set the permissions with the row


@admin.register(AuditLog)
class AuditLogAdmin(BDScopedAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit log, read only; a BD sees their partners' rows. Registered here, not in
    audit/, so the log imports no app and every app, accounts included, can write to it."""

    list_display = ["created_at", "actor", "partner", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_id", "action", "reason"]
    list_select_related = ["actor", "partner"]
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return user_may_use_bd_admin(request.user)

    def has_module_permission(self, request):
        return user_may_use_bd_admin(request.user)


def scoped_view_on_site(request, content_type_id, object_id):
    """Django admin's "View on site" redirect, for rows the user may see in the admin.

    The stock view (admin/r/<content type>/<id>/) redirects any staff user to any object's
    page, so a BD could tell which of another BD's partners' request and template ids exist
    (302 against 404). Here the row must be in the ModelAdmin's own, BD-scoped queryset.
    """
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.contenttypes.views import shortcut
    from django.http import Http404

    try:
        model = ContentType.objects.get_for_id(int(content_type_id)).model_class()
    except (ContentType.DoesNotExist, ValueError):
        raise Http404("No such object.") from None
    model_admin = admin.site._registry.get(model)
    if model_admin is None or not model_admin.has_view_or_change_permission(request):
        raise Http404("No such object.")
    if model_admin.get_object(request, object_id) is None:
        raise Http404("No such object.")
    return shortcut(request, content_type_id, object_id)
