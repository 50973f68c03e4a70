"""Filters for approval requests, shared by the API and the approval center."""

import django_filters
from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from approvals.selectors import status_q
from arm.filters import IsoDateTimeFilter, MultipleChoiceFilter, OrderingFilter, UUIDFilter
from registry.choices import Risk
from registry.filtersets import SearchFilterSet


class ApprovalFilterSet(SearchFilterSet):
    search_fields = ("tool", "requester")
    status = MultipleChoiceFilter(
        choices=ApprovalStatus.choices, method="filter_status", help_text="As of now: overdue PENDING reads EXPIRED."
    )
    instance = UUIDFilter(field_name="instance_id")
    tool = django_filters.CharFilter()
    risk = MultipleChoiceFilter(choices=Risk.choices)
    requester = django_filters.CharFilter()
    idempotency_key = django_filters.CharFilter(help_text="The request opened for this idempotency key.")
    since = IsoDateTimeFilter(field_name="requested_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="requested_at", lookup_expr="lt")
    ordering = OrderingFilter(fields=("requested_at", "expires_at", "decided_at", "risk", "status"))

    class Meta:
        model = ApprovalRequest
        fields = []

    def filter_status(self, queryset, name, value):
        return queryset.filter(status_q(value, timezone.now())) if value else queryset
