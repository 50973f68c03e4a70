"""Policy envelopes, the decision log and per-instance spend counters."""

import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models

from arm.models import Recorded, RecordedModel, Unrecorded
from arm.validators import MAX_DESCRIPTION_LENGTH, validate_description_length
from policies.choices import Decision, SpendPeriod
from registry.choices import Risk
from registry.models import NAME_VALIDATORS, unique_name_per_tenant
from tenancy.models import TenantKey

MAX_PATTERNS = 200
MAX_APPROVAL_TIMEOUT_SECONDS = 30 * 24 * 3600
MAX_PATTERN_LENGTH = 200


def _brackets_balanced(pattern: str) -> bool:
    """Every ``[`` opens a character class that closes, scanned the way ``fnmatch`` scans it (a ``]``
    right after ``[`` or ``[!`` is a member), and no stray ``]`` is left outside a class."""
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "]":
            return False
        if ch == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                return False
            i = j
        i += 1
    return True


def glob_error(pattern) -> str | None:
    """Why ``pattern`` is not a well-formed glob (None when it is)."""
    if not isinstance(pattern, str):
        return "must be a string"
    if not pattern or not pattern.strip():
        return "must not be empty"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"must be at most {MAX_PATTERN_LENGTH} characters"
    if any(ch.isspace() for ch in pattern):
        return "must not contain whitespace"
    if not pattern.isprintable():
        return "must contain printable characters only"
    if not _brackets_balanced(pattern):
        return "has an unbalanced '[' or ']'"
    return None


def _decimal_or_none(value) -> Decimal | None:
    try:
        return None if value is None else Decimal(value)
    except (ArithmeticError, ValueError, TypeError):
        return None  # clean_fields reports the malformed value


def validate_globs(value, field: str, errors: dict) -> None:
    if not isinstance(value, list):
        errors[field] = "Must be a list of glob patterns."
        return
    if len(value) > MAX_PATTERNS:
        errors[field] = f"At most {MAX_PATTERNS} patterns."
        return
    problems = [f"{p!r} {why}" for p in value if (why := glob_error(p))]
    if problems:
        errors[field] = "Invalid glob pattern(s): " + "; ".join(problems) + "."
    elif len(set(value)) != len(value):
        errors[field] = "Patterns must not repeat."


