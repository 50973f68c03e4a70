"""One FilterSet per model, used by the API (``?search=``, ``?ordering=``, field filters) and the UI lists.

``search`` matches names, labels and ids; ``tags`` and ``owner`` match whole list elements (JSON containment,
``arm.filters.json_array_contains``); ``health``
uses the tenant's heartbeat window.
"""

import django_filters
from django.db.models import Q
from django.utils import timezone

from arm.filters import IsoDateTimeFilter, MultipleChoiceFilter, OrderingFilter, UUIDFilter, json_array_contains
from arm.validators import as_uuid
from registry.choices import EnvironmentTier, EvalStatus, Health, InstanceState, ProviderType, VersionState
from registry.models import (
    AgentInstance,
    AgentTemplate,
    AgentVersion,
    Environment,
    EvaluationResult,
    Provider,
    health_cutoffs,
)


def _id_q(value: str, field: str = "id") -> Q:
    pk = as_uuid(value)
    return Q(**{field: pk}) if pk is not None else Q(pk__in=[])


def _with_tags(queryset, value: str, field: str = "tags"):
    """All comma-separated tags must be present, each as a whole list element (``json_array_contains``:
    JSON containment on PostgreSQL, json_each on SQLite)."""
    return json_array_contains(queryset, field, [tag.strip() for tag in value.split(",")])


class SearchFilterSet(django_filters.FilterSet):
    """Adds ``search``: case-insensitive match on ``search_fields`` or an exact id."""

    search_fields: tuple[str, ...] = ("name",)
    search = django_filters.CharFilter(method="filter_search", label="Search")

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        q = _id_q(value)
        for field in self.search_fields:
            q |= Q(**{f"{field}__icontains": value})
        return queryset.filter(q)


class EnvironmentFilterSet(SearchFilterSet):
    tier = django_filters.ChoiceFilter(choices=EnvironmentTier.choices)
    ordering = OrderingFilter(fields=("name", "tier", "created_at", "updated_at"))

    class Meta:
        model = Environment
        fields = ["tier"]


class ProviderFilterSet(SearchFilterSet):
    type = django_filters.ChoiceFilter(choices=ProviderType.choices)
    ordering = OrderingFilter(fields=("name", "type", "created_at", "updated_at"))

    class Meta:
        model = Provider
        fields = ["type"]


class TemplateFilterSet(SearchFilterSet):
    search_fields = ("name", "description")
    tags = django_filters.CharFilter(method="filter_tags", label="Tags (comma-separated, all must match)")
    owner = django_filters.CharFilter(method="filter_owner")
    ordering = OrderingFilter(fields=("name", "created_at", "updated_at"))

    class Meta:
        model = AgentTemplate
        fields = []

    def filter_tags(self, queryset, name, value):
        return _with_tags(queryset, value)

    def filter_owner(self, queryset, name, value):
        return json_array_contains(queryset, "owners", [value.strip()])


class VersionFilterSet(SearchFilterSet):
    search_fields = ("version_label", "template__name", "genome_hash")
    template = UUIDFilter(field_name="template_id")
    lifecycle_state = MultipleChoiceFilter(choices=VersionState.choices)
    eval_status = django_filters.ChoiceFilter(choices=EvalStatus.choices)
    parent = UUIDFilter(field_name="parent_id")
    tags = django_filters.CharFilter(method="filter_tags", label="Template tags (comma-separated)")
    environment = UUIDFilter(method="filter_environment", label="Deployed to environment")
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    ordering = OrderingFilter(fields=("created_at", "updated_at", "version_label", "lifecycle_state"))

    class Meta:
        model = AgentVersion
        fields = []

    def filter_tags(self, queryset, name, value):
        return _with_tags(queryset, value, "template__tags")

    def filter_environment(self, queryset, name, value):
        return queryset.filter(pk__in=AgentInstance.objects.filter(environment_id=value).values("version_id"))


class InstanceFilterSet(SearchFilterSet):
    search_fields = ("name", "version__version_label", "version__template__name")
    state = MultipleChoiceFilter(choices=InstanceState.choices)
    version = UUIDFilter(field_name="version_id")
    template = UUIDFilter(field_name="version__template_id")
    environment = UUIDFilter(field_name="environment_id")
    environment_tier = django_filters.ChoiceFilter(field_name="environment__tier", choices=EnvironmentTier.choices)
    provider = UUIDFilter(field_name="provider_id")
    # The binding is policies' (policies.PolicyAttachment): filtered through the relation it adds.
    policy = UUIDFilter(field_name="policy_attachment__policy_id")
    health = django_filters.ChoiceFilter(choices=Health.choices, method="filter_health")
    tags = django_filters.CharFilter(method="filter_tags", label="Template tags (comma-separated)")
    ordering = OrderingFilter(fields=("created_at", "updated_at", "name", "state", "last_heartbeat_at"))

    class Meta:
        model = AgentInstance
        fields = []

    def filter_health(self, queryset, name, value):
        tenant = getattr(self.request, "arm_tenant", None)
        window = tenant.heartbeat_window_seconds if tenant else 120
        degraded_before, stale_before = health_cutoffs(timezone.now(), window)  # AgentInstance.health's rule
        if value == Health.NEVER:
            return queryset.filter(last_heartbeat_at__isnull=True)
        if value == Health.STALE:
            return queryset.filter(last_heartbeat_at__lt=stale_before)
        if value == Health.DEGRADED:
            return queryset.filter(last_heartbeat_at__gte=stale_before, last_heartbeat_at__lt=degraded_before)
        return queryset.filter(last_heartbeat_at__gte=degraded_before)

    def filter_tags(self, queryset, name, value):
        return _with_tags(queryset, value, "version__template__tags")


class EvaluationFilterSet(SearchFilterSet):
    """Evaluation results: the API's ``versions/{id}/evaluations/`` and the UI's Evaluations page."""

    search_fields = ("suite", "version__version_label", "version__template__name")
    suite = django_filters.CharFilter()
    status = django_filters.ChoiceFilter(choices=EvalStatus.choices[1:])
    ordering = OrderingFilter(fields=("created_at",))

    class Meta:
        model = EvaluationResult
        fields = ["suite", "status"]
