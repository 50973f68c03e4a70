"""One FilterSet per notifications model, used by the API lists and the Notifications page."""

import django_filters
from drf_spectacular.utils import extend_schema_field

from arm.filters import IsoDateTimeFilter, MultipleChoiceFilter, OrderingFilter, UUIDFilter
from notifications.choices import DeliveryStatus, EndpointKind
from notifications.models import Delivery, Endpoint
from registry.filtersets import SearchFilterSet


@extend_schema_field({"type": "string", "enum": ["true", "false"]})
class TrueFalseFilter(django_filters.ChoiceFilter):
    """A ChoiceFilter of "true"/"false" that the schema declares a string (see ``active``)."""


class EndpointFilterSet(SearchFilterSet):
    search_fields = ("name", "url")
    kind = MultipleChoiceFilter(choices=EndpointKind.choices)
    # true/false only (django-filter's BooleanFilter ignores any other value instead of refusing it).
    # Declared a string in the schema: inferred from the model's BooleanField it was a boolean with string
    # choices, which schemathesis sends as a schema-violating value that is in fact valid.
    active = TrueFalseFilter(
        choices=[("true", "true"), ("false", "false")], method="filter_active", label="Active endpoints, or paused"
    )
    ordering = OrderingFilter(fields=("name", "kind", "created_at", "updated_at"))

    class Meta:
        model = Endpoint
        fields = []

    def filter_active(self, queryset, name, value):
        return queryset.filter(active=value == "true")


class DeliveryFilterSet(django_filters.FilterSet):
    """A delivery log: one endpoint's (``endpoint``), or the tenant's, by status and event type."""

    endpoint = UUIDFilter(field_name="endpoint_id")
    status = MultipleChoiceFilter(choices=DeliveryStatus.choices)
    event_type = django_filters.CharFilter(
        field_name="event__type", help_text="An event type, e.g. approval.requested."
    )
    since = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Delivery
        fields = []
