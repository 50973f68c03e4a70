"""Registry API serializers. Field names are the integrator contract of SPEC §7. Serializers check
shape and resolve ids within the tenant; every rule beyond that is the service's."""

import orjson
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import URLValidator
from django.utils import timezone
from django.utils.functional import cached_property
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from arm.serializers import (
    PatternCharField,
    StrictCharField,
    StrictFloatField,
    StrictModelSerializer,
    StrictSerializer,
    StrictUUIDField,
    UniqueListField,
)
from arm.validators import as_uuid
from registry.choices import EvalResultStatus, InstanceState, Risk, VersionState
from registry.genome import PROMPT_HASH_RE, canonical_text, load_stored_object
from registry.models import (
    OWNER_RE,
    TAG_RE,
    AgentInstance,
    AgentTemplate,
    AgentVersion,
    Environment,
    EvaluationResult,
    Provider,
)
from registry.services import MAX_HEARTBEATS_PER_BATCH

# The API's patterns mean the same in ECMA-262 (what OpenAPI documents) and in Python: no \\w, and \\s spelled
# out with the characters one engine counts as whitespace and the other does not. The models' checks
# (TAG_RE, OWNER_RE) still run behind them.
_NOT_SPACE = r"[^@\s\x1c-\x1f\x85\ufeff]"
OWNER_PATTERN = rf"^({_NOT_SPACE}+@{_NOT_SPACE}+\.{_NOT_SPACE}+|[A-Za-z0-9_.@+-]{{1,150}})$"
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HEALTH_ENDPOINT_PATTERN = (
    rf"^https?://({_LABEL}\.)+[a-z]{{2,63}}(:[1-9][0-9]{{0,3}})?(/([A-Za-z0-9._~/-]|%[0-9A-Fa-f]{{2}})*)?$"
)
TAG_PATTERN = TAG_RE.pattern.replace(r"\Z", "$")
assert OWNER_RE.pattern.startswith("^(") and TAG_PATTERN == r"^[a-z0-9][a-z0-9-]{0,39}$"


class TenantPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """Resolves ids within the request's tenant only: another tenant's id is 'not found' (400).

    ``queryset`` names the model (``Model.objects.all()``, never a filtered one): the tenant filter is
    added here."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.queryset is not None and self.queryset.query.has_filters():
            raise ImproperlyConfigured("TenantPrimaryKeyRelatedField takes the whole table: Model.objects.all().")

    def get_queryset(self):
        return super().get_queryset().filter(tenant=self.context["tenant"])

    def run_validation(self, data=serializers.empty):
        # DRF reads "" as null for relations; an empty string is not an id (null is how to say "none").
        if data == "":
            self.to_internal_value(data)
        return super().run_validation(data)

    def to_internal_value(self, data):
        label = self.queryset.model._meta.verbose_name.capitalize()
        pk = as_uuid(data)
        if pk is None:
            raise serializers.ValidationError(f"Expected the id (UUID) of a {label.lower()}.", code="invalid")
        obj = self.get_queryset().filter(pk=pk).first()
        if obj is None:
            raise serializers.ValidationError(f"{label} not found in this tenant.", code="does_not_exist")
        return obj


class EnvironmentSerializer(StrictModelSerializer):
    config = serializers.DictField(required=False, default=dict)

    class Meta:
        model = Environment
        fields = ["id", "name", "tier", "description", "config", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators = []  # uniqueness is the service's (and the database's)


class ProviderSerializer(StrictModelSerializer):
    federation_config = serializers.DictField(required=False, default=dict)
    health_endpoint = PatternCharField(
        pattern=HEALTH_ENDPOINT_PATTERN,
        required=False,
        allow_blank=True,
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        message="An http(s) URL: scheme, host name, optional port and path.",
        help_text="http(s) URL probed for the provider's health (empty: none).",
    )

    class Meta:
        model = Provider
        fields = [
            "id",
            "name",
            "type",
            "health_endpoint",
            "health_expected_status",
            "health_expected_body",
            "health_interval_seconds",
            "health_timeout_seconds",
            "health_state",
            "health_checked_at",
            "health_status_code",
            "health_latency_ms",
            "health_reason",
            "federation_config",
            "description",
            "created_at",
            "updated_at",
        ]
        # What the last health poll found (registry.health); the worker polls health_endpoint.
        read_only_fields = [
            "id",
            "health_state",
            "health_checked_at",
            "health_status_code",
            "health_latency_ms",
            "health_reason",
            "created_at",
            "updated_at",
        ]
        validators = []


class TemplateSerializer(StrictModelSerializer):
    owners = UniqueListField(
        child=PatternCharField(pattern=OWNER_PATTERN, max_length=254, message="Owners are emails or usernames."),
        min_length=1,
        help_text="Emails or usernames, at least one, no repeats.",
    )
    tags = UniqueListField(
        child=PatternCharField(pattern=TAG_PATTERN, message="Tags are slugs: a-z, 0-9 and dashes, up to 40."),
        required=False,
        default=list,
        help_text="Slugs (lowercase letters, digits, dashes; up to 40 characters), no repeats.",
    )

    class Meta:
        model = AgentTemplate
        fields = ["id", "name", "description", "owners", "tags", "created_by", "created_at", "updated_at"]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]
        validators = []


_NON_BLANK = {"type": "string", "pattern": r"\S"}
GENOME_SCHEMA = {
    "type": "object",
    "description": "Immutable build description (README: genome rules). Any other top-level key is refused. "
    "Returned exactly as stored; a stored genome that is not one strict JSON object nested at most 100 levels "
    "(possible only for a row edited in the database) is returned as its stored text, a string.",
    "properties": {
        "model_config": {
            "type": "object",
            "properties": {"provider": _NON_BLANK, "name": _NON_BLANK, "parameters": {"type": "object"}},
            "required": ["provider", "name"],
        },
        "prompt_bundle_hash": {"type": "string", "pattern": PROMPT_HASH_RE.pattern.replace(r"\Z", "$")},
        "tool_manifest": {
            "type": "array",
            "description": "Tool names are unique within the manifest, and so are their call names (call_name, "
            "else the name with every character outside [A-Za-z0-9_-] as _).",
            "items": {
                "type": "object",
                "properties": {
                    "name": _NON_BLANK,
                    "call_name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]{0,63}$"},
                    "version": {"type": "string"},
                    "risk": {"type": "string", "enum": list(Risk.values)},
                    "data_scopes": {"type": "array", "items": _NON_BLANK},
                },
                "required": ["name"],
            },
        },
        "provenance": {"type": "object"},
    },
    "required": ["model_config", "prompt_bundle_hash", "tool_manifest"],
    "additionalProperties": False,
}


@extend_schema_field(GENOME_SCHEMA)
class GenomeField(serializers.JSONField):
    """The genome: its rules are the service's (``registry.genome.validate_genome``); documented here."""


