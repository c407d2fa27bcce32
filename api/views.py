"""The console's API keys page (a partner admin makes, sees and revokes keys; a new key's
secret is shown once), its webhooks pages (endpoints, their delivery log, redeliver), and
the JSON 404 of unknown paths under /api/."""
from datetime import datetime, time, timedelta

from django import forms
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import FormView, TemplateView

from accounts.mixins import PartnerMixin
from accounts.models import PartnerMembership
from api.errors import error_body
from api.keys import NAME_MAX, api_key_create, api_key_revoke
from api.models import ApiKey
from api.selectors import (
    api_key_list,
    webhook_delivery_for,
    webhook_delivery_log,
    webhook_endpoint_list,
)
from api.webhooks import (
    DESCRIPTION_MAX,
    EVENT_TYPES,
    URL_MAX,
    delivery_error_text,
    webhook_endpoint_create,
    webhook_endpoint_disable,
    webhook_redeliver,
)
from couponplatform.dates import PlatformDateField
from couponplatform.exceptions import ApplicationError

ADMIN_ONLY = (PartnerMembership.Role.ADMIN,)


def not_found(request, *args, **kwargs):
    return JsonResponse(error_body(request, status=404, code="route_not_found",
                                   message=_("No such route in the API; see /api/v1/docs.")),
                        status=404)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX, label=gettext_lazy("Name"),
                           help_text=gettext_lazy("What the key is for, e.g. “CRM”."))
    role = forms.ChoiceField(choices=ApiKey.Role.choices, initial=ApiKey.Role.READ_ONLY,
                             widget=forms.RadioSelect, label=gettext_lazy("Role"),
                             help_text=gettext_lazy("Read-only keys only read; operator keys "
                                                    "also create templates, submit, cancel "
                                                    "and void."))
    expires_on = PlatformDateField(required=False, label=gettext_lazy("Expires after"),
                                   help_text=gettext_lazy("Optional: the last day the key works."))

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        if day is not None and day < timezone.localdate():
            raise forms.ValidationError(_("The last day can not be in the past."))
        return day


def _end_of(day):
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


class ApiKeyListView(PartnerMixin, FormView):
    page_action = "api_keys_manage"
    form_class = ApiKeyForm
    template_name = "api/keys.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["keys"] = api_key_list(partner=self.partner)
        ctx["new_token"] = kwargs.get("new_token")
        ctx["new_key"] = kwargs.get("new_key")
        return ctx

    def form_valid(self, form):
        try:
            key, token = api_key_create(
                partner=self.partner, acting_user=self.request.user,
                name=form.cleaned_data["name"], role=form.cleaned_data["role"],
                expires_at=_end_of(form.cleaned_data["expires_on"]),
            )
        except ApplicationError as exc:
            for field, message in (exc.extra.get("errors") or {None: exc.message}).items():
                form.add_error(field if field in form.fields else None, message)
            return self.form_invalid(form)
        # Shown in this answer only: the secret is not kept anywhere to show again.
        response = self.render_to_response(self.get_context_data(
            form=self.form_class(), new_token=token, new_key=key))
        return response


class ApiKeyRevokeView(PartnerMixin, View):
    page_action = "api_keys_manage"

    def post(self, request, pk):
        key = get_object_or_404(api_key_list(partner=self.partner), pk=pk)
        try:
            api_key_revoke(key=key, acting_user=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The key “%(name)s” is revoked; requests with it now "
                                        "answer 401.") % {"name": key.name})
        return redirect("api_keys")


# ---------------------------------------------------------------------------------------
# Webhooks: endpoints, their delivery log, redeliver (docs/API.md, Webhooks)

LOG_PAGE = 50


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(label=gettext_lazy("Endpoint URL"), max_length=URL_MAX,
                          widget=forms.TextInput(attrs={"placeholder": "https://"}),
                          help_text=gettext_lazy("An HTTPS address of your systems that "
                                                 "accepts POST."))
    events = forms.MultipleChoiceField(
        choices=[(key, format_lazy("{key}: {text}", key=key, text=text))
                 for key, text in EVENT_TYPES.items()],
        widget=forms.CheckboxSelectMultiple, required=False, label=gettext_lazy("Events"),
        help_text=gettext_lazy("The events this endpoint receives."))
    description = forms.CharField(max_length=DESCRIPTION_MAX, required=False,
                                  label=gettext_lazy("Description"),
                                  help_text=gettext_lazy("Optional: what the endpoint is for."))


class WebhookListView(PartnerMixin, FormView):
    page_action = "webhooks_manage"
    form_class = WebhookEndpointForm
    template_name = "api/webhooks.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["endpoints"] = webhook_endpoint_list(partner=self.partner)
        ctx["new_secret"] = kwargs.get("new_secret")
        ctx["new_endpoint"] = kwargs.get("new_endpoint")
        return ctx

    def form_valid(self, form):
        try:
            endpoint, secret = webhook_endpoint_create(
                partner=self.partner, acting_user=self.request.user,
                url=form.cleaned_data["url"], events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
            )
        except ApplicationError as exc:
            for field, message in (exc.extra.get("errors") or {None: exc.message}).items():
                form.add_error(field if field in form.fields else None, message)
            return self.form_invalid(form)
        # Shown in this answer only; the console never shows the secret again.
        return self.render_to_response(self.get_context_data(
            form=self.form_class(), new_secret=secret, new_endpoint=endpoint))


class WebhookDetailView(PartnerMixin, TemplateView):
    """An endpoint and its delivery log, newest first, LOG_PAGE a page (?before=<id>)."""

    page_action = "webhooks_manage"
    template_name = "api/webhook_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        endpoint = get_object_or_404(webhook_endpoint_list(partner=self.partner),
                                     pk=self.kwargs["pk"])
        log = webhook_delivery_log(endpoint=endpoint)
        before = self.request.GET.get("before", "")
        if before.isascii() and before.isdigit() and len(before) < 19:
            log = log.filter(pk__lt=int(before))
        rows = list(log[:LOG_PAGE + 1])
        for row in rows:
            row.error_text = delivery_error_text(row.last_error)
        ctx.update(endpoint=endpoint, deliveries=rows[:LOG_PAGE],
                   older=rows[LOG_PAGE - 1].pk if len(rows) > LOG_PAGE else None,
                   paged=bool(before))
        return ctx


class WebhookDisableView(PartnerMixin, View):
    page_action = "webhooks_manage"

    def post(self, request, pk):
        endpoint = get_object_or_404(webhook_endpoint_list(partner=self.partner), pk=pk)
        try:
            webhook_endpoint_disable(endpoint=endpoint, acting_user=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The endpoint %(url)s is disabled; nothing more is "
                                        "sent to it.") % {"url": endpoint.url})
        return redirect("webhooks")


class WebhookRedeliverView(PartnerMixin, View):
    page_action = "webhooks_manage"

    def post(self, request, pk):
        delivery = get_object_or_404(webhook_delivery_for(partner=self.partner, pk=pk))
        try:
            webhook_redeliver(delivery=delivery, acting_user=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Event %(event)s is queued to be sent again, with the "
                                        "same id.") % {"event": delivery.event.public_id})
        return redirect("webhook_detail", pk=delivery.endpoint_id)
