"""POST /api/v1/policy/evaluate/: response shape, decision log, roles, instance binding, tenant isolation."""

import uuid

import pytest

from policies.choices import Decision, ReasonCode
from policies.models import PolicyDecision
from policies.services import params_hash
from registry.choices import InstanceState, IntegrityStatus
from tests.factories import make_api_key
from tests.helpers import assert_error
from tests.policies.conftest import EVALUATE
from tests.policies.factories import PolicyFactory, make_instance


def test_allow_answers_the_spec_shape_and_stores_the_decision(instance, policy, evaluate):
    response = evaluate(instance, "crm.lookup", params={"id": 7}, data_scopes=["crm:read"], estimated_cost_usd="0.25")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert set(data) == {"decision", "risk", "reasons", "approval", "decision_id", "policy", "replay", "decided_by"}
    assert data["decision"] == Decision.ALLOW and data["risk"] == "low" and data["approval"] is None
    assert data["replay"] is False and data["decided_by"] is None
    assert data["reasons"] == [{"code": ReasonCode.TIER_ALLOWS, "message": data["reasons"][0]["message"]}]
    assert data["policy"] == {"id": str(policy.pk), "revision": policy.revision}
    row = PolicyDecision.objects.get(pk=data["decision_id"])
    assert (row.decision, row.risk, row.tool, row.instance_id) == ("ALLOW", "low", "crm.lookup", instance.pk)
    assert (row.policy_id, row.policy_revision) == (policy.pk, policy.revision)
    assert row.params_hash == params_hash({"id": 7})
    assert str(row.estimated_cost_usd) == "0.2500"
    assert row.reasons == data["reasons"]
    assert row.duration_us > 0


def test_needs_approval_returns_the_opened_approval(instance, evaluate):
    data = evaluate(instance, "email.send").json()
    assert data["decision"] == Decision.NEEDS_APPROVAL and data["risk"] == "high"
    assert data["approval"] is not None
    assert data["reasons"][0]["code"] == ReasonCode.NEEDS_APPROVAL


def test_deny_stores_the_reason(instance, evaluate):
    data = evaluate(instance, "shell.exec").json()
    assert data["decision"] == Decision.DENY
    assert data["reasons"][0]["code"] == ReasonCode.UNDECLARED_TOOL
    assert PolicyDecision.objects.get(pk=data["decision_id"]).reasons[0]["code"] == ReasonCode.UNDECLARED_TOOL


def test_instance_without_policy_fails_closed(tenant, evaluate):
    bare = make_instance(tenant, policy=None)
    data = evaluate(bare, "crm.lookup").json()
    assert (data["decision"], data["reasons"][0]["code"], data["policy"]) == ("DENY", "no_policy", None)


def test_tampered_version_denies_with_integrity(tenant, policy, evaluate):
    inst = make_instance(tenant, policy=policy)
    inst.version.integrity_status = IntegrityStatus.TAMPERED
    inst.version.save(update_fields=["integrity_status"])
    assert evaluate(inst, "crm.lookup").json()["reasons"][0]["code"] == ReasonCode.INTEGRITY


def test_paused_instance_denies_with_instance_state(tenant, policy, evaluate):
    inst = make_instance(tenant, policy=policy, state=InstanceState.PAUSED)
    assert evaluate(inst, "crm.lookup").json()["reasons"][0]["code"] == ReasonCode.INSTANCE_STATE


def test_tool_is_checked_against_the_instances_own_version_manifest(tenant, policy, evaluate):
    """Another version declaring the tool does not help."""
    mine = make_instance(tenant, policy=policy, tools=[{"name": "crm.lookup", "risk": "low"}])
    make_instance(tenant, policy=PolicyFactory(tenant=tenant), tools=[{"name": "email.send", "risk": "low"}])
    assert evaluate(mine, "email.send").json()["reasons"][0]["code"] == ReasonCode.UNDECLARED_TOOL


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_operator_and_admin_may_evaluate(cast, instance, evaluate, role):
    assert evaluate(instance, client=cast[role].client).status_code == 200


@pytest.mark.parametrize("role", ["viewer", "approver", "compliance"])
def test_other_member_roles_may_not_evaluate(cast, instance, evaluate, role):
    assert_error(evaluate(instance, client=cast[role].client), 403, "role_required")


