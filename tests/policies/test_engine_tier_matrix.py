"""The autonomy tier table (SPEC §4 step 9), all 6 tiers x 4 risks, against the pure decision function."""

import pytest

from policies.choices import Decision, ReasonCode
from policies.engine import decide
from tests.policies.factories import eval_in, policy_in

A, N, D = Decision.ALLOW, Decision.NEEDS_APPROVAL, Decision.DENY
RISKS = ("low", "medium", "high", "critical")
MATRIX = {
    0: (D, D, D, D),
    1: (N, N, N, N),
    2: (A, N, N, N),
    3: (A, A, N, N),
    4: (A, A, A, N),
    5: (A, A, A, A),
}
CODE = {A: ReasonCode.TIER_ALLOWS, N: ReasonCode.NEEDS_APPROVAL, D: ReasonCode.OBSERVE_ONLY}
CASES = [(tier, risk, expected) for tier, row in MATRIX.items() for risk, expected in zip(RISKS, row, strict=True)]


@pytest.mark.parametrize(("tier", "risk", "expected"), CASES, ids=[f"tier{t}-{r}" for t, r, _ in CASES])
def test_tier_and_risk_give_the_table_decision(tier, risk, expected):
    outcome = decide(eval_in(tool="t", manifest_risk=risk, policy=policy_in(tier)))
    assert outcome.decision == expected
    assert outcome.risk == risk
    assert [r.code for r in outcome.reasons] == [CODE[expected]]
    assert outcome.open_approval is (expected == N)
    assert outcome.consume_approval is False


def test_matrix_covers_six_tiers_and_four_risks():
    assert len(CASES) == 24
