"""Notifications admin, tenant-scoped like every admin. Endpoints are edited and deleted through the
services (validation, change records) but created on the Notifications page or the API, where the signing
secret is shown once: the admin never shows a secret. Events and deliveries are read-only (written by the
outbox and the worker); "Redeliver" is an action calling the same service as the UI and the API."""

from django.contrib import admin, messages
from django.db import models

from notifications import services
from notifications.models import Delivery, DeliveryAttempt, Endpoint, Event
from tenancy.admin_mixins import ReadOnlyAdmin, ServiceSavedAdmin, admin_actor, run_service

ENDPOINT_FIELDS = ["name", "kind", "url", "email_role", "event_types", "active"]


@admin.register(Endpoint)
class EndpointAdmin(ServiceSavedAdmin):
    list_display = ["name", "kind", "url", "email_role", "active", "tenant", "updated_at"]
    list_filter = ["tenant", "kind", "active"]
    search_fields = ["name", "url"]
    readonly_fields = ["tenant", "previous_secret_expires_at", "created_at", "updated_at"]
    # secret and previous_secret are not editable fields: they never reach a form or a page.
    fields = ["tenant", *ENDPOINT_FIELDS, "previous_secret_expires_at", "created_at", "updated_at"]
    list_select_related = ["tenant"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # a bare host means https

    def has_add_permission(self, request):
        return False  # made on the Notifications page or POST /api/v1/notification-endpoints/ (secret shown once)

    def save_through_service(self, request, obj, data, change):
        data = {f: data[f] for f in ENDPOINT_FIELDS if f in data}
        endpoint = Endpoint.objects.get(pk=obj.pk)
        return services.endpoint_update(endpoint=endpoint, actor=admin_actor(request, obj.tenant), **data)

    def delete_through_service(self, request, obj):
        services.endpoint_delete(endpoint=obj, actor=admin_actor(request, obj.tenant))


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "type", "id", "record_seq", "tenant"]
    list_filter = ["tenant", "type"]
    search_fields = ["type"]
    list_select_related = ["tenant"]
    date_hierarchy = "created_at"
    show_full_result_count = False


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "started_at", "latency_ms", "status_code", "outcome", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff  # the parent delivery is tenant-scoped

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.action(description="Redeliver selected (same event, same webhook-id)")
def redeliver(modeladmin, request, queryset):
    done = 0
    for delivery in queryset.select_related("tenant"):
        done += run_service(request, services.redeliver, delivery=delivery, actor=admin_actor(request, delivery.tenant))
    if done:
        messages.success(request, f"Queued {done} again.")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "endpoint",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "last_latency_ms",
        "next_attempt_at",
        "tenant",
    ]
    list_filter = ["tenant", "status"]
    search_fields = ["event__type", "endpoint__name", "last_error"]
    list_select_related = ["endpoint", "event", "tenant"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [DeliveryAttemptInline]
    actions = [redeliver]
