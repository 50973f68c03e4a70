"""Policies admin: envelopes written through the services (revision, change records, the attached-policy
refusal hold here too); the decision log and spend counters read-only. Tenant-scoped like every admin."""

from django.contrib import admin

from arm.admin_mixins import ReadOnlyAdmin, TenantScopedAdmin, admin_actor, run_service
from policies import services
from policies.models import InstanceSpend, PolicyDecision, PolicyEnvelope


@admin.register(PolicyEnvelope)
class PolicyEnvelopeAdmin(TenantScopedAdmin):
    list_display = ["name", "tenant", "autonomy_tier", "revision", "cost_limit_daily_usd", "updated_at"]
    list_filter = ["tenant", "autonomy_tier"]
    search_fields = ["name", "description"]
    readonly_fields = ["revision", "created_by", "created_at", "updated_at"]
    fields = ["tenant", *services.POLICY_FIELDS, *readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        # The tenant is chosen once, on creation.
        return [*self.readonly_fields, "tenant"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in services.POLICY_FIELDS if f in form.cleaned_data}
        actor = admin_actor(request, obj.tenant)
        if change:
            current = PolicyEnvelope.objects.get(pk=obj.pk)
            run_service(request, services.policy_update, policy=current, actor=actor, **data)
        else:
            created = []
            run_service(request, lambda: created.append(services.policy_create(tenant=obj.tenant, actor=actor, **data)))
            if created:
                obj.pk = created[0].pk

    def delete_model(self, request, obj):
        run_service(request, services.policy_delete, policy=obj, actor=admin_actor(request, obj.tenant))

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


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
