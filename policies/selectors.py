"""Policy reads that are more than a filter: the editor's instance lists, recent decisions, an instance's
spend against its limits, the incidents lists and the policy list's instance counts.

Every function takes the tenant (or an object of it) and returns a tenant-scoped queryset, sorted in SQL,
for the caller to paginate (``arm.ui.paginate``), or a bounded list."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Count, QuerySet

from audit.choices import EventType
from audit.models import ChangeRecord
from policies.choices import Decision
from policies.models import PolicyDecision, PolicyEnvelope
from policies.services import spend_counters, spend_periods
from registry.choices import InstanceState, Risk
from registry.models import AgentInstance

RECENT_DECISIONS = 10
INTEGRITY_FAILURES_SHOWN = 50


def policies_of(tenant) -> QuerySet[PolicyEnvelope]:
    return PolicyEnvelope.objects.filter(tenant=tenant)


def annotate_live_instance_counts(policies: list[PolicyEnvelope]) -> None:
    """``instance_count`` (instances not RETIRED) for the policies of one page: one grouped query over
    those policies only, however many policies and instances the tenant has."""
    counts = dict(
        AgentInstance.objects.filter(policy_id__in=[p.pk for p in policies])
        .exclude(state=InstanceState.RETIRED)
        .values("policy_id")
        .annotate(n=Count("id"))
        .values_list("policy_id", "n")
        .order_by()
    )
    for policy in policies:
        policy.instance_count = counts.get(policy.pk, 0)


def policy_attached(policy: PolicyEnvelope) -> QuerySet[AgentInstance]:
    """The instances running under ``policy``, by name."""
    return (
        AgentInstance.objects.filter(tenant_id=policy.tenant_id, policy=policy)
        .select_related("version__template", "environment")
        .order_by("name", "pk")
    )


def policy_attachable(policy: PolicyEnvelope, search: str = "") -> QuerySet[AgentInstance]:
    """Live instances not under ``policy`` (with the policy they have now), by name; ``search`` narrows
    by instance name."""
    qs = (
        AgentInstance.objects.filter(tenant_id=policy.tenant_id)
        .exclude(state=InstanceState.RETIRED)
        .exclude(policy=policy)
        .select_related("version__template", "policy")
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