class PolicyEnvelope(RecordedModel):
    """What an instance may do: autonomy tier, tool and scope globs, cost limits, approval timeout. Its name
    follows the registry's rule for names people pick and others select by: unique in the tenant ignoring
    case, written in Unicode NFKC form."""

    audit = Recorded("POLICY")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200, validators=NAME_VALIDATORS)
    description = models.TextField(
        blank=True, max_length=MAX_DESCRIPTION_LENGTH, validators=[validate_description_length]
    )
    autonomy_tier = models.PositiveSmallIntegerField(default=1)
    allowed_tools = models.JSONField(default=list, blank=True)
    denied_tools = models.JSONField(default=list, blank=True)
    data_scopes = models.JSONField(default=list, blank=True)
    cost_limit_daily_usd = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    cost_limit_monthly_usd = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    approval_timeout_seconds = models.PositiveIntegerField(default=3600)
    tool_risk_overrides = models.JSONField(default=dict, blank=True)
    revision = models.PositiveIntegerField(default=1)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            unique_name_per_tenant("policy", "A policy"),
            models.CheckConstraint(condition=models.Q(autonomy_tier__lte=5), name="policy_tier_0_to_5"),
            models.CheckConstraint(
                condition=models.Q(cost_limit_daily_usd__isnull=True) | models.Q(cost_limit_daily_usd__gte=0),
                name="policy_daily_limit_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(cost_limit_monthly_usd__isnull=True) | models.Q(cost_limit_monthly_usd__gte=0),
                name="policy_monthly_limit_not_negative",
            ),
            models.CheckConstraint(condition=models.Q(approval_timeout_seconds__gte=1), name="policy_timeout_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (tier {self.autonomy_tier}, r{self.revision})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not isinstance(self.name, str) or not self.name.strip():
            errors["name"] = "Give the policy a name."
        if not isinstance(self.autonomy_tier, int) or not 0 <= self.autonomy_tier <= 5:
            errors["autonomy_tier"] = "The autonomy tier is 0 to 5."
        for field in ("allowed_tools", "denied_tools", "data_scopes"):
            validate_globs(getattr(self, field), field, errors)
        limits = {}
        for field in ("cost_limit_daily_usd", "cost_limit_monthly_usd"):
            value = _decimal_or_none(getattr(self, field))
            if value is not None and value < 0:
                errors[field] = "A cost limit cannot be negative."
            limits[field] = value
        daily, monthly = limits["cost_limit_daily_usd"], limits["cost_limit_monthly_usd"]
        if daily is not None and monthly is not None and not errors.keys() & limits.keys() and daily > monthly:
            errors["cost_limit_daily_usd"] = "The daily limit cannot exceed the monthly limit."
        timeout = self.approval_timeout_seconds
        if isinstance(timeout, int) and not 1 <= timeout <= MAX_APPROVAL_TIMEOUT_SECONDS:
            errors["approval_timeout_seconds"] = (
                f"The approval timeout is 1 to {MAX_APPROVAL_TIMEOUT_SECONDS} seconds (30 days)."
            )
        overrides = self.tool_risk_overrides
        if not isinstance(overrides, dict):
            errors["tool_risk_overrides"] = "Must be an object mapping tool names to risks."
        else:
            bad = [
                f"{k!r}: {v!r}"
                for k, v in overrides.items()
                if not isinstance(k, str) or not k.strip() or v not in Risk.values
            ]
            if bad:
                errors["tool_risk_overrides"] = (
                    f"Map tool names to one of {', '.join(Risk.values)}; invalid: {', '.join(bad)}."
                )
        if errors:
            raise ValidationError(errors)


class PolicyAttachment(RecordedModel):
    """The policy one instance runs under: one row per instance that has one (no row: every call is denied).

    The binding lives here, above registry, so every foreign key points down the layers (policies →
    registry) and registry's migrations never wait for policies'. Its primary key is the instance, so an
    instance has at most one policy (the database says so) and the records of its attaching and detaching
    name the instance's id, as they did when the policy was a column of the instance. Read it through
    ``policies.selectors.attached_policy``; write it through ``policies.services.policy_attach``."""

    audit = Recorded("POLICY_ATTACHMENT", events=("POLICY_ATTACHED", "POLICY_DETACHED"))

    instance = models.OneToOneField(
        "registry.AgentInstance", primary_key=True, on_delete=models.CASCADE, related_name="policy_attachment"
    )
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    # PROTECT: an attached policy cannot be deleted (409 policy_attached).
    policy = models.ForeignKey(PolicyEnvelope, on_delete=models.PROTECT, related_name="attachments")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"policy of instance {str(self.instance_id)[:8]}"


#: What to ``select_related`` on instances so ``attached_policy`` asks the database nothing more.
ATTACHED_POLICY = "policy_attachment__policy"


def attached_policy(instance) -> PolicyEnvelope | None:
    """The policy ``instance`` runs under, or None (every call is denied): one query unless the instance
    came with ``select_related(ATTACHED_POLICY)``."""
    try:
        return instance.policy_attachment.policy
    except PolicyAttachment.DoesNotExist:
        return None


class PolicyDecision(models.Model):
    """One evaluation, stored whatever its outcome (the decision log)."""

    audit = Unrecorded(
        "the decision log is itself the record of every evaluation, one row per call on the hot path "
        "(approvals it opens or uses write their APPROVAL_* records)"
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    instance = models.ForeignKey("registry.AgentInstance", on_delete=models.PROTECT, related_name="decisions")
    # Kept as plain values (not a foreign key) so the log survives a policy's deletion.
    policy_id = models.UUIDField(null=True, blank=True)
    policy_revision = models.PositiveIntegerField(null=True, blank=True)
    tool = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    params_hash = models.CharField(max_length=64)
    data_scopes = models.JSONField(default=list, blank=True)
    decision = models.CharField(max_length=20, choices=Decision.choices)
    risk = models.CharField(max_length=10, choices=Risk.choices)
    reasons = models.JSONField(default=list)
    estimated_cost_usd = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    approval = models.ForeignKey(
        "approvals.ApprovalRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="decisions",
    )
    actor = models.CharField(max_length=200)
    duration_us = models.PositiveIntegerField(default=0)
    # What the instance looked like when decided (state, integrity, spend before the call), so a
    # simulation can replay the decision under another envelope.
    context = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="decision_tenant_created"),
            models.Index(fields=["instance", "-created_at"], name="decision_instance_created"),
            models.Index(fields=["policy_id", "-created_at"], name="decision_policy_created"),
        ]

    def __str__(self) -> str:
        return f"{self.decision} {self.tool}"


