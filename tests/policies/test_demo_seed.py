"""demo.policies.seed_policy_demo: policies at several tiers attached, decisions of every outcome from
the real service, approvals in every state; running it twice changes nothing."""

from approvals.models import ApprovalRequest
from audit.models import ChangeRecord
from demo.policies import seed_policy_demo
from policies.models import PolicyDecision, PolicyEnvelope
from registry.choices import InstanceState
from tests.helpers import policy_id_of
from tests.policies.factories import make_instance


def counts():
    return (
        PolicyEnvelope.objects.count(),
        PolicyDecision.objects.count(),
        ApprovalRequest.objects.count(),
        ChangeRecord.objects.count(),
    )


def test_seed_creates_every_outcome_and_state_and_is_idempotent(tenant, cast):
    instances = [
        make_instance(tenant, name="a-active"),
        make_instance(tenant, name="b-active"),
        make_instance(tenant, name="c-readonly", state=InstanceState.READONLY),
        make_instance(tenant, name="d-paused", state=InstanceState.PAUSED),
        make_instance(tenant, name="e-new", state=InstanceState.PROVISIONING),
    ]
    actors = {role: member.actor for role, member in cast.items()}
    summary = seed_policy_demo(tenant, instances, actors)

    tiers = set(PolicyEnvelope.objects.filter(tenant=tenant).values_list("autonomy_tier", flat=True))
    assert {0, 1, 2, 4} <= tiers
    for inst in instances:
        inst.refresh_from_db()
        assert policy_id_of(inst) is not None
    outcomes = set(PolicyDecision.objects.filter(tenant=tenant).values_list("decision", flat=True))
    assert outcomes == {"ALLOW", "DENY", "NEEDS_APPROVAL"}
    codes = {r["code"] for reasons in PolicyDecision.objects.values_list("reasons", flat=True) for r in reasons}
    assert {"tier_allows", "needs_approval", "undeclared_tool", "data_scope", "cost_limit", "instance_state"} <= codes
    assert "approval_granted" in codes
    statuses = set(ApprovalRequest.objects.filter(tenant=tenant).values_list("status", flat=True))
    assert statuses == {"PENDING", "APPROVED", "DENIED", "EXPIRED", "WITHDRAWN"}
    assert ApprovalRequest.objects.filter(status="APPROVED", used_at__isnull=False).exists()
    assert summary["decisions"] == PolicyDecision.objects.count()

    before = counts()
    seed_policy_demo(tenant, instances, actors)
    assert counts() == before
