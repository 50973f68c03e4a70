"""Policies admin: envelopes written through the services (revision, change records, the attached-policy
refusal hold here too); the decision log and spend counters read-only. Tenant-scoped like every admin."""

from django.contrib import admin

from policies import services
from policies.models import InstanceSpend, PolicyDecision, PolicyEnvelope
from tenancy.admin_mixins import ReadOnlyAdmin, ServiceSavedAdmin, admin_actor


@admin.register(PolicyEnvelope)
class PolicyEnvelopeAdmin(ServiceSavedAdmin):
    list_display = ["name", "tenant", "autonomy_tier", "revision", "cost_limit_daily_usd", "updated_at"]
    list_filter = ["tenant", "autonomy_tier"]
    search_fields = ["name", "description"]
    readonly_fields = ["revision", "created_by", "created_at", "updated_at"]
    fields = ["tenant", *services.POLICY_FIELDS, *readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        # The tenant is chosen once, on creation.
        return [*self.readonly_fields, "tenant"] if obj is not None else self.readonly_fields

    def save_through_service(self, request, obj, data, change):
        data = {f: data[f] for f in services.POLICY_FIELDS if f in data}
        actor = admin_actor(request, obj.tenant)
        if change:
            return services.policy_update(policy=PolicyEnvelope.objects.get(pk=obj.pk), actor=actor, **data)
        return services.policy_create(tenant=obj.tenant, actor=actor, **data)

    def delete_through_service(self, request, obj):
        services.policy_delete(policy=obj, actor=admin_actor(request, obj.tenant))


@admin.register(PolicyDecision)
class PolicyDecisionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tool", "decision", "risk", "instance", "policy_revision", "duration_us", "tenant"]
    list_filter = ["tenant", "decision", "risk"]
    search_fields = ["tool", "actor"]
    list_select_related = ["instance", "tenant"]
    date_hierarchy = "created_at"


@admin.register(InstanceSpend)
class InstanceSpendAdmin(ReadOnlyAdmin):
    list_display = ["instance", "period", "period_start", "amount_usd", "tenant"]
    list_filter = ["tenant", "period"]
    list_select_related = ["instance", "tenant"]
