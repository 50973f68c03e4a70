"""The economic ledger: what agent runtimes really spent, priced, rolled up per day and held against
budgets.

- ``UsageEntry`` is the ledger itself: one model call reported by a runtime, append-only (database
  triggers refuse UPDATE and DELETE on SQLite and PostgreSQL, migrations 0002 and 0012). One update is
  allowed, once: an *unpriced* entry (no cost reported, no price known) gets its cost when a price for
  its model arrives (``ledger.prices.price_create``): the trigger lets ``cost_usd`` and
  ``cost_source`` change from ``unpriced`` to ``priced`` and nothing else, so a priced or reported
  cost is never rewritten and the entry stays the one row of that call (no compensating entry to
  count twice).
- ``DailyRollup`` holds per (tenant, day, instance, provider, model) sums, kept in the same transaction
  as the entry inserts, so reports never scan entries and sum(rollups) == sum(entries) always.
- Two more rollups of the same entries, upserted in the same statement batch, keep reports independent
  of the fleet's size (``ledger.reports``): ``TemplateDayRollup`` (per day, template, environment,
  provider and model: rows grow with templates, not instances) for budgets, bucket totals and every
  grouping but instance and version; ``InstanceSpanRollup`` (per instance over aligned blocks of
  2**level days) for those two, so a range of days is read as a few blocks per instance, not a row per
  instance and day.
- ``Price`` is the tenant's price table with effective dates; ``Budget`` / ``BudgetAlert`` the budgets
  and the thresholds they crossed (once per period, settled by a unique constraint).

Entries and rollups are deliberately *unrecorded* writes (no change record each): the entries are
themselves the record, and each accepted batch writes one ``USAGE_INGESTED`` change record with its
counts. Prices and budgets are recorded on every change, and every crossed threshold too.

Bounds, so that no sum can overflow its column and block a batch, or every later batch of a tenant:

- One entry: at most ``MAX_TOKENS`` (10**9, a hundred times the largest context window) input and as
  many output tokens, and at most ``MAX_COST_USD`` ($1,000,000), reported or priced (``ledger.ingest``).
- Money sums that add up an unbounded number of rows (the rollups' ``cost_usd``, a budget alert's
  spend) are ``numeric(30, 6)``: filling one takes 10**18 entries at the largest cost.
- One instance's spend over one ``InstanceSpanRollup`` block (up to 128 days) is at most
  ``MAX_SPAN_COST_USD`` ($10**11), and its tokens at most ``MAX_ROLLUP_TOKENS`` (10**18, within a
  bigint); a template's tokens of one day and model likewise. Check constraints hold these in the
  database. The instance's day and month spend counters (``policies.InstanceSpend.actual_usd``,
  ``numeric(18, 6)``) are sums of at most two such blocks, so they stay in range too.
- An entry that would take a total past its bound is refused on its own (``total_out_of_range``); the
  rest of its batch, and the tenant's later batches, go through.
"""

import copy
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models

from arm.models import Recorded, RecordedModel, Unrecorded
from arm.validators import validate_name
from ledger.choices import BudgetPeriod, BudgetScope, CostSource, UsageSource
from registry.models import TAG_RE

MAX_THRESHOLDS = 10
MAX_THRESHOLD_PERCENT = 1000
PROVIDER_MAX_LENGTH = 100
MODEL_MAX_LENGTH = 200
TOOL_MAX_LENGTH = 200
IDEMPOTENCY_KEY_MAX_LENGTH = 200
# Usage that occurred before this UTC day is refused at ingestion, so no report needs to look earlier.
LEDGER_FIRST_DAY = date(2000, 1, 1)
MAX_TOKENS = 10**9  # input or output tokens of one entry
MAX_COST_USD = Decimal("1000000")  # one entry's cost
MAX_SPAN_COST_USD = Decimal(10**11)  # one instance's spend in one InstanceSpanRollup block
MAX_ROLLUP_TOKENS = 10**18  # a rollup row's input or output tokens
MONEY_SUM_DIGITS = 30  # max_digits of money columns that sum an unbounded number of entries


def normalize_provider(provider: str) -> str:
    """A provider name as the ledger stores and matches it: lowercase (``Anthropic`` is ``anthropic``)."""
    return provider.lower()


