"""Audit filters shared by the API and the UI: event type, target, actor, time range."""

import django_filters

from arm.filters import IsoDateTimeFilter, MultipleChoiceFilter
from audit.choices import EventType, event_choices
from audit.models import ChangeRecord


class ChangeRecordFilterSet(django_filters.FilterSet):
    # An event type finds its records under older names too (audit.choices.ALIASES, docs/audit.md).
    event_type = MultipleChoiceFilter(choices=event_choices, method="filter_event_type")
    target_type = django_filters.CharFilter()
    target_id = django_filters.CharFilter()
    actor = django_filters.CharFilter()
    since = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = ChangeRecord
        fields = ["event_type", "target_type", "target_id", "actor"]

    def filter_event_type(self, queryset, name, value):
        if not value:
            return queryset
        names = sorted({equivalent for event in value for equivalent in EventType.equivalents(event)})
        return queryset.filter(event_type__in=names)
