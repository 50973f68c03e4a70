from django.contrib import admin, messages
from django.http import Http404

from arm import services
from arm.admin_mixins import ReadOnlyAdmin, TenantScopedAdmin, admin_actor, admin_tenant_ids, run_service
from arm.models import ApiKey, Membership, Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "heartbeat_window_seconds", "created_at"]
    search_fields = ["slug", "name"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(pk__in=admin_tenant_ids(request.user))

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

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        else:
            services.tenant_create(slug=obj.slug, name=obj.name, actor=admin_actor(request, None))


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ["user", "tenant", "roles", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["user__username"]

    def save_model(self, request, obj, form, change):
        run_service(
            request,
            services.membership_set,
            tenant=obj.tenant,
            user=obj.user,
            roles=obj.roles,
            actor=admin_actor(request, obj.tenant),
        )

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    """Keys are created with `manage.py create_api_key` or the API (the secret is shown once there)."""

    list_display = ["name", "prefix", "tenant", "roles", "instance", "created_at", "revoked_at", "last_used_at"]
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
