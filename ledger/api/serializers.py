"""Ledger API serializers. They check the shape of a request (types, unknown keys); the rules (scope and
target, thresholds, effective dates, per-entry validation of usage) are the models' and the services'."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from arm.serializers import (
    DecimalStringField,
    StrictCharField,
    StrictIntegerField,
    StrictModelSerializer,
    StrictSerializer,
    StrictUUIDField,
)
from ledger import reports
from ledger.api.costs import ForecastSerializer
from ledger.choices import BudgetPeriod, BudgetScope, CostSource
from ledger.ingest import MAX_ENTRIES_PER_BATCH
from ledger.models import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    MAX_COST_USD,
    MAX_THRESHOLD_PERCENT,
    MAX_THRESHOLDS,
    MAX_TOKENS,
    MODEL_MAX_LENGTH,
    PROVIDER_MAX_LENGTH,
    TOOL_MAX_LENGTH,
    Budget,
    BudgetAlert,
    Price,
    UsageEntry,
)


class PriceSerializer(StrictModelSerializer):
    provider = StrictCharField(max_length=PROVIDER_MAX_LENGTH, help_text='As runtimes report it, e.g. "openai".')
    model = StrictCharField(max_length=MODEL_MAX_LENGTH, help_text='e.g. "gpt-4.1".')
    input_usd_per_mtok = DecimalStringField(max_digits=12, decimal_places=6, help_text="USD per million input tokens.")
    cached_input_usd_per_mtok = DecimalStringField(
        max_digits=12,
        decimal_places=6,
        required=False,
        allow_null=True,
        default=None,
        help_text="USD per million input tokens served from the provider's prompt cache (cache reads); null: "
        "the input price.",
    )
    output_usd_per_mtok = DecimalStringField(
        max_digits=12, decimal_places=6, help_text="USD per million output tokens."
    )
    effective_from = serializers.DateField(help_text="UTC date from which this price applies.")

    class Meta:
        model = Price
        fields = [
            "id",
            "provider",
            "model",
            "input_usd_per_mtok",
            "cached_input_usd_per_mtok",
            "output_usd_per_mtok",
            "effective_from",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]
        validators = []  # uniqueness is the service's (and the database's): 409


class BudgetAlertSerializer(serializers.ModelSerializer):
    budget = serializers.UUIDField(source="budget_id", read_only=True)

    class Meta:
        model = BudgetAlert
        fields = [
            "id",
            "budget",
            "period_start",
            "threshold",
            "spend_usd",
            "amount_usd",
            "crossed_at",
            "acknowledged_by",
            "acknowledged_at",
        ]
        read_only_fields = fields


class BudgetStatusSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    period_end = serializers.DateField(help_text="Exclusive.")
    spend_usd = serializers.CharField(help_text="Actual spend so far in the current period (decimal string).")
    percent = serializers.CharField(help_text="spend_usd as a percentage of amount_usd.")
    crossed_thresholds = serializers.ListField(child=serializers.IntegerField())


class BudgetSerializer(StrictModelSerializer):
    name = StrictCharField(max_length=200)
    scope = serializers.ChoiceField(choices=BudgetScope.choices)
    template = StrictUUIDField(
        source="template_id", required=False, allow_null=True, default=None, help_text="For scope=template."
    )
    tag = StrictCharField(
        max_length=40, required=False, allow_blank=True, default="", help_text="For scope=tag: a template tag."
    )
    period = serializers.ChoiceField(choices=BudgetPeriod.choices, help_text="UTC day or calendar month.")
    amount_usd = DecimalStringField(max_digits=14, decimal_places=4, help_text='USD per period, e.g. "500.00".')
    thresholds = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=MAX_THRESHOLD_PERCENT),
        min_length=1,
        max_length=MAX_THRESHOLDS,
        required=False,
        default=lambda: [50, 80, 100],
        help_text="Alert thresholds in percent of amount_usd (default [50, 80, 100]).",
    )
    current = serializers.SerializerMethodField(help_text="The current period: spend so far and thresholds crossed.")

    class Meta:
        model = Budget
        fields = [
            "id",
            "name",
            "scope",
            "template",
            "tag",
            "period",
            "amount_usd",
            "thresholds",
            "current",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "current", "created_by", "created_at", "updated_at"]
        validators = []

    @extend_schema_field(BudgetStatusSerializer)
    def get_current(self, budget):
        status = self.context.get("status", {}).get(budget.pk)
        return status.as_dict() if status is not None else None


class BudgetDetailSerializer(BudgetSerializer):
    recent_alerts = serializers.SerializerMethodField(help_text="The 20 newest alerts of this budget.")
    forecast = serializers.SerializerMethodField(
        help_text="The current period's forecast from the run rate (ledger.forecast: mean of the last 14 complete "
        "days, 95 % band) and the day the amount is forecast to be reached (runout_date, null: not this period)."
    )

    class Meta(BudgetSerializer.Meta):
        fields = [*BudgetSerializer.Meta.fields, "recent_alerts", "forecast"]
        read_only_fields = [*BudgetSerializer.Meta.read_only_fields, "recent_alerts", "forecast"]

    @extend_schema_field(ForecastSerializer)
    def get_forecast(self, budget):
        today = timezone.now().date()
        view = reports.budget_forecast(budget, today=today, history_from=reports.first_usage_day(budget.tenant_id))
        return view.forecast.as_dict()

    @extend_schema_field(BudgetAlertSerializer(many=True))
    def get_recent_alerts(self, budget):
        return BudgetAlertSerializer(budget.alerts.order_by("-crossed_at")[:20], many=True).data


class UsageEntryInSerializer(serializers.Serializer):
    """One entry (documentation only: entries are validated one by one by the service, so a bad entry is
    rejected on its own instead of failing the batch)."""

    instance = serializers.UUIDField()
    occurred_at = serializers.DateTimeField(help_text="ISO 8601 with a time zone.")
    provider = serializers.CharField(max_length=PROVIDER_MAX_LENGTH)
    model = serializers.CharField(max_length=MODEL_MAX_LENGTH)
    input_tokens = serializers.IntegerField(
        min_value=0,
        max_value=MAX_TOKENS,
        required=False,
        help_text="Every input token of the call, those served from the provider's cache included (OpenAI's "
        "prompt_tokens; Anthropic's input_tokens + cache_read_input_tokens + cache_creation_input_tokens).",
    )
    cached_input_tokens = serializers.IntegerField(
        min_value=0,
        max_value=MAX_TOKENS,
        required=False,
        help_text="The part of input_tokens read from the provider's prompt cache, priced at the cached price "
        "(OpenAI's prompt_tokens_details.cached_tokens, Anthropic's cache_read_input_tokens). At most "
        "input_tokens.",
    )
    output_tokens = serializers.IntegerField(min_value=0, max_value=MAX_TOKENS, required=False)
    cost_usd = serializers.CharField(
        required=False,
        allow_null=True,
        help_text=f"What the call cost, if the runtime knows (decimal, USD, 0 to {MAX_COST_USD}; a priced cost "
        "has the same bound).",
    )
    tool_name = serializers.CharField(max_length=TOOL_MAX_LENGTH, required=False, allow_blank=True)
    decision = serializers.UUIDField(required=False, allow_null=True, help_text="The policy decision it followed.")
    idempotency_key = serializers.CharField(
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        help_text="Names this call for its instance (unique per instance): the same entry again is a duplicate, "
        "counted once; other content under the same key is a conflict (idempotency_conflict), not stored.",
    )


class UsageBatchInputSerializer(StrictSerializer):
    """The batch's shape only (unknown keys refused); each entry is the service's to judge, as parsed (the
    body parser has already refused what is not I-JSON, so no child field re-encodes each entry). The
    number of entries is the service's too (``MAX_ENTRIES_PER_BATCH``, 413 beyond)."""

    entries = serializers.ListField(min_length=1, allow_empty=False)


