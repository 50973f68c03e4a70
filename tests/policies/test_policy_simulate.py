"""POST /api/v1/policies/{id}/simulate/: replays recent decisions under a proposed change with the same
decision function; matches what evaluation answers once the change is made; writes nothing."""

from decimal import Decimal

import pytest

from approvals.models import ApprovalRequest
from audit.models import ChangeRecord
from policies.models import InstanceSpend, PolicyDecision, PolicyEnvelope
from tests.helpers import assert_error
from tests.policies.factories import PolicyFactory, make_instance

CALLS = [
    ("crm.lookup", {}, ["crm:read"], None),
    ("crm.update", {"id": 1}, [], None),
    ("email.send", {"to": "x"}, [], None),
    ("payments.refund", {"n": 5}, [], None),
    ("notes.read", {}, ["tickets:read"], None),
    ("shell.exec", {}, [], None),
    ("crm.lookup", {}, ["billing:read"], None),
]


def url(policy):
    return f"/api/v1/policies/{policy.pk}/simulate/"


def run_calls(evaluate, instance):
    return [
        evaluate(instance, tool, params=params, data_scopes=scopes, estimated_cost_usd=cost).json()["decision"]
        for tool, params, scopes, cost in CALLS
    ]


def table():
    return (
        PolicyDecision.objects.count(),
        ApprovalRequest.objects.count(),
        ChangeRecord.objects.count(),
        InstanceSpend.objects.count(),
        list(PolicyEnvelope.objects.values_list("revision", "autonomy_tier", "allowed_tools")),
    )


CHANGES = [
    {"autonomy_tier": 5},
    {"autonomy_tier": 1},
    {"autonomy_tier": 0},
    {"denied_tools": ["email.*"]},
    {"allowed_tools": ["crm.*"]},
    {"data_scopes": ["*"]},
    {"tool_risk_overrides": {"crm.update": "critical", "email.send": "low"}},
]


@pytest.mark.parametrize("change", CHANGES, ids=[next(iter(c)) + str(i) for i, c in enumerate(CHANGES)])
def test_simulation_matches_evaluation_after_the_change(compliance, instance, policy, evaluate, change):
    before = run_calls(evaluate, instance)
    response = compliance.client.post(url(policy), change, format="json")
    assert response.status_code == 200, response.json()
    sim = response.json()
    assert sim["evaluated"] == len(CALLS)
    assert sim["current_counts"] == {d: before.count(d) for d in ("ALLOW", "DENY", "NEEDS_APPROVAL")}

    compliance.client.patch(f"/api/v1/policies/{policy.pk}/", change, format="json")
    after = run_calls(evaluate, instance)
    assert sim["counts"] == {d: after.count(d) for d in ("ALLOW", "DENY", "NEEDS_APPROVAL")}
    newest_first = list(PolicyDecision.objects.filter(policy_revision=1).order_by("-created_at", "-id"))
    expected_flips = {
        str(row.pk): (b, a) for row, b, a in zip(newest_first, reversed(before), reversed(after), strict=True) if b != a
    }
    assert {f["decision_id"]: (f["before"], f["after"]) for f in sim["flips"]} == expected_flips
    assert sim["flipped"] == len(expected_flips)


def test_simulation_writes_nothing(compliance, instance, policy, evaluate):
    run_calls(evaluate, instance)
    snapshot = table()
    response = compliance.client.post(url(policy), {"autonomy_tier": 5, "denied_tools": ["crm.*"]}, format="json")
    assert response.status_code == 200
    assert response.json()["flipped"] > 0
    assert table() == snapshot


def test_flip_entries_name_the_decision_tool_and_outcomes(compliance, instance, policy, evaluate):
    evaluate(instance, "email.send", params={"to": "x"})
    flips = compliance.client.post(url(policy), {"autonomy_tier": 4}, format="json").json()["flips"]
    [flip] = flips
    assert flip["tool"] == "email.send" and (flip["before"], flip["after"]) == ("NEEDS_APPROVAL", "ALLOW")
    assert flip["recorded"] == "NEEDS_APPROVAL" and flip["reasons"][0]["code"] == "tier_allows"
    assert flip["decision_id"] == str(PolicyDecision.objects.get().pk)


def test_cost_limits_replay_the_spend_at_decision_time(compliance, tenant, evaluate):
    policy = PolicyFactory(tenant=tenant, autonomy_tier=5)
    inst = make_instance(tenant, policy=policy)
    for _ in range(3):
        evaluate(inst, "crm.lookup", estimated_cost_usd="4.00")
    sim = compliance.client.post(url(policy), {"cost_limit_daily_usd": "10.00"}, format="json").json()
    assert sim["counts"] == {"ALLOW": 2, "DENY": 1, "NEEDS_APPROVAL": 0}
    [flip] = sim["flips"]
    assert flip["reasons"][0]["code"] == "cost_limit"
    assert flip["decision_id"] == str(PolicyDecision.objects.order_by("-created_at", "-id").first().pk)
    assert InstanceSpend.objects.get(instance=inst, period="day").amount_usd == Decimal("12.00")


def test_limit_takes_the_most_recent_decisions(compliance, instance, policy, evaluate):
    run_calls(evaluate, instance)
    sim = compliance.client.post(url(policy), {"limit": 2}, format="json").json()
    assert sim["evaluated"] == 2
    assert sim["changes"] == {} and sim["flipped"] == 0


def test_only_decisions_under_this_policy_are_replayed(compliance, tenant, instance, policy, evaluate):
    other = make_instance(tenant, policy=PolicyFactory(tenant=tenant))
    evaluate(other, "crm.lookup")
    evaluate(instance, "crm.lookup")
    assert compliance.client.post(url(policy), {}, format="json").json()["evaluated"] == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"autonomy_tier": 9}, "autonomy_tier"),
        ({"allowed_tools": ["x["]}, "allowed_tools"),
        ({"limit": 0}, "limit"),
        ({"limit": 10001}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_proposals_answer_400(compliance, policy, payload, field):
    response = compliance.client.post(url(policy), payload, format="json")
    assert field in assert_error(response, 400, "validation_error")["errors"]


def test_an_invalid_combination_is_refused_by_the_model_rules(compliance, tenant):
    policy = PolicyFactory(tenant=tenant, cost_limit_monthly_usd=Decimal("5"))
    response = compliance.client.post(url(policy), {"cost_limit_daily_usd": "6"}, format="json")
    assert "cost_limit_daily_usd" in assert_error(response, 400, "validation_error")["errors"]
