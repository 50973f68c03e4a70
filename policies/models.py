"""Policy envelopes, the decision log and per-instance spend counters."""

import uuid

from django.db import models

from policies.choices import Decision, SpendPeriod
from registry.choices import Risk


class PolicyEnvelope(models.Model):
    """What an instance may do: autonomy tier, tool and scope globs, cost limits, approval timeout."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
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
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="policy_unique_name_per_tenant",
                violation_error_message="A policy with this name already exists.",
            ),
            models.CheckConstraint(condition=models.Q(autonomy_tier__lte=5), name="policy_tier_0_to_5"),
            models.CheckConstraint(
                condition=models.Q(cost_limit_daily_usd__isnull=True) | models.Q(cost_limit_daily_usd__gte=0),
                name="policy_daily_limit_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(cost_limit_monthly_usd__isnull=True)
                | models.Q(cost_limit_monthly_usd__gte=0),
                name="policy_monthly_limit_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(approval_timeout_seconds__gte=1), name="policy_timeout_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (tier {self.autonomy_tier}, r{self.revision})"


class PolicyDecision(models.Model):
    """One evaluation, stored whatever its outcome (the decision log)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
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
    """Atomic spend counter for one instance and one UTC day or month (sum of ALLOWed estimates)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    instance = models.ForeignKey("registry.AgentInstance", on_delete=models.CASCADE, related_name="spend")
    period = models.CharField(max_length=5, choices=SpendPeriod.choices)
    period_start = models.DateField()
    amount_usd = models.DecimalField(max_digits=16, decimal_places=4, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "period", "period_start"], name="spend_one_counter_per_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instance_id} {self.period} {self.period_start}: {self.amount_usd}"
