"""The API keys list's filters: by the instance a key is bound to (a runtime's keys, which retiring the
instance revokes) and by whether it is revoked."""

import django_filters

from arm.filters import OrderingFilter, UUIDFilter
from arm.models import ApiKey


class ApiKeyFilterSet(django_filters.FilterSet):
    instance = UUIDFilter(field_name="instance_id", label="Keys bound to this instance")
    revoked = django_filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)
    ordering = OrderingFilter(fields=("created_at", "name", "last_used_at"))

    class Meta:
        model = ApiKey
        fields = []