class UsageBatchSerializer(serializers.Serializer):
    """What the schema documents for ``POST /usage/``."""

    entries = UsageEntryInSerializer(many=True, max_length=MAX_ENTRIES_PER_BATCH)


class UsageResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the batch.")
    idempotency_key = serializers.CharField(allow_null=True)
    result = serializers.ChoiceField(
        choices=["accepted", "duplicate", "conflict", "rejected"],
        help_text="accepted: stored; duplicate: the same entry is already stored (a retry), counted once; "
        "conflict: the instance already used this idempotency_key for an entry with other content, nothing "
        "stored (code idempotency_conflict); rejected: invalid, nothing stored.",
    )
    id = serializers.IntegerField(required=False, help_text="The new entry (accepted).")
    cost_usd = serializers.CharField(required=False)
    cost_source = serializers.ChoiceField(choices=CostSource.choices, required=False)
    code = serializers.CharField(
        required=False,
        help_text="Why it was refused (stable code): validation_error, instance_not_found, decision_not_found, "
        "total_out_of_range (the entry would take the ledger's totals past their bounds), idempotency_conflict.",
    )
    message = serializers.CharField(required=False)
    field = serializers.CharField(required=False)


class UnpricedModelSerializer(serializers.Serializer):
    provider = serializers.CharField()
    model = serializers.CharField()
    entries = serializers.IntegerField(help_text="Entries of this batch stored unpriced.")


class UsageBatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    conflicts = serializers.IntegerField()
    rejected = serializers.IntegerField()
    unpriced = serializers.IntegerField(
        help_text="Accepted entries stored unpriced (no cost_usd sent and no price in effect for their model): "
        "kept at cost 0 with cost_source unpriced, listed on the Cost page, and priced when the tenant adds a "
        "price for the model."
    )
    unpriced_models = UnpricedModelSerializer(many=True, help_text="The models of the unpriced entries.")
    results = UsageResultSerializer(many=True)


class UsageEntrySerializer(serializers.ModelSerializer):
    """One ledger entry as stored (read only)."""

    instance = serializers.UUIDField(source="instance_id", read_only=True)
    version = serializers.UUIDField(source="version_id", read_only=True)
    template = serializers.UUIDField(source="template_id", read_only=True)
    environment = serializers.UUIDField(source="environment_id", read_only=True, allow_null=True)
    decision = serializers.UUIDField(source="decision_id", read_only=True, allow_null=True)
    cost_source = serializers.ChoiceField(
        choices=CostSource.choices,
        read_only=True,
        help_text="reported: the runtime's cost_usd; priced: tokens × the price in effect; unpriced: no price "
        "known yet (cost 0 until one is added, then priced).",
    )

    class Meta:
        model = UsageEntry
        fields = [
            "id",
            "instance",
            "version",
            "template",
            "environment",
            "occurred_at",
            "received_at",
            "provider",
            "model",
            "input_tokens",
            "cached_input_tokens",
            "output_tokens",
            "cost_usd",
            "cost_source",
            "tool_name",
            "decision",
            "source",
            "idempotency_key",
        ]
        read_only_fields = fields


__all__ = [
    "BudgetAlertSerializer",
    "BudgetDetailSerializer",
    "BudgetSerializer",
    "PriceSerializer",
    "UsageBatchInputSerializer",
    "UsageBatchResultSerializer",
    "UsageBatchSerializer",
    "UsageEntryInSerializer",
    "UsageEntrySerializer",
]
