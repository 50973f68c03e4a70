"""Audit filters shared by the API and the UI: event type, target, actor, time range."""

import django_filters

from arm.filters import IsoDateTimeFilter, MultipleChoiceFilter
from audit.choices import EventType
from audit.models import ChangeRecord


class ChangeRecordFilterSet(django_filters.FilterSet):
    event_type = MultipleChoiceFilter(choices=EventType.choices)
    target_type = django_filters.CharFilter()
    target_id = django_filters.CharFilter()
    actor = django_filters.CharFilter()
    since = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = ChangeRecord
        fields = ["event_type", "target_type", "target_id", "actor"]
