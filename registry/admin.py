"""Registry admin: tenant-scoped, genome and hash read-only, versions never added, changed or deleted
here; lifecycle transitions offered as actions that call the same services as the API."""

from django.contrib import admin, messages
from django.utils.html import format_html

from arm.validators import as_uuid
from registry import services
from registry.choices import InstanceState, VersionState
from registry.genome import GENOME_EXCERPT_CHARS, genome_problem, stored_text
from registry.models import AgentInstance, AgentTemplate, AgentVersion, Environment, EvaluationResult, Provider
from tenancy.admin_mixins import ReadOnlyAdmin, ServiceSavedAdmin, admin_actor, run_service


class ServiceBackedAdmin(ServiceSavedAdmin):
    """Creates and edits through ``create_service``/``update_service`` so rules and change records hold."""

    service_fields: tuple[str, ...] = ()
    create_service = None
    update_service = None
    update_kwarg = ""

    def save_through_service(self, request, obj, data, change):
        data = {f: data[f] for f in self.service_fields if f in data}
        actor = admin_actor(request, obj.tenant)
        if change:
            current = type(obj).objects.get(pk=obj.pk)
            return type(self).update_service(**{self.update_kwarg: current}, actor=actor, **data)
        return type(self).create_service(tenant=obj.tenant, actor=actor, **data)


@admin.register(Environment)
class EnvironmentAdmin(ServiceBackedAdmin):
    list_display = ["name", "tier", "tenant", "created_at"]
    list_filter = ["tenant", "tier"]
    search_fields = ["name"]
    service_fields = services.ENVIRONMENT_FIELDS
    create_service = services.environment_create
    update_service = services.environment_update
    update_kwarg = "environment"


@admin.register(Provider)
class ProviderAdmin(ServiceBackedAdmin):
    list_display = ["name", "type", "tenant", "health_endpoint", "created_at"]
    list_filter = ["tenant", "type"]
    search_fields = ["name"]
    service_fields = services.PROVIDER_FIELDS
    create_service = services.provider_create
    update_service = services.provider_update
    update_kwarg = "provider"


@admin.register(AgentTemplate)
class AgentTemplateAdmin(ServiceBackedAdmin):
    list_display = ["name", "tenant", "tags", "owners", "created_by", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    service_fields = services.TEMPLATE_FIELDS
    create_service = services.template_create
    update_service = services.template_update
    update_kwarg = "template"

    def delete_through_service(self, request, obj):
        services.template_delete(template=obj, actor=admin_actor(request, obj.tenant))


def _targets(model, field: str, states) -> list[str]:
    """The states some transition leads to, in the choices' order: an action for a state nothing moves
    into (an instance's PROVISIONING) could never succeed."""
    targets = {t.target for t in getattr(model(), f"get_all_{field}_transitions")()}
    return [state for state in states.values if state in targets]


def _transition_action(field: str, target: str, service):
    def action(modeladmin, request, queryset):
        done = 0
        for obj in queryset:
            kwarg = "version" if field == "lifecycle_state" else "instance"
            done += run_service(request, service, **{kwarg: obj}, to=target, actor=admin_actor(request, obj.tenant))
        if done:
            messages.success(request, f"Moved {done} to {target}.")

    action.__name__ = f"to_{target.lower()}"
    return admin.action(description=f"Transition selected to {target}")(action)


@admin.register(AgentVersion)
class AgentVersionAdmin(ReadOnlyAdmin):
    """Versions are created through the API or UI. Opening one verifies its integrity (and records it)."""

    list_display = [
        "version_label",
        "template",
        "tenant",
        "lifecycle_state",
        "eval_status",
        "integrity_status",
        "created_at",
    ]
    list_filter = ["tenant", "lifecycle_state", "eval_status", "integrity_status"]
    search_fields = ["version_label", "template__name", "genome_hash"]
    list_select_related = ["template", "tenant"]
    readonly_fields = [
        "template",
        "version_label",
        "genome_pretty",
        "genome_hash",
        "parent",
        "lifecycle_state",
        "eval_status",
        "integrity_status",
        "integrity_checked_at",
        "created_by",
        "created_at",
        "updated_at",
    ]
    exclude = ["genome"]
    actions = [
        _transition_action("lifecycle_state", state, services.version_transition)
        for state in _targets(AgentVersion, "lifecycle_state", VersionState)
    ]

    @admin.display(description="Genome")
    def genome_pretty(self, obj):
        import json

        # A stored genome is not trusted (a row edited in the database): an unreadable one is named as such
        # and shown as the start of its stored text, escaped.
        problem = genome_problem(obj.genome)
        if problem:
            return format_html(
                "<p><strong>Genome unreadable:</strong> {}</p><pre>{}</pre>",
                problem,
                stored_text(obj.genome)[:GENOME_EXCERPT_CHARS],
            )
        return format_html("<pre>{}</pre>", json.dumps(obj.genome, indent=2, ensure_ascii=False))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_queryset(request).filter(pk=object_id).first() if as_uuid(object_id) else None
        if version is not None:
            result = services.version_verify_integrity(version=version, actor=admin_actor(request, version.tenant))
            level = messages.SUCCESS if result.status == "VERIFIED" else messages.ERROR
            messages.add_message(
                request,
                level,
                f"Integrity {result.status}: stored {result.stored_hash}, computed {result.computed_hash}.",
            )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(EvaluationResult)
class EvaluationResultAdmin(ReadOnlyAdmin):
    list_display = ["version", "suite", "status", "score", "tenant", "created_at"]
    list_filter = ["tenant", "status"]
    list_select_related = ["version", "tenant"]


@admin.register(AgentInstance)
class AgentInstanceAdmin(ReadOnlyAdmin):
    """Instances are created through the API or UI; transitions are actions."""

    list_display = ["__str__", "version", "environment", "provider", "state", "last_heartbeat_at", "tenant"]
    list_filter = ["tenant", "state", "environment__tier"]
    search_fields = ["name"]
    list_select_related = ["version", "environment", "provider", "tenant"]
    actions = [
        _transition_action("state", state, services.instance_transition)
        for state in _targets(AgentInstance, "state", InstanceState)
    ]
