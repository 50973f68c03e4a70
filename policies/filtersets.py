"""Filters for policies and the decision log, shared by the API and the UI lists."""

import django_filters

from arm.filters import IntegerFilter, IsoDateTimeFilter, MultipleChoiceFilter, OrderingFilter, UUIDFilter
from policies.choices import Decision
from policies.models import PolicyDecision, PolicyEnvelope
from registry.choices import Risk
from registry.filtersets import SearchFilterSet


class PolicyFilterSet(SearchFilterSet):
    search_fields = ("name", "description")
    autonomy_tier = IntegerFilter()
    ordering = OrderingFilter(fields=("name", "autonomy_tier", "created_at", "updated_at"))

    class Meta:
        model = PolicyEnvelope
        fields = ["autonomy_tier"]


class DecisionFilterSet(SearchFilterSet):
    """The decision log is cursor-paginated newest first, so it takes no ``ordering``."""

    search_fields = ("tool",)
    instance = UUIDFilter(field_name="instance_id")
    policy = UUIDFilter(field_name="policy_id")
    approval = UUIDFilter(field_name="approval_id")
    decision = MultipleChoiceFilter(choices=Decision.choices)
    risk = MultipleChoiceFilter(choices=Risk.choices)
    tool = django_filters.CharFilter()
    since = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = PolicyDecision
        fields = []
