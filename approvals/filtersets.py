"""Filters for approval requests, shared by the API and the approval center."""

import django_filters

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from arm.filters import MultipleChoiceFilter
from registry.choices import Risk
from registry.filtersets import SearchFilterSet


class ApprovalFilterSet(SearchFilterSet):
    search_fields = ("tool", "requester")
    status = MultipleChoiceFilter(choices=ApprovalStatus.choices)
    instance = django_filters.UUIDFilter(field_name="instance_id")
    tool = django_filters.CharFilter()
    risk = MultipleChoiceFilter(choices=Risk.choices)
    requester = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="requested_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="requested_at", lookup_expr="lt")
    ordering = django_filters.OrderingFilter(fields=("requested_at", "expires_at", "decided_at", "risk", "status"))

    class Meta:
        model = ApprovalRequest
        fields = []