class VersionSerializer(StrictModelSerializer):
    template = TenantPrimaryKeyRelatedField(queryset=AgentTemplate.objects.all())
    parent = TenantPrimaryKeyRelatedField(queryset=AgentVersion.objects.all(), required=False, allow_null=True)
    genome = GenomeField()

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

    @cached_property
    def _time_zone(self):
        """The request's time zone, looked up once per serializer (one child serializer renders a
        whole list)."""
        return timezone.get_current_timezone()

    def to_representation(self, obj):
        # Hand-built: lists return up to 1000 versions and DRF's generic path costs ~10x more per row.
        tz = self._time_zone
        return {
            "id": str(obj.pk),
            "template": str(obj.template_id),
            "version_label": obj.version_label,
            "genome": stored_genome_json(obj),
            "genome_hash": obj.genome_hash,
            "parent": str(obj.parent_id) if obj.parent_id else None,
            "lifecycle_state": obj.lifecycle_state,
            "eval_status": obj.eval_status,
            "created_by": obj.created_by,
            "created_at": iso(obj.created_at, tz),
            "updated_at": iso(obj.updated_at, tz),
        }


def stored_genome_json(obj):
    """A row's genome as the API returns it: the stored text itself, embedded verbatim when it is one
    JSON object any client can read back (``registry.genome.load_stored_object``: strict JSON, an object,
    nested at most 100 levels), else the stored text as a JSON string. A matching hash proves nothing
    about the text (a row edited in the database can carry a rewritten hash too), so the text is checked
    before it is embedded: it can never break the response or add keys beside ``genome``. The list reads
    it as plain text (``genome_text``, see ``VersionViewSet.get_queryset``); lists record nothing: the
    integrity verdict is the detail read's."""
    text = getattr(obj, "genome_text", None)
    if text is None:
        return genome_json(obj.genome)
    return orjson.Fragment(text) if load_stored_object(text) is not None else text


def genome_json(genome):
    """The genome exactly as stored (the RFC 8785 text its hash is computed over), embedded verbatim by
    the API's orjson renderer. A genome read back from the database is a ``CanonicalDict`` only when its
    text is a readable JSON object (``models.parse_stored_json``); any other stored text is a string."""
    if isinstance(genome, dict):
        try:
            return orjson.Fragment(canonical_text(genome))
        except ValidationError:
            return genome
    return genome


