from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.http import Http404

from tenancy import services
from tenancy.admin_mixins import (
    ReadOnlyAdmin,
    ServiceSavedAdmin,
    add_service_errors,
    admin_actor,
    admin_tenant_ids,
    run_service,
)
from tenancy.context import Actor
from tenancy.models import ApiKey, Membership, Tenant
from tenancy.scoping import scoped


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "heartbeat_window_seconds", "created_at"]
    search_fields = ["slug", "name"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else scoped(qs, admin_tenant_ids(request.user))

    def has_add_permission(self, request):
        return request.user.is_superuser

    # Tenant admins see their own tenants; only superusers change them (a platform-level setting).
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return False

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404("Not found.")

    def get_readonly_fields(self, request, obj=None):
        return ["slug", "created_at"] if obj is not None else ["created_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = super().get_form(request, obj, change=change, **kwargs)

        class TenantForm(base):
            saved = None

            def _post_clean(self):
                super()._post_clean()
                if self.errors:
                    return
                actor = admin_actor(request, self.instance if change else None)
                data = {k: v for k, v in self.cleaned_data.items() if k in services.TENANT_FIELDS}
                try:
                    if change:
                        self.saved = services.tenant_update(
                            tenant=Tenant.objects.get(pk=self.instance.pk), actor=actor, **data
                        )
                    else:
                        self.saved = services.tenant_create(slug=self.cleaned_data["slug"], actor=actor, **data)
                except ValidationError as exc:
                    add_service_errors(self, exc)

        return TenantForm

    def save_form(self, request, form, change):
        return form.saved

    def save_model(self, request, obj, form, change):
        """Saved (with its change record) by the service while the form validated."""

    def save_related(self, request, form, formsets, change):
        """Nothing related to save."""


@admin.register(Membership)
class MembershipAdmin(ServiceSavedAdmin):
    list_display = ["user", "tenant", "roles", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["user__username"]

    def get_readonly_fields(self, request, obj=None):
        return ["tenant", "user", "created_at"] if obj is not None else ["created_at"]

    def save_through_service(self, request, obj, data, change):
        return services.membership_set(
            tenant=obj.tenant, user=obj.user, roles=obj.roles, actor=admin_actor(request, obj.tenant)
        )


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    """Keys are created with `manage.py create_api_key` or the API (the secret is shown once there)."""

    list_display = ["name", "prefix", "tenant", "roles", "created_at", "revoked_at", "last_used_at"]
    list_filter = ["tenant", "revoked_at"]
    search_fields = ["name", "prefix"]
    exclude = ["key_hash"]
    actions = ["revoke"]

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        done = sum(
            run_service(request, services.api_key_revoke, key=key, actor=admin_actor(request, key.tenant))
            for key in queryset.filter(revoked_at__isnull=True)
        )
        messages.success(request, f"Revoked {done} key(s).")


def _username_field(username, exclude=None):
    """``services.username_check`` as a form field's own error."""
    try:
        return services.username_check(username, exclude=exclude)
    except ValidationError as exc:
        raise ValidationError(exc.message_dict["username"]) from exc


class ArmUserCreationForm(AdminUserCreationForm):
    def clean_username(self):  # instead of Django's own case-insensitive check: one rule
        return _username_field(self.cleaned_data["username"])


class ArmUserChangeForm(UserChangeForm):
    def clean_username(self):
        return _username_field(self.cleaned_data["username"], exclude=self.instance)


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class ArmUserAdmin(UserAdmin):
    """Django's user admin (platform operators) with ARM's account rules: usernames unique up to case and
    Unicode form (``username_check``), passwords through the validators (Django's forms run them),
    accounts deactivated or reactivated only through the service (never a tenant's last admin: the
    actions below; ``is_active`` is read-only on the form), and never deleted (deactivate them: their
    memberships, keys and records stay)."""

    add_form = ArmUserCreationForm
    form = ArmUserChangeForm
    actions = ["deactivate", "reactivate"]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "is_active"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False

    def _set_active(self, request, queryset, active: bool):
        actor = Actor.for_user(request.user, is_superuser=request.user.is_superuser)
        done = sum(
            run_service(request, services.account_set_active, user=user, active=active, actor=actor)
            for user in queryset.filter(is_active=not active)
        )
        messages.success(request, f"{'Reactivated' if active else 'Deactivated'} {done} account(s).")

    @admin.action(description="Deactivate selected accounts", permissions=["change"])
    def deactivate(self, request, queryset):
        self._set_active(request, queryset, False)

    @admin.action(description="Reactivate selected accounts", permissions=["change"])
    def reactivate(self, request, queryset):
        self._set_active(request, queryset, True)
