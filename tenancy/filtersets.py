"""The API keys list's filters: by the instance a key is bound to (a runtime's keys, which retiring the
instance revokes) and by whether it is revoked."""

import django_filters

from arm.filters import OrderingFilter, UUIDFilter
from tenancy.models import ApiKey


class ApiKeyFilterSet(django_filters.FilterSet):
    # The binding is registry's (registry.InstanceKey): filtered through the relation it adds to the key.
    instance = UUIDFilter(field_name="instance_binding__instance_id", label="Keys bound to this instance")
    # "true" / "false" only (django-filter's BooleanFilter ignores any other value instead of refusing it)
    revoked = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")], method="filter_revoked", label="Revoked keys only, or none"
    )
    ordering = OrderingFilter(fields=("created_at", "name", "last_used_at"))

    class Meta:
        model = ApiKey
        fields = []

    def filter_revoked(self, queryset, name, value):
        return queryset.filter(revoked_at__isnull=value == "false")
