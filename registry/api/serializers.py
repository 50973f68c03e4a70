"""Registry API serializers. Field names are the integrator contract of SPEC §7. Serializers check
shape and resolve ids within the tenant; every rule beyond that is the service's."""

import uuid

import orjson
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework import serializers

from registry.choices import EvalResultStatus, InstanceState, VersionState
from registry.genome import canonical_text
from registry.models import AgentInstance, AgentTemplate, AgentVersion, Environment, EvaluationResult, Provider


class TenantPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """Resolves ids within the request's tenant only: another tenant's id is 'not found' (400)."""

    def get_queryset(self):
        return super().get_queryset().filter(tenant=self.context["tenant"])

    def to_internal_value(self, data):
        label = self.queryset.model._meta.verbose_name.capitalize()
        try:
            pk = uuid.UUID(str(data)) if not isinstance(data, dict | list | bool) else None
        except ValueError:
            pk = None
        if pk is None:
            raise serializers.ValidationError(f"Expected the id (UUID) of a {label.lower()}.", code="invalid")
        obj = self.get_queryset().filter(pk=pk).first()
        if obj is None:
            raise serializers.ValidationError(f"{label} not found in this tenant.", code="does_not_exist")
        return obj


class EnvironmentSerializer(serializers.ModelSerializer):
    config = serializers.DictField(required=False, default=dict)

    class Meta:
        model = Environment
        fields = ["id", "name", "tier", "description", "config", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators = []  # uniqueness is the service's (and the database's)


class ProviderSerializer(serializers.ModelSerializer):
    federation_config = serializers.DictField(required=False, default=dict)
    health_endpoint = serializers.URLField(required=False, allow_blank=True, max_length=500)

    class Meta:
        model = Provider
        fields = [
            "id",
            "name",
            "type",
            "health_endpoint",
            "federation_config",
            "description",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators = []


class TemplateSerializer(serializers.ModelSerializer):
    owners = serializers.ListField(child=serializers.CharField(max_length=254), min_length=1)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list)

    class Meta:
        model = AgentTemplate
        fields = ["id", "name", "description", "owners", "tags", "created_by", "created_at", "updated_at"]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]
        validators = []


class VersionSerializer(serializers.ModelSerializer):
    template = TenantPrimaryKeyRelatedField(queryset=AgentTemplate.objects.all())
    parent = TenantPrimaryKeyRelatedField(queryset=AgentVersion.objects.all(), required=False, allow_null=True)
    genome = serializers.JSONField()
    version_label = serializers.CharField(max_length=100)

    class Meta:
        model = AgentVersion
        fields = [
            "id",
            "template",
            "version_label",
            "genome",
            "genome_hash",
            "parent",
            "lifecycle_state",
            "eval_status",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "genome_hash",
            "lifecycle_state",
            "eval_status",
            "created_by",
            "created_at",
            "updated_at",
        ]
        validators = []

    def to_representation(self, obj):
        # Hand-built: lists return up to 1000 versions and DRF's generic path costs ~10x more per row.
        return {
            "id": str(obj.pk),
            "template": str(obj.template_id),
            "version_label": obj.version_label,
            "genome": genome_json(obj.genome),
            "genome_hash": obj.genome_hash,
            "parent": str(obj.parent_id) if obj.parent_id else None,
            "lifecycle_state": obj.lifecycle_state,
            "eval_status": obj.eval_status,
            "created_by": obj.created_by,
            "created_at": iso(obj.created_at),
            "updated_at": iso(obj.updated_at),
        }


def genome_json(genome):
    """The genome exactly as stored (the RFC 8785 text its hash is computed over), embedded verbatim by
    the API's orjson renderer. Stored text that no longer parses (tampering) is returned as a string."""
    if isinstance(genome, dict):
        try:
            return orjson.Fragment(canonical_text(genome))
        except ValidationError:
            return genome
    return genome


def iso(value):
    """DRF's datetime format (UTC as 'Z')."""
    if value is None:
        return None
    text = timezone.localtime(value, timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class IntegritySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["VERIFIED", "TAMPERED"])
    stored_hash = serializers.CharField()
    computed_hash = serializers.CharField()
    checked_at = serializers.DateTimeField()


class VersionDetailSerializer(VersionSerializer):
    integrity = serializers.SerializerMethodField()

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "integrity"]

    def get_integrity(self, obj) -> IntegritySerializer:
        result = self.context.get("integrity")
        return IntegritySerializer(result.as_dict()).data if result else None

    def to_representation(self, obj):
        return {**super().to_representation(obj), "integrity": self.get_integrity(obj)}


class TransitionSerializer(serializers.Serializer):
    to = serializers.CharField(max_length=20)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class VersionTransitionSerializer(TransitionSerializer):
    to = serializers.ChoiceField(choices=VersionState.choices)


class InstanceTransitionSerializer(TransitionSerializer):
    to = serializers.ChoiceField(choices=InstanceState.choices)


class EvaluationSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=EvalResultStatus.choices)
    score = serializers.FloatField(required=False, allow_null=True)
    details = serializers.DictField(required=False, default=dict)

    class Meta:
        model = EvaluationResult
        fields = ["id", "version", "suite", "status", "score", "details", "created_at"]
        read_only_fields = ["id", "version", "created_at"]


class InstanceSerializer(serializers.ModelSerializer):
    version = TenantPrimaryKeyRelatedField(queryset=AgentVersion.objects.all())
    environment = TenantPrimaryKeyRelatedField(queryset=Environment.objects.all())
    provider = TenantPrimaryKeyRelatedField(queryset=Provider.objects.all())
    policy = serializers.UUIDField(source="policy_id", required=False, allow_null=True)
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    health = serializers.SerializerMethodField()

    class Meta:
        model = AgentInstance
        fields = [
            "id",
            "version",
            "environment",
            "provider",
            "policy",
            "name",
            "state",
            "last_heartbeat_at",
            "health",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "state", "last_heartbeat_at", "health", "created_at", "updated_at"]

    def get_health(self, obj) -> str:
        tenant = self.context["tenant"]
        now = self.context.setdefault("now", timezone.now())
        return obj.health(now, tenant.heartbeat_window_seconds)


class InstanceUpdateSerializer(serializers.Serializer):
    """Instance PATCH: ``name`` and ``policy`` (attach with an id, detach with null) only."""

    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    policy = serializers.UUIDField(required=False, allow_null=True)


class HeartbeatSerializer(serializers.Serializer):
    status = serializers.DictField(required=False, allow_null=True, default=None)

    def validate_status(self, value):
        if value is not None and len(str(value)) > 4096:
            raise serializers.ValidationError("The status object is limited to 4 KiB.")
        return value


class HeartbeatResponseSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    last_heartbeat_at = serializers.DateTimeField()
    health = serializers.CharField()
