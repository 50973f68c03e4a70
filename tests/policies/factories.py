"""Factories and builders for the policy and approval tests."""

from datetime import UTC, datetime
from decimal import Decimal

import factory
from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from policies.engine import EvaluationInput, PolicyInput
from policies.models import PolicyEnvelope
from policies.services import params_hash
from registry.choices import InstanceState
from tests.factories import InstanceFactory, VersionFactory, make_genome

# One tool per risk, plus one that leaves risk to the manifest default (medium).
TOOLS = [
    {"name": "crm.lookup", "version": "1.2.0", "risk": "low", "data_scopes": ["crm:read"]},
    {"name": "crm.update", "risk": "medium"},
    {"name": "email.send", "risk": "high"},
    {"name": "payments.refund", "risk": "critical"},
    {"name": "notes.read"},
]
TOOL_FOR_RISK = {"low": "crm.lookup", "medium": "crm.update", "high": "email.send", "critical": "payments.refund"}


class PolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PolicyEnvelope

    tenant = None
    name = factory.Sequence(lambda n: f"policy-{n}")
    autonomy_tier = 3
    allowed_tools = factory.LazyFunction(lambda: ["*"])
    denied_tools = factory.LazyFunction(list)
    data_scopes = factory.LazyFunction(lambda: ["crm:*", "tickets:read"])
    tool_risk_overrides = factory.LazyFunction(dict)
    created_by = "user:factory"


def make_instance(tenant, *, policy=None, state=InstanceState.ACTIVE, tools=None, **kwargs):
    version = VersionFactory(template__tenant=tenant, genome=make_genome(tools=TOOLS if tools is None else tools))
    return InstanceFactory(version=version, policy=policy, state=state, **kwargs)


def make_approval(instance, *, tool="email.send", params=None, status=ApprovalStatus.PENDING, **kwargs):
    params = {} if params is None else params
    now = timezone.now()
    defaults = {
        "requester": "key:someone",
        "requested_at": now,
        "expires_at": now + timezone.timedelta(hours=1),
        "risk": "high",
        "reasons": [{"code": "needs_approval", "message": "test"}],
    }
    defaults.update(kwargs)
    return ApprovalRequest.objects.create(
        tenant_id=instance.tenant_id,
        instance=instance,
        tool=tool,
        params=params,
        params_hash=params_hash(params),
        status=status,
        **defaults,
    )


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def policy_in(tier=5, **kwargs) -> PolicyInput:
    values = {
        "id": "p1",
        "revision": 1,
        "autonomy_tier": tier,
        "allowed_tools": ("*",),
        "denied_tools": (),
        "data_scopes": ("*",),
    }
    values.update(kwargs)
    return PolicyInput(**values)


def eval_in(*, tool="crm.update", manifest_risk="medium", policy="default", **kwargs) -> EvaluationInput:
    values = {
        "instance_id": "i1",
        "instance_state": InstanceState.ACTIVE,
        "integrity_status": "VERIFIED",
        "tool": tool,
        "manifest_risk": manifest_risk,
        "policy": policy_in() if policy == "default" else policy,
        "params_hash": "h" * 64,
        "now": NOW,
    }
    values.update(kwargs)
    return EvaluationInput(**values)


def usd(value: str) -> Decimal:
    return Decimal(value)