class Price(RecordedModel):
    """The tenant's list price of one provider's model, per million input, cached input and output
    tokens, from ``effective_from`` (a UTC date) until the next row of the same (provider, model). The
    price in effect at ``t`` is the row with the greatest ``effective_from <= t.date()``
    (``ledger.pricing.price_in_effect``). ``provider`` is stored lowercase (``clean``), as usage
    entries store theirs. ``cached_input_usd_per_mtok`` prices input tokens served from the provider's
    prompt cache; null means the model has no cache discount (cached tokens cost the input price)."""

    audit = Recorded("PRICE")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    provider = models.CharField(max_length=PROVIDER_MAX_LENGTH, validators=[validate_name])
    model = models.CharField(max_length=MODEL_MAX_LENGTH, validators=[validate_name])
    input_usd_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    cached_input_usd_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    output_usd_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    effective_from = models.DateField()
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "model", "-effective_from"]
        constraints = [
            # Also the index the effective-date lookup walks (tenant, provider, model, effective_from desc).
            models.UniqueConstraint(
                fields=["tenant", "provider", "model", "effective_from"],
                name="price_unique_per_model_and_date",
                violation_error_message="This model already has a price from this date.",
            ),
            models.CheckConstraint(
                condition=models.Q(input_usd_per_mtok__gte=0) & models.Q(output_usd_per_mtok__gte=0),
                name="price_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(cached_input_usd_per_mtok__isnull=True) | models.Q(cached_input_usd_per_mtok__gte=0),
                name="price_cached_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} from {self.effective_from}"

    def clean(self) -> None:
        if isinstance(self.provider, str):
            self.provider = normalize_provider(self.provider)
        errors = {}
        for field in ("input_usd_per_mtok", "cached_input_usd_per_mtok", "output_usd_per_mtok"):
            value = getattr(self, field)
            if isinstance(value, Decimal | int) and value < 0:
                errors[field] = "A price cannot be negative."
        if errors:
            raise ValidationError(errors)

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> Decimal:
        """Tokens × this price, in USD (6 decimal places, like ``UsageEntry.cost_usd``): the input tokens
        not served from cache at the input price, the cached ones (a part of ``input_tokens``) at the
        cached price (the input price when the row has none), the output tokens at the output price."""
        cached_price = self.cached_input_usd_per_mtok
        if cached_price is None:
            cached_price = self.input_usd_per_mtok
        total = (
            (input_tokens - cached_input_tokens) * self.input_usd_per_mtok
            + cached_input_tokens * cached_price
            + output_tokens * self.output_usd_per_mtok
        ) / Decimal(1_000_000)
        return total.quantize(Decimal("0.000001"))


class UsageEntry(models.Model):
    """One model call as a runtime reported it, priced at ingestion. Append-only in the database, but for
    the cost of an unpriced entry, set once when its price arrives (module docstring).

    ``version``, ``template`` and ``environment`` are copied from the instance when the entry is
    ingested, so attribution never joins through the registry and stays what it was at that moment."""

    audit = Unrecorded(
        "the ledger is itself the record of usage (append-only, enforced by triggers); each accepted batch "
        "writes one USAGE_INGESTED record with its counts, source, instances, cost and time range",
        events=("USAGE_INGESTED",),
    )

    id = models.BigAutoField(primary_key=True)
    # Foreign keys that no query looks up by are not indexed: every index costs insert throughput.
    tenant = models.ForeignKey("arm.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    instance = models.ForeignKey(
        "registry.AgentInstance", on_delete=models.PROTECT, related_name="usage_entries", db_index=False
    )
    version = models.ForeignKey("registry.AgentVersion", on_delete=models.PROTECT, related_name="+", db_index=False)
    template = models.ForeignKey("registry.AgentTemplate", on_delete=models.PROTECT, related_name="+", db_index=False)
    environment = models.ForeignKey(
        "registry.Environment", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    provider = models.CharField(max_length=PROVIDER_MAX_LENGTH)
    model = models.CharField(max_length=MODEL_MAX_LENGTH)
    input_tokens = models.PositiveBigIntegerField(default=0)
    # The part of input_tokens served from the provider's prompt cache (priced at the cached price).
    cached_input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=16, decimal_places=6)
    cost_source = models.CharField(max_length=10, choices=CostSource.choices)
    tool_name = models.CharField(max_length=TOOL_MAX_LENGTH, blank=True)
    decision = models.ForeignKey(
        "policies.PolicyDecision", null=True, blank=True, on_delete=models.PROTECT, related_name="usage_entries"
    )
    source = models.CharField(max_length=5, choices=UsageSource.choices)
    idempotency_key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)

    class Meta:
        ordering = ["-occurred_at"]
        verbose_name_plural = "usage entries"
        constraints = [
            # Settles retries in the database: a batch sent twice inserts nothing the second time. A key is
            # the instance's own: another instance's runtime cannot claim it (ledger.ingest).
            models.UniqueConstraint(
                fields=["tenant", "instance", "idempotency_key"], name="usage_unique_idempotency_key_per_instance"
            ),
            models.CheckConstraint(condition=models.Q(cost_usd__gte=0), name="usage_cost_not_negative"),
            models.CheckConstraint(condition=models.Q(cost_source__in=CostSource.values), name="usage_cost_source"),
            models.CheckConstraint(condition=models.Q(source__in=UsageSource.values), name="usage_source_valid"),
            models.CheckConstraint(
                condition=models.Q(cached_input_tokens__lte=models.F("input_tokens")), name="usage_cached_within_input"
            ),
        ]
        indexes = [
            # newest-first listing per tenant, and per instance (drill-down)
            models.Index(fields=["tenant", "-occurred_at"], name="usage_tenant_occurred"),
            models.Index(fields=["instance", "-occurred_at"], name="usage_instance_occurred"),
            # The unpriced entries alone (the Cost page's list, repricing when a price arrives): partial, so
            # priced entries pay nothing for it.
            models.Index(
                fields=["tenant", "provider", "model"],
                condition=models.Q(cost_source=CostSource.UNPRICED),
                name="usage_unpriced",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.input_tokens}+{self.output_tokens} tok ${self.cost_usd}"


class DailyRollup(models.Model):
    """Sums of the entries of one UTC day, instance, provider and model (template, version and
    environment follow from the instance at ingestion). Upserted with increments in the transaction
    that inserts the entries; never written otherwise."""

    audit = Unrecorded("a sum of ledger entries, maintained in the same transaction as the entries it sums")

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("arm.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    day = models.DateField()
    template = models.ForeignKey("registry.AgentTemplate", on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey("registry.AgentVersion", on_delete=models.PROTECT, related_name="+")
    instance = models.ForeignKey("registry.AgentInstance", on_delete=models.PROTECT, related_name="daily_rollups")
    environment = models.ForeignKey(
        "registry.Environment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    provider = models.CharField(max_length=PROVIDER_MAX_LENGTH)
    model = models.CharField(max_length=MODEL_MAX_LENGTH)
    entries = models.PositiveBigIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=MONEY_SUM_DIGITS, decimal_places=6, default=0)

    class Meta:
        ordering = ["-day"]
        constraints = [
            # The upsert's conflict target; its leading (tenant, day) also serves every report's range scan.
            models.UniqueConstraint(
                fields=["tenant", "day", "instance", "provider", "model"], name="rollup_one_row_per_group"
            ),
        ]
        indexes = [
            # budgets and reports scoped to one template over a range of days
            models.Index(fields=["tenant", "template", "day"], name="rollup_tenant_template_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.provider}/{self.model}: {self.entries} entries ${self.cost_usd}"


ROLLUP_EPOCH = date(2000, 1, 3)  # block boundaries of InstanceSpanRollup count days from here
MAX_SPAN_LEVEL = 7  # blocks of 1, 2, 4 ... 128 days: a range of up to 366 days is at most 14 blocks


def span_start(day: date, level: int) -> date:
    """The first day of the aligned block of 2**level days that contains ``day``."""
    n = (day - ROLLUP_EPOCH).days
    return day - timedelta(days=n % (1 << level))


def span_blocks(since: date, until: date) -> list[tuple[int, date]]:
    """``[since, until]`` (inclusive) as the fewest aligned blocks, (level, start), oldest first: each
    block the largest one that starts at that day and fits (at most two per level)."""
    blocks, day = [], since
    while day <= until:
        n = (day - ROLLUP_EPOCH).days
        level = 0
        while (
            level < MAX_SPAN_LEVEL
            and n % (1 << (level + 1)) == 0
            and day + timedelta(days=(1 << (level + 1)) - 1) <= until
        ):
            level += 1
        blocks.append((level, day))
        day += timedelta(days=1 << level)
    return blocks


ROLLUP_SUM_FIELDS = ("cost_usd", "entries", "input_tokens", "output_tokens")


class _RollupSums(models.Model):
    entries = models.PositiveBigIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=MONEY_SUM_DIGITS, decimal_places=6, default=0)

    class Meta:
        abstract = True


def _tokens_in_range(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=models.Q(input_tokens__lte=MAX_ROLLUP_TOKENS, output_tokens__lte=MAX_ROLLUP_TOKENS), name=name
    )


# The check constraints that bound a rollup row's sums ("Bounds" above): ingestion refuses an entry that
# would break one, by name.
BOUND_CONSTRAINTS = {
    "span_cost_in_range": "cost_usd",
    "span_tokens_in_range": "tokens",
    "tday_tokens_in_range": "tokens",
}


class TemplateDayRollup(_RollupSums):
    """The entries of one UTC day per template, environment, provider and model. Budgets, the per-bucket
    totals of every report and the groupings by template, environment, provider, model, tag and owner
    read it: a tenant with 10,000 instances of 300 templates has about 600 rows a day here, against
    20,000 in ``DailyRollup``. Upserted with the entries; never written otherwise."""

    audit = Unrecorded("a sum of ledger entries, maintained in the same transaction as the entries it sums")

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("arm.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    day = models.DateField()
    template = models.ForeignKey("registry.AgentTemplate", on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey("registry.Environment", on_delete=models.PROTECT, related_name="+")
    provider = models.CharField(max_length=PROVIDER_MAX_LENGTH)
    model = models.CharField(max_length=MODEL_MAX_LENGTH)

    class Meta:
        ordering = ["-day"]
        constraints = [
            # The upsert's conflict target; its leading (tenant, day) serves the reports' and budgets'
            # range scans.
            models.UniqueConstraint(
                fields=["tenant", "day", "template", "environment", "provider", "model"],
                name="tday_one_row_per_group",
            ),
            _tokens_in_range("tday_tokens_in_range"),
        ]
        indexes = [
            # Every report's per-bucket totals (all groups, optionally one template or environment): read
            # from the index alone on PostgreSQL, not from the table's pages.
            models.Index(
                fields=["tenant", "day"],
                include=["template", "environment", "cost_usd", "entries"],
                name="tday_totals_cover",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.provider}/{self.model}: {self.entries} entries ${self.cost_usd}"


class CoveringUniqueConstraint(models.UniqueConstraint):
    """A unique constraint whose index also carries ``include`` columns where the database can (PostgreSQL),
    and is the plain unique constraint where it cannot (SQLite): Django would create no constraint at
    all there (models.W039), and uniqueness is what ``ON CONFLICT`` and the ledger rely on."""

    def _for(self, schema_editor) -> models.UniqueConstraint:
        if schema_editor.connection.features.supports_covering_indexes:
            return self
        plain = copy.copy(self)
        plain.include = ()
        return plain

    def constraint_sql(self, model, schema_editor):
        return super(CoveringUniqueConstraint, self._for(schema_editor)).constraint_sql(model, schema_editor)

    def create_sql(self, model, schema_editor):
        return super(CoveringUniqueConstraint, self._for(schema_editor)).create_sql(model, schema_editor)

    def remove_sql(self, model, schema_editor):
        return super(CoveringUniqueConstraint, self._for(schema_editor)).remove_sql(model, schema_editor)

    def _check(self, model, connection):
        # models.W039 says the constraint will not be created without covering indexes; here it is.
        return [error for error in super()._check(model, connection) if error.id != "models.W039"]


class InstanceSpanRollup(_RollupSums):
    """The entries of one instance over the aligned block of 2**``level`` days starting at ``start``
    (level 0 is a day; ``span_start``/``span_blocks``), every model together. An instance's version,
    template and environment never change, so they are carried, not keyed. A report by instance or
    version over any range reads at most two blocks per level (``span_blocks``) instead of a row per
    instance and day. Upserted with the entries (one row per level); never written otherwise."""

    audit = Unrecorded("a sum of ledger entries, maintained in the same transaction as the entries it sums")

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("arm.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    level = models.PositiveSmallIntegerField()
    start = models.DateField()
    # instance and version are indexed by the (instance | version, level, start) indexes below
    instance = models.ForeignKey("registry.AgentInstance", on_delete=models.PROTECT, related_name="+", db_index=False)
    version = models.ForeignKey("registry.AgentVersion", on_delete=models.PROTECT, related_name="+", db_index=False)
    template = models.ForeignKey("registry.AgentTemplate", on_delete=models.PROTECT, related_name="+", db_index=False)
    environment = models.ForeignKey("registry.Environment", on_delete=models.PROTECT, related_name="+", db_index=False)

    class Meta:
        ordering = ["level", "-start"]
        constraints = [
            # The range's blocks for every instance at once (ranking by instance or version, filtered by
            # template or environment), read from this index alone on PostgreSQL: it carries what the
            # ranking reads. One index for both jobs, because no update of a span row is HOT (the sums
            # ride in the series indexes below), so each index is one more entry written per row and batch.
            CoveringUniqueConstraint(
                fields=["tenant", "level", "start", "instance"],
                include=["version", "template", "environment", "cost_usd"],
                name="span_one_row_per_block",
            ),
            models.CheckConstraint(
                condition=models.Q(level__gte=0, level__lte=MAX_SPAN_LEVEL), name="span_level_in_range"
            ),
            models.CheckConstraint(condition=models.Q(cost_usd__lte=MAX_SPAN_COST_USD), name="span_cost_in_range"),
            _tokens_in_range("span_tokens_in_range"),
        ]
        # The top groups' daily series: a few instances' level-0 rows over a range (a version's series is
        # its instances' rows: ``ledger.reports._series_instances``). Those rows lie on as many pages as
        # days, so on PostgreSQL the sums ride in the index (an index-only scan, not a page read per row).
        # SQLite ignores an index's ``include`` (hence models.W040 silenced in settings). Each index here is
        # one more entry written per span row and batch (no update of a span row is HOT): a second series
        # index by version cost a fleet-wide ingestion batch a fifth of its time, so there is none.
        indexes = [
            # The series' filters (tenant, and template or environment when the report has one) and the
            # version it groups by ride along too: a column missing from the index makes every row a page
            # read again.
            models.Index(
                fields=["instance", "level", "start"],
                include=[*ROLLUP_SUM_FIELDS, "tenant", "version", "template", "environment"],
                name="span_instance_series_cover",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.start} ×{1 << self.level}d: {self.entries} entries ${self.cost_usd}"


def validate_thresholds(value) -> list[str]:
    """Problems with a budget's threshold list (empty when it is fine)."""
    if not isinstance(value, list) or not value:
        return ["Give a list of whole percentages, for example [50, 80, 100]."]
    if len(value) > MAX_THRESHOLDS:
        return [f"At most {MAX_THRESHOLDS} thresholds."]
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_THRESHOLD_PERCENT for v in value):
        return [f"Each threshold is a whole percentage from 1 to {MAX_THRESHOLD_PERCENT}."]
    if len(set(value)) != len(value):
        return ["Thresholds must not repeat."]
    return []


class Budget(RecordedModel):
    """A spending budget for the whole tenant, one template or every template with a tag, per UTC day
    or calendar month, with alert thresholds in percent of ``amount_usd``."""

    audit = Recorded(
        "BUDGET",
        # BUDGET_FORECAST_CROSSING: the forecast says the amount is reached before the period ends, once per
        # period (the budget_alerts schedule, schedules.budgets).
        events=("BUDGET_THRESHOLD_CROSSED", "BUDGET_ALERT_ACKNOWLEDGED", "BUDGET_FORECAST_CROSSING"),
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200, validators=[validate_name])
    scope = models.CharField(max_length=10, choices=BudgetScope.choices)
    template = models.ForeignKey(
        "registry.AgentTemplate", null=True, blank=True, on_delete=models.PROTECT, related_name="budgets"
    )
    tag = models.CharField(max_length=40, blank=True)
    period = models.CharField(max_length=10, choices=BudgetPeriod.choices)
    # 14 digits (up to 9,999,999,999.9999): SQLite keeps decimals as binary floats, exact to 15 digits.
    amount_usd = models.DecimalField(max_digits=14, decimal_places=4)
    thresholds = models.JSONField(default=list)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="budget_unique_name_per_tenant",
                violation_error_message="A budget with this name already exists.",
            ),
            models.CheckConstraint(condition=models.Q(amount_usd__gt=0), name="budget_amount_positive"),
            models.CheckConstraint(condition=models.Q(period__in=BudgetPeriod.values), name="budget_period_valid"),
            models.CheckConstraint(
                condition=(
                    models.Q(scope=BudgetScope.TENANT, template__isnull=True, tag="")
                    | models.Q(scope=BudgetScope.TEMPLATE, template__isnull=False, tag="")
                    | (models.Q(scope=BudgetScope.TAG, template__isnull=True) & ~models.Q(tag=""))
                ),
                name="budget_scope_matches_target",
                violation_error_message="A tenant budget has no template or tag, a template budget a template, "
                "a tag budget a tag.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str | list[str]] = {}
        if problems := validate_thresholds(self.thresholds):
            errors["thresholds"] = problems
        if isinstance(self.amount_usd, Decimal | int) and self.amount_usd <= 0:
            errors["amount_usd"] = "A budget amount is more than 0."
        if self.scope == BudgetScope.TEMPLATE and self.template_id is None:
            errors["template"] = "A template budget needs a template."
        if self.scope != BudgetScope.TEMPLATE and self.template_id is not None:
            errors["template"] = "Only a template budget names a template."
        if self.scope == BudgetScope.TAG and not (isinstance(self.tag, str) and TAG_RE.match(self.tag)):
            errors["tag"] = "A tag budget needs a tag: lowercase letters, digits and dashes, up to 40 characters."
        if self.scope != BudgetScope.TAG and self.tag:
            errors["tag"] = "Only a tag budget names a tag."
        if errors:
            raise ValidationError(errors)

    def period_bounds(self, today: date) -> tuple[date, date]:
        """The current period containing ``today``: (first day, first day of the next period)."""
        if self.period == BudgetPeriod.DAILY:
            return today, date.fromordinal(today.toordinal() + 1)
        start = today.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end


class BudgetAlert(models.Model):
    """A budget threshold crossed in one period. The unique constraint makes a threshold cross once
    per period, however many ingestions race past it."""

    audit = Unrecorded(
        "written once per (budget, period, threshold) by ledger.budgets.budgets_evaluate, which appends "
        "BUDGET_THRESHOLD_CROSSED on the budget itself; acknowledged once by "
        "ledger.budgets.budget_alert_acknowledge, which appends BUDGET_ALERT_ACKNOWLEDGED on the budget; "
        "a budget's delete removes its alerts and records them"
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateField()
    threshold = models.PositiveIntegerField()
    spend_usd = models.DecimalField(max_digits=MONEY_SUM_DIGITS, decimal_places=6)  # the period's spend
    amount_usd = models.DecimalField(max_digits=16, decimal_places=4)  # the budget's amount when crossed
    crossed_at = models.DateTimeField()
    # Who acknowledged it and when (empty: it still shouts on the Cost page).
    acknowledged_by = models.CharField(max_length=200, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-crossed_at"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start", "threshold"], name="budgetalert_once_per_period"),
        ]
        indexes = [models.Index(fields=["tenant", "-crossed_at"], name="budgetalert_tenant_crossed")]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.threshold}% on {self.period_start}"


def utc_day(moment: datetime) -> date:
    """The UTC calendar day of an aware datetime (rollups, spend counters and prices all use it)."""
    return moment.astimezone(UTC).date()
