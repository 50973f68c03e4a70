"""Every reason code of the decision procedure, the order of the hard checks, and that each hard check
wins over the most permissive tier (SPEC §4 steps 1-8)."""

from dataclasses import replace
from decimal import Decimal

import pytest

from policies.choices import Decision, ReasonCode
from policies.engine import decide, effective_risk
from registry.choices import InstanceState
from tests.policies.factories import eval_in, policy_in

# Each hard check with an input that fails it (at tier 5, where the tier alone would ALLOW).
HARD_FAILURES = {
    ReasonCode.INSTANCE_STATE: {"instance_state": InstanceState.PAUSED},
    ReasonCode.INTEGRITY: {"integrity_status": "TAMPERED"},
    ReasonCode.NO_POLICY: {"policy": None},
    ReasonCode.UNDECLARED_TOOL: {"manifest_risk": None},
    ReasonCode.TOOL_NOT_ALLOWED: {"policy": policy_in(5, denied_tools=("crm.*",))},
    ReasonCode.DATA_SCOPE: {"data_scopes": ("billing:write",), "policy": policy_in(5, data_scopes=("crm:*",))},
    ReasonCode.COST_LIMIT: {
        "estimated_cost_usd": Decimal("1.01"),
        "policy": policy_in(5, cost_limit_daily_usd=Decimal("1.00")),
    },
}
ORDER = list(HARD_FAILURES)


@pytest.mark.parametrize("code", ORDER)
def test_each_hard_check_denies_even_at_tier_5(code):
    outcome = decide(eval_in(**HARD_FAILURES[code]))
    assert outcome.decision == Decision.DENY
    assert [r.code for r in outcome.reasons] == [code]
    assert outcome.reasons[0].message
    assert not outcome.open_approval and not outcome.consume_approval


@pytest.mark.parametrize("position", range(len(ORDER)))
def test_the_first_failing_hard_check_in_spec_order_decides(position):
    """Fail this check and every later one at once: the earliest gives the reason."""
    failing = ORDER[position:]
    kwargs = {}
    policy = policy_in(5)
    for code in failing:
        overrides = dict(HARD_FAILURES[code])
        if "policy" in overrides:
            if overrides["policy"] is None:
                kwargs["policy"] = None
                continue
            extra = {
                k: getattr(overrides["policy"], k)
                for k in ("denied_tools", "data_scopes", "cost_limit_daily_usd")
                if getattr(overrides["policy"], k) != getattr(policy_in(5), k)
            }
            policy = replace(policy, **extra)
            overrides.pop("policy")
        kwargs.update(overrides)
    kwargs.setdefault("policy", policy)
    outcome = decide(eval_in(**kwargs))
    assert outcome.decision == Decision.DENY
    assert outcome.reasons[0].code == ORDER[position]


def test_tool_matching_no_allowed_pattern_is_not_allowed():
    outcome = decide(eval_in(tool="crm.update", policy=policy_in(5, allowed_tools=("email.*",))))
    assert [r.code for r in outcome.reasons] == [ReasonCode.TOOL_NOT_ALLOWED]
    assert "allowed_tools" in outcome.reasons[0].message


def test_empty_allowed_tools_allows_none():
    outcome = decide(eval_in(policy=policy_in(5, allowed_tools=())))
    assert outcome.reasons[0].code == ReasonCode.TOOL_NOT_ALLOWED


def test_denied_tools_win_over_allowed_tools():
    outcome = decide(
        eval_in(tool="crm.update", policy=policy_in(5, allowed_tools=("crm.update",), denied_tools=("crm.*",)))
    )
    assert outcome.reasons[0].code == ReasonCode.TOOL_NOT_ALLOWED
    assert "denied_tools" in outcome.reasons[0].message


def test_every_requested_scope_must_match_a_policy_scope():
    policy = policy_in(5, data_scopes=("crm:*", "tickets:read"))
    assert decide(eval_in(policy=policy, data_scopes=("crm:read", "tickets:read"))).decision == Decision.ALLOW
    denied = decide(eval_in(policy=policy, data_scopes=("crm:read", "tickets:write")))
    assert denied.reasons[0].code == ReasonCode.DATA_SCOPE
    assert "tickets:write" in denied.reasons[0].message and "crm:read" not in denied.reasons[0].message


def test_glob_matching_is_case_sensitive():
    outcome = decide(eval_in(tool="CRM.update", policy=policy_in(5, allowed_tools=("crm.*",))))
    assert outcome.reasons[0].code == ReasonCode.TOOL_NOT_ALLOWED


def test_observe_only_tier_0_denies_with_its_own_code():
    outcome = decide(eval_in(manifest_risk="low", policy=policy_in(0)))
    assert outcome.decision == Decision.DENY
    assert [r.code for r in outcome.reasons] == [ReasonCode.OBSERVE_ONLY]


def test_allow_and_needs_approval_carry_a_reason():
    allow = decide(eval_in(manifest_risk="low", policy=policy_in(2)))
    needs = decide(eval_in(manifest_risk="high", policy=policy_in(2)))
    assert [r.code for r in allow.reasons] == [ReasonCode.TIER_ALLOWS]
    assert [r.code for r in needs.reasons] == [ReasonCode.NEEDS_APPROVAL]
    assert needs.open_approval


def test_risk_is_the_override_else_the_manifest_else_medium():
    policy = policy_in(3, tool_risk_overrides={"email.send": "low"})
    assert effective_risk("email.send", "high", policy) == "low"
    assert effective_risk("crm.lookup", "low", policy) == "low"
    assert effective_risk("notes.read", None, policy) == "medium"
    assert effective_risk("email.send", "high", None) == "high"


def test_override_changes_the_tier_outcome():
    policy = policy_in(2, tool_risk_overrides={"email.send": "low"})
    assert decide(eval_in(tool="email.send", manifest_risk="high", policy=policy)).decision == Decision.ALLOW
    stricter = policy_in(4, tool_risk_overrides={"crm.lookup": "critical"})
    outcome = decide(eval_in(tool="crm.lookup", manifest_risk="low", policy=stricter))
    assert (outcome.decision, outcome.risk) == (Decision.NEEDS_APPROVAL, "critical")


@pytest.mark.parametrize(
    "state",
    [
        InstanceState.PROVISIONING,
        InstanceState.PAUSED,
        InstanceState.DRAINING,
        InstanceState.QUARANTINED,
        InstanceState.RETIRED,
    ],
)
def test_instance_states_other_than_active_and_readonly_deny(state):
    outcome = decide(eval_in(instance_state=state, manifest_risk="low"))
    assert outcome.reasons[0].code == ReasonCode.INSTANCE_STATE
    assert state in outcome.reasons[0].message
