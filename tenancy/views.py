"""The API keys page: tenant admins list, mint and revoke the tenant's keys."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from arm.errors import DomainError
from arm.ui import StyledForm, apply_service_errors, error_message
from tenancy.choices import Role
from tenancy.models import ApiKey
from tenancy.pages import tenant_page
from tenancy.scoping import scoped, scoped_get
from tenancy.selectors import prime_actors
from tenancy.services import api_key_create, api_key_revoke


class ApiKeyForm(StyledForm, forms.Form):
    name = forms.CharField(max_length=200, help_text="What uses it, e.g. support-eu-1 runtime or CI pipeline.")
    roles = forms.MultipleChoiceField(
        choices=Role.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Runtime keys heartbeat, evaluate tool calls and read their own approvals.",
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant


def _api_keys_page(request, form, *, new_key=None, secret=None, status=200):
    keys = list(
        # The instance a key is bound to: registry's binding, through the relation it adds to the key.
        scoped(ApiKey.objects.all(), request.arm_tenant)
        .select_related("instance_binding__instance")
        .order_by("-created_at")[:200]
    )
    prime_actors(request, (k.created_by for k in keys))
    response = render(
        request,
        "arm/api_keys.html",
        {"form": form, "keys": keys, "new_key": new_key, "secret": secret},
        status=status,
    )
    if secret:
        response["Cache-Control"] = "no-store"  # the secret is shown once and never cached
    return response


def api_keys_page(request, form_class=ApiKeyForm, create=api_key_create):
    """Tenant admins create (the secret is shown once, here) and revoke API keys. ``ui:api_keys`` is
    ``registry.views.api_keys``: its form adds the instance a key is bound to (registry's binding), and its
    ``create`` writes it."""
    form = form_class(request.POST or None, tenant=request.arm_tenant)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        extra = {"instance": data["instance"]} if "instance" in data else {}
        try:
            key, secret = create(
                tenant=request.arm_tenant,
                name=data["name"],
                roles=list(data["roles"]),
                actor=request.arm_actor,
                **extra,
            )
        except (ValidationError, DomainError) as exc:
            apply_service_errors(form, exc)
        else:
            return _api_keys_page(request, form_class(tenant=request.arm_tenant), new_key=key, secret=secret)
    return _api_keys_page(request, form)


@tenant_page(roles=(Role.ADMIN,))
@require_POST
def api_key_revoke_view(request, pk):
    key = scoped_get(ApiKey.objects.select_related("tenant"), request.arm_tenant, pk)
    try:
        api_key_revoke(key=key, actor=request.arm_actor)
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"Key {key.name} ({key.prefix}) revoked: it no longer authenticates.")
    return redirect("ui:api_keys")
