"""Tenant-aware Django admin: staff see only tenants where they hold the ``admin`` role (superusers see
every tenant); another tenant's object answers 404; writes go through the domain services with an
actor whose roles are the user's roles in the object's tenant."""

from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse

from arm.errors import DomainError
from arm.filters import json_array_contains
from tenancy.choices import Role
from tenancy.context import Actor
from tenancy.models import Membership
from tenancy.scoping import scoped


def admin_tenant_ids(user) -> list:
    admin_of = json_array_contains(Membership.objects.filter(user=user), "roles", [Role.ADMIN.value])
    return list(admin_of.values_list("tenant_id", flat=True))


def admin_actor(request, tenant) -> Actor:
    """The acting user with their roles in ``tenant`` (superusers act with every role)."""
    user = request.user
    membership = Membership.objects.filter(user=user, tenant=tenant).first()
    roles = membership.roles if membership else ()
    return Actor.for_user(user, roles, is_superuser=user.is_superuser)


def run_service(request, func, *args, **kwargs) -> bool:
    """Call a service; report refusals as admin messages instead of errors. True when it succeeded."""
    try:
        func(*args, **kwargs)
    except DomainError as exc:
        messages.error(request, exc.message)
        return False
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
        return False
    return True


class TenantScopedAdmin(admin.ModelAdmin):
    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("tenant")
        return qs if request.user.is_superuser else scoped(qs, admin_tenant_ids(request.user))

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    # What a tenant admin may do is decided by their ARM roles in the services (which every save and
    # action calls), not by Django's per-model permissions.
    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return False

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Never reveal whether another tenant's object exists.
        raise Http404("Not found.")

    def get_list_filter(self, request):
        """A filter on a related model lists only rows this admin's own queryset points at (so the
        ``tenant`` filter shows the admin's tenants, never every tenant's slug)."""
        return [self._scoped_filter(spec) for spec in super().get_list_filter(request)]

    def _scoped_filter(self, spec):
        if isinstance(spec, str) and "__" not in spec:
            field = self.model._meta.get_field(spec)
            if isinstance(field, models.ForeignKey):
                return (spec, admin.RelatedOnlyFieldListFilter)
        return spec

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and not request.user.is_superuser:
            # Only the admin's tenants, their rows and their members are offered (``scoped``).
            field.queryset = scoped(field.queryset, admin_tenant_ids(request.user))
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and not request.user.is_superuser:
            # Only the admin's tenants, their rows and their members are offered (``scoped``).
            field.queryset = scoped(field.queryset, admin_tenant_ids(request.user))
        return field


class ReadOnlyAdmin(TenantScopedAdmin):
    """No add, change or delete: the rows are immutable or written only by services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def add_service_errors(form, exc: ValidationError) -> None:
    """A service's ValidationError on the form: per field where the form has that field, else at the top."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields and field != NON_FIELD_ERRORS else None, errors)


class ServiceSaveMixin:
    """Add and change through a domain service, with Django admin telling the truth about it: the service
    runs while the form validates, so a refusal becomes a form error (the form stays filled, no "changed
    successfully", nothing written), and success saves exactly once, with the service's change record; the
    admin's link then points at the row the service made. Mixed into a ``ModelAdmin`` that implements
    ``save_through_service``."""

    def save_through_service(self, request, obj, data: dict, change: bool):
        """Create or update through the service; return the saved object."""
        raise NotImplementedError

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = super().get_form(request, obj, change=change, **kwargs)
        model_admin = self

        class ServiceForm(base):
            saved = None

            def _post_clean(self):
                super()._post_clean()
                if self.errors:
                    return
                try:
                    with transaction.atomic():
                        self.saved = model_admin.save_through_service(request, self.instance, self.cleaned_data, change)
                except ValidationError as exc:
                    add_service_errors(self, exc)
                except DomainError as exc:
                    self.add_error(None, exc.message)

        return ServiceForm

    def save_form(self, request, form, change):
        return form.saved

    def save_model(self, request, obj, form, change):
        """Already saved by the service while the form validated."""

    def save_related(self, request, form, formsets, change):
        """Nothing related to save: these models have no many-to-many fields or inlines."""


class ServiceSavedAdmin(ServiceSaveMixin, TenantScopedAdmin):
    """A tenant-scoped admin whose add, change and delete go through domain services (``ServiceSaveMixin``).
    Deletes go through ``delete_through_service`` the same way; the bulk "delete selected" action is
    replaced by one that reports what really happened."""

    delete_through_service = None  # callable(request, obj) or None when the model cannot be deleted

    def has_delete_permission(self, request, obj=None):
        return self.delete_through_service is not None and request.user.is_active and request.user.is_staff

    def delete_view(self, request, object_id, extra_context=None):
        if request.method != "POST":
            return super().delete_view(request, object_id, extra_context)
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404("Not found.")
        opts = self.model._meta
        display = str(obj)
        if run_service(request, self.delete_through_service, request, obj):
            self.log_deletion(request, obj, display)
            messages.success(request, f"Deleted {opts.verbose_name} {display}.")
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        if self.delete_through_service is not None and self.has_delete_permission(request):
            actions["delete_through_service_action"] = (
                ServiceSavedAdmin.delete_through_service_action,
                "delete_through_service_action",
                f"Delete selected {self.model._meta.verbose_name_plural}",
            )
        return actions

    def delete_through_service_action(self, request, queryset):
        done = sum(run_service(request, self.delete_through_service, request, obj) for obj in queryset)
        if done:
            messages.success(request, f"Deleted {done} {self.model._meta.verbose_name_plural}.")