def test_unbound_runtime_key_may_evaluate(instance, evaluate, runtime_key):
    assert evaluate(instance, client=runtime_key[1]).status_code == 200


def test_bound_runtime_key_evaluates_only_for_its_instance(tenant, policy, instance, evaluate):
    from rest_framework.test import APIClient

    other = make_instance(tenant, policy=policy)
    _, secret = make_api_key(tenant, ["runtime"], instance=instance)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert evaluate(instance, client=client).status_code == 200
    assert_error(evaluate(other, client=client), 403, "instance_binding")
    assert_error(evaluate(type("X", (), {"pk": uuid.uuid4()})(), client=client), 403, "instance_binding")
    assert PolicyDecision.objects.filter(instance=other).count() == 0


def test_unauthenticated_gets_401(instance, evaluate, anon):
    assert evaluate(instance, client=anon).status_code == 401


def test_another_tenants_instance_answers_404(other_tenant, outsider, instance, evaluate):
    assert_error(evaluate(instance, client=outsider.client), 404, "not_found")
    theirs = make_instance(other_tenant, policy=PolicyFactory(tenant=other_tenant))
    assert_error(evaluate(theirs), 404, "not_found")
    assert_error(evaluate(type("X", (), {"pk": uuid.uuid4()})()), 404, "not_found")
    assert PolicyDecision.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"tool": "crm.lookup"}, "instance"),
        ({"instance": "not-a-uuid", "tool": "crm.lookup"}, "instance"),
        ({"instance": "{id}"}, "tool"),
        ({"instance": "{id}", "tool": 5}, "tool"),
        ({"instance": "{id}", "tool": ""}, "tool"),
        ({"instance": "{id}", "tool": "crm.lookup", "params": [1, 2]}, "params"),
        ({"instance": "{id}", "tool": "crm.lookup", "params": "x"}, "params"),
        ({"instance": "{id}", "tool": "crm.lookup", "data_scopes": "crm:read"}, "data_scopes"),
        ({"instance": "{id}", "tool": "crm.lookup", "data_scopes": [1]}, "data_scopes"),
        ({"instance": "{id}", "tool": "crm.lookup", "estimated_cost_usd": "-0.01"}, "estimated_cost_usd"),
        ({"instance": "{id}", "tool": "crm.lookup", "estimated_cost_usd": "abc"}, "estimated_cost_usd"),
        ({"instance": "{id}", "tool": "crm.lookup", "estimated_cost_usd": "0.00001"}, "estimated_cost_usd"),
        ({"instance": "{id}", "tool": "crm.lookup", "estimated_cost_usd": "NaN"}, "estimated_cost_usd"),
        ({"instance": "{id}", "tool": "crm.lookup", "estimated_cost_usd": "1000000.0001"}, "estimated_cost_usd"),
        ({"instance": "{id}", "tool": "crm.lookup", "estimated_cost_usd": "Infinity"}, "estimated_cost_usd"),
        ({"instance": "{id}", "tool": "crm.lookup", "approval": "nope"}, "approval"),
        ({"instance": "{id}", "tool": "crm.lookup", "idempotency_key": 12}, "idempotency_key"),
        ({"instance": "{id}", "tool": "crm.lookup", "estimated_cost": "1"}, "estimated_cost"),
    ],
)
def test_bad_bodies_answer_400_naming_the_field(operator, instance, payload, field):
    payload = {k: (str(instance.pk) if v == "{id}" else v) for k, v in payload.items()}
    response = operator.client.post(EVALUATE, payload, format="json")
    data = assert_error(response, 400, "validation_error")
    assert field in data["errors"], data
    assert PolicyDecision.objects.count() == 0


def test_malformed_json_answers_400_parse_error(operator):
    response = operator.client.post(EVALUATE, data=b"{not json", content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_a_json_list_body_answers_400(operator):
    response = operator.client.post(EVALUATE, data=b"[1]", content_type="application/json")
    assert_error(response, 400, "validation_error")


def test_params_outside_i_json_are_refused_before_evaluation(operator, instance):
    """Integers beyond ±(2^53-1) cannot be hashed canonically (RFC 8785): the parser refuses them."""
    body = {"instance": str(instance.pk), "tool": "crm.lookup", "params": {"n": 2**60}}
    data = assert_error(operator.client.post(EVALUATE, body, format="json"), 400, "parse_error")
    assert "9007199254740991" in data["message"]
    assert PolicyDecision.objects.count() == 0
