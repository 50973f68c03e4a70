"""Evaluate accepts a tool's manifest name or its call name (email.send or email_send); decisions, approvals,
policy globs and risk overrides always use the manifest name."""

from approvals.models import ApprovalRequest
from policies.models import PolicyDecision
from tests.policies.factories import TOOLS, PolicyFactory, make_instance


def test_a_tool_called_by_its_call_name_is_decided_and_stored_under_its_manifest_name(instance, evaluate):
    data = evaluate(instance, "email_send", params={"to": "a@example.com"}).json()
    assert data["decision"] == "NEEDS_APPROVAL"  # high risk at tier 3: the manifest entry was found
    assert PolicyDecision.objects.get(pk=data["decision_id"]).tool == "email.send"
    assert ApprovalRequest.objects.get(pk=data["approval"]).tool == "email.send"


def test_a_declared_call_name_is_accepted(tenant, policy, evaluate):
    tools = [*TOOLS, {"name": "tickets.close", "risk": "low", "call_name": "close_ticket"}]
    data = evaluate(make_instance(tenant, policy=policy, tools=tools), "close_ticket").json()
    assert data["decision"] == "ALLOW" and PolicyDecision.objects.get(pk=data["decision_id"]).tool == "tickets.close"


def test_policy_globs_and_overrides_match_manifest_names(tenant, evaluate):
    policy = PolicyFactory(
        tenant=tenant, autonomy_tier=3, denied_tools=["email.*"], tool_risk_overrides={"crm.update": "low"}
    )
    instance = make_instance(tenant, policy=policy)
    denied = evaluate(instance, "email_send").json()
    assert denied["decision"] == "DENY" and denied["reasons"][0]["code"] == "tool_not_allowed"
    assert "email.send" in denied["reasons"][0]["message"]
    assert evaluate(instance, "crm_update").json()["risk"] == "low"
    call_name_glob = make_instance(tenant, policy=PolicyFactory(tenant=tenant, allowed_tools=["crm_*"]))
    assert evaluate(call_name_glob, "crm_lookup").json()["reasons"][0]["code"] == "tool_not_allowed"


def test_the_call_name_and_the_manifest_name_are_one_call_under_a_key(instance, evaluate):
    first = evaluate(instance, "email.send", idempotency_key="mail").json()
    again = evaluate(instance, "email_send", idempotency_key="mail").json()
    assert again["replay"] and again["approval"] == first["approval"]


def test_an_unknown_name_is_still_undeclared(instance, evaluate):
    data = evaluate(instance, "email_sender").json()
    assert data["decision"] == "DENY" and data["reasons"][0]["code"] == "undeclared_tool"
    assert PolicyDecision.objects.get(pk=data["decision_id"]).tool == "email_sender"
