"""Every permission change made in the admin goes through a service and writes an audit row
(QUALITY "audit": who, what, when, tenant, before, after): a user's access (active, staff,
platform operator, groups such as BD, permissions), their partner membership and role,
their sub-account membership, and a group's permissions. Nothing of it is deleted in the
admin; a user is deactivated."""
from datetime import datetime

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from accounts import access
from accounts.models import BD_GROUP, PartnerMembership, SubAccountMembership
from audit.models import AuditLog
from couponplatform.exceptions import ApplicationError, PermissionDeniedError
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db):
    return f.make_user("root-audit", is_staff=True, is_superuser=True)


def rows(user) -> list[AuditLog]:
    return list(AuditLog.objects.filter(object_type="accounts.User", object_id=str(user.pk))
                .order_by("pk"))


def _value(field, value):
    """A form field's initial value as a browser would post it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "on" if value else None
    if isinstance(value, list | tuple) or hasattr(value, "__iter__") and not isinstance(
        value, str,
    ):
        return [getattr(v, "pk", v) for v in value]
    return getattr(value, "pk", value)


def form_data(form, prefix: str | None = None) -> dict:
    data = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        key = f"{prefix}-{name}" if prefix else name
        value = form.initial.get(name, field.initial)
        if callable(value):
            value = value()
        if isinstance(value, datetime):
            data[f"{key}_0"], data[f"{key}_1"] = f"{value:%Y-%m-%d}", f"{value:%H:%M:%S}"
            continue
        value = _value(field, value)
        if value is not None:
            data[key] = value
    return data


def change_form_post(client, url, *, change=None, inlines=None) -> dict:
    """The change page's form as it is, with `change` applied to the main form and
    `inlines` ({prefix: {field: value}} for the first form of each inline) to the rest."""
    response = client.get(url)
    assert response.status_code == 200
    context = response.context
    data = form_data(context["adminform"].form)
    for inline in context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[f"{formset.prefix}-{name}"] = management[name].value()
        for form in formset.forms:
            data.update(form_data(form, form.prefix))
        wanted = (inlines or {}).get(formset.prefix)
        if wanted:
            if not formset.forms:  # add one: the inline has no row yet
                data[f"{formset.prefix}-TOTAL_FORMS"] = "1"
            for key, value in wanted.items():
                data[f"{formset.prefix}-0-{key}"] = value
    for key, value in (change or {}).items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    data["_save"] = "Save"
    return data


def user_url(user) -> str:
    return reverse("admin:accounts_user_change", args=[user.pk])


def post(client, url, data):
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return response


def test_a_role_change_in_the_admin_is_audited(client, root, distributor):
    member = f.make_member(distributor, "viewer", username="promoted")
    client.force_login(root)
    url = user_url(member)
    post(client, url, change_form_post(client, url,
                                       inlines={"partner_membership": {"role": "admin"}}))
    assert PartnerMembership.objects.get(user=member).role == "admin"
    [row] = rows(member)
    assert row.action == "membership.partner_set" and row.actor == root
    assert row.partner == distributor
    assert row.before == {"partner": distributor.pk, "role": "viewer"}
    assert row.after == {"partner": distributor.pk, "role": "admin"}


def test_making_a_user_a_bd_in_the_admin_is_audited(client, root):
    user = f.make_user("future-bd")
    bd_group = Group.objects.get_or_create(name=BD_GROUP)[0]
    client.force_login(root)
    url = user_url(user)
    post(client, url, change_form_post(client, url, change={
        "is_staff": "on", "groups": [bd_group.pk]}))
    user.refresh_from_db()
    assert user.is_bd
    [row] = rows(user)
    assert row.action == "user.access" and row.actor == root
    assert row.before["groups"] == [] and row.after["groups"] == [BD_GROUP]
    assert row.before["is_staff"] is False and row.after["is_staff"] is True


def test_permissions_and_deactivation_in_the_admin_are_audited(client, root):
    user = f.make_user("perm-user", is_staff=True)
    permission = Permission.objects.get(codename="view_partner")
    client.force_login(root)
    url = user_url(user)
    post(client, url, change_form_post(client, url, change={
        "user_permissions": [permission.pk], "is_active": None}))
    [row] = rows(user)
    assert row.after["permissions"] == ["accounts.view_partner"]
    assert row.before["is_active"] is True and row.after["is_active"] is False


def test_adding_and_removing_a_sub_account_membership_in_the_admin_is_audited(
    client, root, distributor, customers,
):
    user = f.make_user("billing-reader")
    client.force_login(root)
    url = user_url(user)
    post(client, url, change_form_post(client, url, inlines={
        "subaccount_membership": {"sub_account": customers[0].pk}}))
    assert SubAccountMembership.objects.get(user=user).sub_account == customers[0]
    post(client, url, change_form_post(client, url, inlines={
        "subaccount_membership": {"DELETE": "on"}}))
    assert not SubAccountMembership.objects.filter(user=user).exists()
    added, removed = rows(user)
    assert added.action == "membership.subaccount_set" and added.partner == distributor
    assert added.before is None
    assert added.after == {"sub_account": customers[0].account_id, "partner": distributor.pk}
    assert removed.action == "membership.subaccount_remove" and removed.after is None


def test_a_save_that_changes_no_access_writes_no_audit_row(client, root, distributor):
    member = f.make_member(distributor, "operator", username="unchanged")
    client.force_login(root)
    url = user_url(member)
    post(client, url, change_form_post(client, url, change={"first_name": "Renamed"}))
    member.refresh_from_db()
    assert member.first_name == "Renamed"
    assert rows(member) == []


def test_a_groups_permissions_changed_in_the_admin_are_audited(client, root):
    group = Group.objects.create(name="Auditors")
    permission = Permission.objects.get(codename="view_auditlog")
    client.force_login(root)
    url = reverse("admin:auth_group_change", args=[group.pk])
    post(client, url, change_form_post(client, url, change={"permissions": [permission.pk]}))
    assert list(group.permissions.all()) == [permission]
    row = AuditLog.objects.get(object_type="auth.Group", object_id=str(group.pk))
    assert row.action == "group.update" and row.actor == root
    assert row.before == {"name": "Auditors", "permissions": []}
    assert row.after == {"name": "Auditors", "permissions": ["audit.view_auditlog"]}


def test_users_and_groups_are_not_deleted_in_the_admin(client, root):
    user = f.make_user("kept")
    group = Group.objects.create(name="Kept")
    client.force_login(root)
    for url in (reverse("admin:accounts_user_delete", args=[user.pk]),
                reverse("admin:auth_group_delete", args=[group.pk])):
        assert client.post(url, {"post": "yes"}).status_code == 403
    assert user.__class__.objects.filter(pk=user.pk).exists()
    assert Group.objects.filter(pk=group.pk).exists()


def test_access_services_refuse_anyone_but_a_platform_operator(distributor, bd):
    member = f.make_member(distributor, "viewer", username="target")
    with pytest.raises(PermissionDeniedError):
        access.partner_membership_set(user=member, acting_user=bd, partner=distributor,
                                        role="admin")
    with pytest.raises(PermissionDeniedError):
        access.user_access_set(user=member, acting_user=bd, is_active=True, is_staff=True,
                                 is_superuser=True, groups=[], permissions=[])
    assert PartnerMembership.objects.get(user=member).role == "viewer"
    assert not rows(member)


def test_an_operator_can_not_take_away_their_own_rights(root):
    with pytest.raises(ApplicationError, match="your own platform operator rights"):
        access.user_access_set(user=root, acting_user=root, is_active=True, is_staff=True,
                                 is_superuser=False, groups=[], permissions=[])
    root.refresh_from_db()
    assert root.is_superuser


def test_the_bd_group_keeps_its_name(root):
    group = Group.objects.get_or_create(name=BD_GROUP)[0]
    with pytest.raises(ApplicationError, match="keeps its name"):
        access.group_save(group=group, acting_user=root, name="Sales", permissions=[])
    group.refresh_from_db()
    assert group.name == BD_GROUP
