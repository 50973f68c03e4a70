"""READONLY instances may call low-risk tools only (risk after overrides)."""

import pytest

from policies.choices import Decision, ReasonCode
from policies.engine import decide
from registry.choices import InstanceState
from tests.policies.factories import eval_in, policy_in


def test_readonly_instance_may_call_a_low_risk_tool():
    outcome = decide(eval_in(instance_state=InstanceState.READONLY, manifest_risk="low", policy=policy_in(2)))
    assert outcome.decision == Decision.ALLOW


@pytest.mark.parametrize("risk", ["medium", "high", "critical"])
def test_readonly_instance_is_denied_anything_above_low_even_at_tier_5(risk):
    outcome = decide(eval_in(instance_state=InstanceState.READONLY, manifest_risk=risk, policy=policy_in(5)))
    assert outcome.decision == Decision.DENY
    assert outcome.reasons[0].code == ReasonCode.INSTANCE_STATE
    assert "READONLY" in outcome.reasons[0].message


def test_readonly_uses_the_policy_override_for_the_risk():
    lowered = policy_in(5, tool_risk_overrides={"email.send": "low"})
    raised = policy_in(5, tool_risk_overrides={"crm.lookup": "medium"})
    ro = InstanceState.READONLY
    assert (
        decide(eval_in(instance_state=ro, tool="email.send", manifest_risk="high", policy=lowered)).decision == "ALLOW"
    )
    assert decide(eval_in(instance_state=ro, tool="crm.lookup", manifest_risk="low", policy=raised)).decision == "DENY"


def test_readonly_low_risk_call_still_needs_approval_at_tier_1():
    outcome = decide(eval_in(instance_state=InstanceState.READONLY, manifest_risk="low", policy=policy_in(1)))
    assert outcome.decision == Decision.NEEDS_APPROVAL
