"""Policy API serializers: the field names of SPEC §4 and §7. They check the shape of a request (types,
ranges, unknown keys); the envelope rules (globs, limits, overrides) are the model's and the service's."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals.api.serializers import ReasonSerializer
from arm.serializers import (
    DecimalStringField,
    StrictCharField,
    StrictIntegerField,
    StrictModelSerializer,
    StrictSerializer,
    StrictUUIDField,
)
from policies.choices import Decision
from policies.models import MAX_APPROVAL_TIMEOUT_SECONDS, PolicyDecision, PolicyEnvelope
from policies.services import (
    MAX_ESTIMATE_USD,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    POLICY_FIELDS,
    SIMULATION_DEFAULT_LIMIT,
    SIMULATION_MAX_LIMIT,
)
from registry.choices import Health, Risk


def glob_list(**kwargs):
    # Whitespace is kept as sent so the model can name a malformed pattern instead of silently trimming it.
    return serializers.ListField(
        child=StrictCharField(max_length=200, allow_blank=True, trim_whitespace=False),
        max_length=200,
        required=False,
        default=list,
        **kwargs,
    )


class PolicySerializer(StrictModelSerializer):
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, default="", max_length=5000)
    autonomy_tier = StrictIntegerField(min_value=0, max_value=5)
    allowed_tools = glob_list(help_text="Glob patterns of tools the agent may call; ['*'] allows all.")
    denied_tools = glob_list(help_text="Glob patterns that win over allowed_tools.")
    data_scopes = glob_list(help_text="Glob patterns of data scopes the agent may touch.")
    cost_limit_daily_usd = DecimalStringField(
        max_digits=12, decimal_places=2, required=False, allow_null=True, default=None, help_text='USD, e.g. "25.00".'
    )
    cost_limit_monthly_usd = DecimalStringField(
        max_digits=12, decimal_places=2, required=False, allow_null=True, default=None, help_text='USD, e.g. "500.00".'
    )
    approval_timeout_seconds = StrictIntegerField(
        min_value=1, max_value=MAX_APPROVAL_TIMEOUT_SECONDS, required=False, default=3600
    )
    tool_risk_overrides = serializers.DictField(
        child=serializers.ChoiceField(choices=Risk.choices), required=False, default=dict
    )

    class Meta:
        model = PolicyEnvelope
        fields = ["id", *POLICY_FIELDS, "revision", "created_by", "created_at", "updated_at"]
        read_only_fields = ["id", "revision", "created_by", "created_at", "updated_at"]
        validators = []  # name uniqueness is the service's (and the database's)


class SimulateSerializer(PolicySerializer):
    """A proposed change: any policy fields (partial) plus ``limit``, how many recent decisions to replay."""

    limit = StrictIntegerField(
        min_value=1, max_value=SIMULATION_MAX_LIMIT, required=False, default=SIMULATION_DEFAULT_LIMIT
    )

    class Meta(PolicySerializer.Meta):
        fields = [*PolicySerializer.Meta.fields, "limit"]


class PolicyRefSerializer(serializers.Serializer):
    id = StrictUUIDField()
    revision = serializers.IntegerField()


class FlipSerializer(serializers.Serializer):
    decision_id = StrictUUIDField()
    instance = StrictUUIDField()
    tool = serializers.CharField()
    created_at = serializers.DateTimeField()
    recorded = serializers.ChoiceField(choices=Decision.choices, help_text="The decision stored at the time.")
    before = serializers.ChoiceField(choices=Decision.choices, help_text="Replayed under the envelope as it is.")
    after = serializers.ChoiceField(choices=Decision.choices, help_text="Replayed under the proposed envelope.")
    reasons = ReasonSerializer(many=True)


class DecisionCountsSerializer(serializers.Serializer):
    ALLOW = serializers.IntegerField()
    DENY = serializers.IntegerField()
    NEEDS_APPROVAL = serializers.IntegerField()


class SimulationSerializer(serializers.Serializer):
    policy = PolicyRefSerializer()
    changes = serializers.DictField(help_text="The proposed change as {field: {before, after}}.")
    evaluated = serializers.IntegerField(help_text="How many recent decisions under this policy were replayed.")
    counts = DecisionCountsSerializer(help_text="Outcomes under the proposed envelope.")
    current_counts = DecisionCountsSerializer(help_text="Outcomes under the envelope as it is.")
    flipped = serializers.IntegerField()
    flips = FlipSerializer(many=True)


class EvaluateSerializer(StrictSerializer):
    instance = StrictUUIDField(help_text="The instance about to call the tool.")
    tool = StrictCharField(max_length=200)
    params = serializers.DictField(required=False, default=dict, help_text="The call's parameters (an object).")
    data_scopes = serializers.ListField(
        child=StrictCharField(max_length=200), required=False, default=list, max_length=100
    )
    estimated_cost_usd = DecimalStringField(
        max_digits=11,
        decimal_places=4,
        max_value=MAX_ESTIMATE_USD,
        pattern=r"^([0-9]{1,6}(\.[0-9]{1,4})?|1000000(\.0{1,4})?)$",
        required=False,
        allow_null=True,
        default=None,
        help_text="Decimal string, at most 4 decimal places, 0 to 1000000.",
    )
    approval = StrictUUIDField(required=False, allow_null=True, default=None)
    idempotency_key = StrictCharField(
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="Your name for this call, per instance, for its whole life: the same key answers the same "
        "call again (replay) and finds its approval in any state; another call under it is 409 "
        "idempotency_conflict.",
    )

    def validate_params(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.", code="invalid")
        return value


class EvaluateResponseSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Decision.choices)
    risk = serializers.ChoiceField(choices=Risk.choices)
    reasons = ReasonSerializer(many=True)
    approval = StrictUUIDField(allow_null=True)
    decision_id = StrictUUIDField()
    policy = PolicyRefSerializer(allow_null=True)
    replay = serializers.BooleanField(
        help_text="True when this is the answer the idempotency_key already had: nothing was decided or counted again."
    )
    decided_by = serializers.CharField(
        allow_null=True,
        help_text='For an ALLOW through an approval, who approved it: "user:alice" or "user:alice via key:c1b3d4e5".',
    )


class DecisionSerializer(StrictModelSerializer):
    policy = serializers.SerializerMethodField()
    reasons = ReasonSerializer(many=True)

    class Meta:
        model = PolicyDecision
        fields = [
            "id",
            "instance",
            "tool",
            "params",
            "params_hash",
            "data_scopes",
            "decision",
            "risk",
            "reasons",
            "policy",
            "approval",
            "estimated_cost_usd",
            "actor",
            "duration_us",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(PolicyRefSerializer(allow_null=True))
    def get_policy(self, obj):
        if obj.policy_id is None:
            return None
        return {"id": str(obj.policy_id), "revision": obj.policy_revision}


# ---------------------------------------------------------------- runtime context (documentation of the answer)


class RuntimeContextQuerySerializer(serializers.Serializer):
    instance = StrictUUIDField(
        required=False, help_text="The instance; a key bound to one reads that one and needs no parameter."
    )


class _RefSerializer(serializers.Serializer):
    id = StrictUUIDField()
    name = serializers.CharField()


class _EnvironmentRefSerializer(_RefSerializer):
    tier = serializers.CharField()


class _ProviderRefSerializer(_RefSerializer):
    type = serializers.CharField()


class RuntimeInstanceSerializer(serializers.Serializer):
    id = StrictUUIDField()
    name = serializers.CharField()
    state = serializers.CharField()
    health = serializers.ChoiceField(choices=Health.values)
    environment = _EnvironmentRefSerializer()
    provider = _ProviderRefSerializer()


class RuntimeToolSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The manifest name: what decisions, approvals and policy globs use.")
    call_name = serializers.CharField(help_text="The name frameworks call it by; evaluate accepts either.")
    risk = serializers.ChoiceField(choices=Risk.choices, allow_null=True)
    data_scopes = serializers.ListField(child=serializers.CharField())


class RuntimeVersionSerializer(serializers.Serializer):
    id = StrictUUIDField()
    version_label = serializers.CharField()
    genome_hash = serializers.CharField()
    lifecycle_state = serializers.CharField()
    integrity_status = serializers.CharField()
    tools = RuntimeToolSerializer(many=True)


class RuntimePolicySerializer(serializers.Serializer):
    id = StrictUUIDField()
    name = serializers.CharField()
    revision = serializers.IntegerField()
    autonomy_tier = serializers.IntegerField()
    allowed_tools = serializers.ListField(child=serializers.CharField())
    denied_tools = serializers.ListField(child=serializers.CharField())
    data_scopes = serializers.ListField(child=serializers.CharField())
    tool_risk_overrides = serializers.DictField(child=serializers.CharField())
    approval_timeout_seconds = serializers.IntegerField()
    cost_limit_daily_usd = serializers.CharField(allow_null=True)
    cost_limit_monthly_usd = serializers.CharField(allow_null=True)
    tools = serializers.DictField(
        child=serializers.ChoiceField(choices=["allow", "needs_approval", "deny"]),
        help_text="Per manifest tool, what evaluate answers now for a call with no params, scopes or estimate.",
    )


class BudgetPeriodSerializer(serializers.Serializer):
    spent_usd = serializers.CharField(help_text="What the cost limit counts: the larger of estimates and usage.")
    limit_usd = serializers.CharField(allow_null=True, help_text="null: no limit.")
    remaining_usd = serializers.CharField(allow_null=True)


class RuntimeBudgetSerializer(serializers.Serializer):
    day = BudgetPeriodSerializer(help_text="Today (UTC).")
    month = BudgetPeriodSerializer(help_text="This month (UTC).")


class RuntimeContextSerializer(serializers.Serializer):
    instance = RuntimeInstanceSerializer()
    version = RuntimeVersionSerializer()
    policy = RuntimePolicySerializer(allow_null=True)
    budget = RuntimeBudgetSerializer()
