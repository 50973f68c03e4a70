"""Filters for policies and the decision log, shared by the API and the UI lists."""

import django_filters

from arm.filters import IntegerFilter, MultipleChoiceFilter
from policies.choices import Decision
from policies.models import PolicyDecision, PolicyEnvelope
from registry.choices import Risk
from registry.filtersets import SearchFilterSet


class PolicyFilterSet(SearchFilterSet):
    search_fields = ("name", "description")
    autonomy_tier = IntegerFilter()
    ordering = django_filters.OrderingFilter(fields=("name", "autonomy_tier", "created_at", "updated_at"))

    class Meta:
        model = PolicyEnvelope
        fields = ["autonomy_tier"]


class DecisionFilterSet(SearchFilterSet):
    """The decision log is cursor-paginated newest first, so it takes no ``ordering``."""

    search_fields = ("tool",)
    instance = django_filters.UUIDFilter(field_name="instance_id")
    policy = django_filters.UUIDFilter(field_name="policy_id")
    approval = django_filters.UUIDFilter(field_name="approval_id")
    decision = MultipleChoiceFilter(choices=Decision.choices)
    risk = MultipleChoiceFilter(choices=Risk.choices)
    tool = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = PolicyDecision
        fields = []