def iso(value, tz=None):
    """DRF's datetime format (UTC as 'Z') in ``tz`` (default: the current time zone). A list passes the
    zone it looked up once: looking it up per value was a fifth of a 1000-row list (profiled)."""
    if value is None:
        return None
    if tz is None:
        tz = timezone.get_current_timezone()
    if value.tzinfo is not tz:
        value = value.astimezone(tz)
    text = value.isoformat()
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


class LineageSerializer(serializers.Serializer):
    version = StrictUUIDField()
    ancestors = VersionSerializer(many=True, help_text="Up to the root, nearest first.")
    children = VersionSerializer(many=True, help_text="The direct children.")


class TransitionSerializer(StrictSerializer):
    to = StrictCharField(max_length=20)
    reason = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)


class VersionTransitionSerializer(TransitionSerializer):
    to = serializers.ChoiceField(choices=VersionState.choices)


class InstanceTransitionSerializer(TransitionSerializer):
    to = serializers.ChoiceField(choices=InstanceState.choices)


class EvaluationSerializer(StrictModelSerializer):
    status = serializers.ChoiceField(choices=EvalResultStatus.choices)
    score = StrictFloatField(required=False, allow_null=True)
    details = serializers.DictField(required=False, default=dict)

    class Meta:
        model = EvaluationResult
        fields = ["id", "version", "suite", "status", "score", "details", "created_at"]
        read_only_fields = ["id", "version", "created_at"]


class InstanceSerializer(StrictModelSerializer):
    version = TenantPrimaryKeyRelatedField(queryset=AgentVersion.objects.all())
    environment = TenantPrimaryKeyRelatedField(queryset=Environment.objects.all())
    provider = TenantPrimaryKeyRelatedField(queryset=Provider.objects.all())
    # The binding is policies' (``policies.PolicyAttachment``), read through the relation it adds to the
    # instance; only ``policies.api.instances`` writes it.
    policy = StrictUUIDField(source="policy_attachment.policy_id", required=False, allow_null=True)
    name = StrictCharField(required=False, allow_blank=True, default="", max_length=200)
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


class InstanceUpdateSerializer(StrictSerializer):
    """Instance PATCH: ``name`` and ``policy`` (attach with an id, detach with null) only."""

    name = StrictCharField(required=False, allow_blank=True, max_length=200)
    policy = StrictUUIDField(required=False, allow_null=True)


class HeartbeatSerializer(StrictSerializer):
    status = serializers.DictField(required=False, allow_null=True, default=None)

    def validate_status(self, value):
        if value is not None and len(str(value)) > 4096:
            raise serializers.ValidationError("The status object is limited to 4 KiB.")
        return value


class HeartbeatBatchSerializer(StrictSerializer):
    """``{"instances": [id, ...], "status": {...}}``: up to 1000 instance ids, one optional status for all.
    The cap is the service's (``MAX_HEARTBEATS_PER_BATCH``: more is 413 ``too_many_instances`` before any
    write); the schema documents it as ``maxItems`` (``HeartbeatBatchSchemaSerializer``)."""

    instances = serializers.ListField(child=StrictUUIDField(), min_length=1)
    status = serializers.DictField(required=False, allow_null=True, default=None)

    def validate_status(self, value):
        return HeartbeatSerializer().validate_status(value)


class HeartbeatBatchSchemaSerializer(HeartbeatBatchSerializer):
    """The request as documented: the service's cap as ``maxItems``."""

    instances = serializers.ListField(child=StrictUUIDField(), min_length=1, max_length=MAX_HEARTBEATS_PER_BATCH)


class HeartbeatItemSerializer(serializers.Serializer):
    id = StrictUUIDField()
    result = serializers.ChoiceField(choices=["ok", "not_found", "retired"])


class HeartbeatBatchResponseSerializer(serializers.Serializer):
    last_heartbeat_at = serializers.DateTimeField(help_text="The time recorded on every instance answered ok.")
    ok = serializers.IntegerField()
    not_found = serializers.IntegerField()
    retired = serializers.IntegerField()
    results = HeartbeatItemSerializer(many=True, help_text="One entry per distinct id, in the order given.")


class HeartbeatResponseSerializer(serializers.Serializer):
    id = StrictUUIDField()
    last_heartbeat_at = serializers.DateTimeField()
    health = serializers.CharField()