class InstanceSpend(models.Model):
    """Atomic spend counters for one instance and one UTC day or month: ``amount_usd`` sums the
    estimates of ALLOWed calls (policy evaluation), ``actual_usd`` the cost of the usage the runtime
    reported to the ledger (``ledger.ingest``). The cost limit checks the larger of the two."""

    audit = Unrecorded(
        "spend and call counters, incremented with one upsert per ALLOWed evaluation; the decision rows carry "
        "each estimate"
    )

    id = models.BigAutoField(primary_key=True)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    instance = models.ForeignKey("registry.AgentInstance", on_delete=models.CASCADE, related_name="spend")
    period = models.CharField(max_length=5, choices=SpendPeriod.choices)
    period_start = models.DateField()
    # Sums estimates of at most 1,000,000 each: 24 integer digits hold more ALLOWed calls than can happen.
    amount_usd = models.DecimalField(max_digits=28, decimal_places=4, default=0)
    actual_usd = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    # ALLOW decisions in the period (the cost reports' "cost per allowed call" by instance and version)
    allowed_calls = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "period", "period_start"], name="spend_one_counter_per_period"),
        ]

    def __str__(self) -> str:
        return f"{self.instance_id} {self.period} {self.period_start}: {self.amount_usd}"


class IdempotentCall(models.Model):
    """The call one ``idempotency_key`` names for one instance, for the key's whole life, and the decision
    that answers it now: the first decision, then the ALLOW through the call's approval or the DENY its
    refusal, expiry or withdrawal gave (``policies.services``: replays answer it again, a different call
    under the key is a conflict). One row per (instance, key), settled by the unique constraint: of two
    first calls with one key, one inserts it and the other replays its answer."""

    audit = Unrecorded(
        "the key's call and a pointer to the decision answering it, written with that decision; the decision "
        "log and the approval's records are the record"
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    instance = models.ForeignKey("registry.AgentInstance", on_delete=models.PROTECT, related_name="idempotent_calls")
    key = models.CharField(max_length=200)
    # The call: tool (manifest name), canonical params hash, data scopes (sorted, once each), estimate.
    tool = models.CharField(max_length=200)
    params_hash = models.CharField(max_length=64)
    data_scopes = models.JSONField(default=list, blank=True)
    estimated_cost_usd = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    # The decision answering the key now; for a NEEDS_APPROVAL, its approval is the call's approval.
    decision = models.ForeignKey(PolicyDecision, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "key"], name="idempotent_call_one_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} on {self.instance_id}: {self.tool}"


class DecisionDayCount(models.Model):
    """ALLOW decisions of one UTC day per template and environment, added by evaluation in the decision's
    transaction. The cost reports' "cost per allowed call" by template, environment, tag and owner reads
    these (a few hundred rows a day) instead of counting a fleet's decision rows; by instance and version
    they read ``InstanceSpend.allowed_calls``."""

    audit = Unrecorded(
        "a count of ALLOW decisions, maintained by evaluation in the same transaction as the decision rows"
    )

    id = models.BigAutoField(primary_key=True)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    template = models.ForeignKey("registry.AgentTemplate", on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey("registry.Environment", on_delete=models.CASCADE, related_name="+")
    allowed_calls = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "template", "environment"], name="decision_count_one_per_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.allowed_calls} allowed"
