"""Policy reads that are more than a filter: the editor's instance lists, recent decisions, an instance's
spend against its limits, the incidents lists, the policy list's instance counts and a runtime's context.

Every function takes the tenant (or an object of it) and returns a tenant-scoped queryset, sorted in SQL,
for the caller to paginate (``arm.ui.paginate``), or a bounded list."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.utils import timezone

from arm.errors import NotFound, RoleRequired
from audit.choices import EventType
from audit.models import ChangeRecord
from policies.choices import Decision, SpendPeriod
from policies.engine import EvaluationInput, counted_spend, decide
from policies.models import ATTACHED_POLICY, PolicyAttachment, PolicyDecision, PolicyEnvelope, attached_policy
from policies.services import policy_input, spend_counters, spend_periods
from registry.choices import InstanceState, Risk
from registry.genome import manifest_tools
from registry.models import AgentInstance
from tenancy.choices import READ_ROLES, Role
from tenancy.context import Actor
from tenancy.permissions import require_roles

RECENT_DECISIONS = 10
INTEGRITY_FAILURES_SHOWN = 50


def policies_of(tenant) -> QuerySet[PolicyEnvelope]:
    return PolicyEnvelope.objects.filter(tenant=tenant)


def annotate_live_instance_counts(policies: list[PolicyEnvelope]) -> None:
    """``instance_count`` (instances not RETIRED) for the policies of one page: one grouped query over
    those policies only, however many policies and instances the tenant has."""
    counts = dict(
        PolicyAttachment.objects.filter(policy_id__in=[p.pk for p in policies])
        .exclude(instance__state=InstanceState.RETIRED)
        .values("policy_id")
        .annotate(n=Count("pk"))
        .values_list("policy_id", "n")
        .order_by()
    )
    for policy in policies:
        policy.instance_count = counts.get(policy.pk, 0)


def policy_attached(policy: PolicyEnvelope) -> QuerySet[AgentInstance]:
    """The instances running under ``policy``, by name."""
    return (
        AgentInstance.objects.filter(tenant_id=policy.tenant_id, policy_attachment__policy=policy)
        .select_related("version__template", "environment")
        .order_by("name", "pk")
    )


def policy_attachable(policy: PolicyEnvelope, search: str = "") -> QuerySet[AgentInstance]:
    """Live instances not under ``policy`` (with the policy they have now), by name; ``search`` narrows
    by instance name."""
    qs = (
        AgentInstance.objects.filter(tenant_id=policy.tenant_id)
        .exclude(state=InstanceState.RETIRED)
        .exclude(policy_attachment__policy=policy)
        .select_related("version__template", ATTACHED_POLICY)
        .order_by("name", "pk")
    )
    search = (search or "").strip()
    return qs.filter(name__icontains=search) if search else qs


def policy_recent_decisions(policy: PolicyEnvelope, limit: int = RECENT_DECISIONS) -> list[PolicyDecision]:
    return list(
        PolicyDecision.objects.filter(tenant_id=policy.tenant_id, policy_id=policy.pk)
        .select_related("instance")
        .order_by("-created_at")[:limit]
    )


def instance_recent_decisions(instance: AgentInstance, limit: int = RECENT_DECISIONS) -> list[PolicyDecision]:
    return list(
        PolicyDecision.objects.filter(tenant_id=instance.tenant_id, instance=instance).order_by("-created_at")[:limit]
    )


def instance_spend(instance: AgentInstance, now: datetime) -> dict[str, Decimal]:
    """{period: amount} spent today and this month (UTC), from the counters evaluation maintains."""
    today, month = spend_periods(now)
    return dict(
        spend_counters(today=today, month=month, tenant=instance.tenant_id, instance_id=instance.pk).values_list(
            "period", "amount_usd"
        )
    )


def integrity_failures(tenant, limit: int = INTEGRITY_FAILURES_SHOWN) -> list[ChangeRecord]:
    return list(
        ChangeRecord.objects.filter(tenant=tenant, event_type=EventType.INTEGRITY_FAILED).order_by("-seq")[:limit]
    )


def quarantined_instances(tenant) -> QuerySet[AgentInstance]:
    """QUARANTINED instances, most recently quarantined first."""
    return (
        AgentInstance.objects.filter(tenant=tenant, state=InstanceState.QUARANTINED)
        .select_related("version__template", "environment")
        .order_by("-updated_at", "pk")
    )


def denied_high_risk(tenant) -> QuerySet[PolicyDecision]:
    """DENY decisions of high or critical-risk calls, newest first."""
    return (
        PolicyDecision.objects.filter(tenant=tenant, decision=Decision.DENY, risk__in=[Risk.HIGH, Risk.CRITICAL])
        .select_related("instance__version__template")
        .order_by("-created_at")
    )


# ---------------------------------------------------------------- the runtime's context

RUNTIME_CONTEXT_ROLES = (*READ_ROLES, Role.RUNTIME)
# What evaluation would answer for a tool, as the runtime context names it.
TOOL_VERDICTS = {Decision.ALLOW: "allow", Decision.NEEDS_APPROVAL: "needs_approval", Decision.DENY: "deny"}
POLICY_CONTEXT_FIELDS = (
    "name",
    "revision",
    "autonomy_tier",
    "allowed_tools",
    "denied_tools",
    "data_scopes",
    "tool_risk_overrides",
    "approval_timeout_seconds",
)


def _usd(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def runtime_context(*, tenant, actor: Actor, instance_id=None, now: datetime | None = None) -> dict:
    """What a runtime may know of itself (``GET /api/v1/runtime/context/``): its instance, version and tools
    (each with its call name), the attached policy as it applies to each tool now, and what is left of the
    day's and month's budget. A key bound to an instance reads that one (another: 403 ``instance_binding``);
    any other key or member names it (``instance_id``); another tenant's instance is 404.

    ``policy.tools`` is ``policies.engine.decide`` itself for a call of each tool with no params, scopes or
    estimate, against the instance as it is now (state, integrity, spend): "allow", "needs_approval" or
    "deny". Budget amounts are what the cost limits count (``counted_spend``: the larger of the ALLOWed
    estimates and the reported usage), as decimal strings; a null limit is no limit. Two queries."""
    require_roles(actor, RUNTIME_CONTEXT_ROLES, "Reading a runtime context")
    bound = actor.bound_instance_id
    if instance_id is None and bound is None:
        raise ValidationError({"instance": "Name the instance (?instance=<id>): this key is not bound to one."})
    if instance_id is not None and bound is not None and str(bound) != str(instance_id):
        raise RoleRequired(
            "This API key is bound to another instance and may read only its context.", code="instance_binding"
        )
    try:
        pk = uuid.UUID(str(instance_id if instance_id is not None else bound))
    except ValueError as exc:
        raise NotFound("Instance not found.") from exc
    instance = (
        AgentInstance.objects.filter(tenant=tenant, pk=pk)
        .select_related("version", "environment", "provider", ATTACHED_POLICY)
        .first()
    )
    if instance is None:
        raise NotFound("Instance not found.")
    now = now or timezone.now()
    today, month = spend_periods(now)
    counters = {
        row.period: (row.amount_usd, row.actual_usd)
        for row in spend_counters(today=today, month=month, instance_id=instance.pk)
    }
    spent = {period: counted_spend(*counters.get(period, (Decimal(0), Decimal(0))))[0] for period in SpendPeriod}
    version, policy = instance.version, attached_policy(instance)
    tools = manifest_tools(version.genome)
    limits = {
        SpendPeriod.DAY: policy.cost_limit_daily_usd if policy is not None else None,
        SpendPeriod.MONTH: policy.cost_limit_monthly_usd if policy is not None else None,
    }
    return {
        "instance": {
            "id": str(instance.pk),
            "name": instance.name,
            "state": instance.state,
            "health": instance.health(now, tenant.heartbeat_window_seconds),
            "environment": {
                "id": str(instance.environment.pk),
                "name": instance.environment.name,
                "tier": instance.environment.tier,
            },
            "provider": {
                "id": str(instance.provider.pk),
                "name": instance.provider.name,
                "type": instance.provider.type,
            },
        },
        "version": {
            "id": str(version.pk),
            "version_label": version.version_label,
            "genome_hash": version.genome_hash,
            "lifecycle_state": version.lifecycle_state,
            "integrity_status": version.integrity_status,
            "tools": tools,
        },
        "policy": None if policy is None else _policy_as_applied(instance, policy, tools, counters, now),
        "budget": {
            str(period): {
                "spent_usd": _usd(spent[period]),
                "limit_usd": _usd(limits[period]),
                "remaining_usd": _usd(max(limits[period] - spent[period], Decimal(0)))
                if limits[period] is not None
                else None,
            }
            for period in SpendPeriod
        },
    }


def _policy_as_applied(instance: AgentInstance, policy: PolicyEnvelope, tools: list[dict], counters, now) -> dict:
    applied = policy_input(policy)
    zero = (Decimal(0), Decimal(0))
    day, month = counters.get(SpendPeriod.DAY, zero), counters.get(SpendPeriod.MONTH, zero)
    verdicts = {}
    for tool in tools:
        outcome = decide(
            EvaluationInput(
                instance_id=instance.pk,
                instance_state=instance.state,
                integrity_status=instance.version.integrity_status,
                tool=tool["name"],
                manifest_risk=tool["risk"],
                policy=applied,
                params_hash="",
                now=now,
                spend_today_usd=day[0],
                actual_today_usd=day[1],
                spend_month_usd=month[0],
                actual_month_usd=month[1],
                version_label=instance.version.version_label,
            )
        )
        verdicts[tool["name"]] = TOOL_VERDICTS[outcome.decision]
    return {
        "id": str(policy.pk),
        **{field: getattr(policy, field) for field in POLICY_CONTEXT_FIELDS},
        "cost_limit_daily_usd": _usd(policy.cost_limit_daily_usd),
        "cost_limit_monthly_usd": _usd(policy.cost_limit_monthly_usd),
        "tools": verdicts,
    }
