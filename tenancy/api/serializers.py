"""API key serializers: what a key shows (never its secret), and the one response that carries the secret."""

from rest_framework import serializers

from arm.serializers import StrictModelSerializer, StrictUUIDField
from tenancy.choices import Role
from tenancy.models import ApiKey


class ApiKeySerializer(StrictModelSerializer):
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices), min_length=1)
    # The instance the key is bound to: registry's binding (``registry.InstanceKey``), read through the
    # relation it adds to the key; only ``registry.api.keys`` writes it.
    instance = StrictUUIDField(source="instance_binding.instance_id", required=False, allow_null=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "roles", "instance", "created_by", "created_at", "revoked_at", "last_used_at"]
        read_only_fields = ["id", "prefix", "created_by", "created_at", "revoked_at", "last_used_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret. Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
