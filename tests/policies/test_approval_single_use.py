"""An APPROVED request grants exactly one call: same instance, same tool, same canonical params; it is
used once; it never overrides the hard checks 1-7."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from arm.recording import annotate
from audit.choices import EventType
from audit.models import ChangeRecord
from audit.recording import recorded_update
from policies.models import InstanceSpend, PolicyDecision, PolicyEnvelope
from registry.choices import InstanceState, IntegrityStatus
from tests.policies.factories import PolicyFactory, make_instance

PARAMS = {"to": "cfo@example.com", "subject": "Q3"}


@pytest.fixture
def approved(instance, evaluate):
    """An approval opened by a real evaluation and approved."""
    approval_id = evaluate(instance, "email.send", params=PARAMS).json()["approval"]
    recorded_update(
        ApprovalRequest.objects.filter(pk=approval_id),
        status=ApprovalStatus.APPROVED,
        decided_by="key:approver",
        decided_at=timezone.now(),
    )
    return approval_id


def codes(data):
    return [r["code"] for r in data["reasons"]]


def test_approved_request_allows_the_call_once(instance, evaluate, approved):
    data = evaluate(instance, "email.send", params=PARAMS, approval=approved).json()
    assert data["decision"] == "ALLOW" and data["approval"] == approved
    assert codes(data) == ["approval_granted"]  # what happened, not also why it needed one
    assert data["reasons"][0]["message"].startswith("Approved by key:approver:")
    assert data["decided_by"] == "key:approver"
    assert ApprovalRequest.objects.get(pk=approved).used_at is not None
    assert PolicyDecision.objects.get(pk=data["decision_id"]).approval_id is not None
    used = ChangeRecord.objects.filter(event_type=EventType.APPROVAL_USED, target_id=approved)
    assert used.count() == 1 and used.get().payload["changes"]["used_at"]["before"] is None

    again = evaluate(instance, "email.send", params=PARAMS, approval=approved).json()
    assert again["decision"] == "NEEDS_APPROVAL"
    assert codes(again)[:2] == ["needs_approval", "approval_invalid"]
    assert "already used" in again["reasons"][1]["message"]
    assert again["approval"] != approved  # a fresh request is opened for the next call
    assert used.count() == 1


def test_canonical_params_in_another_key_order_are_the_same_call(instance, evaluate, approved):
    reordered = {"subject": "Q3", "to": "cfo@example.com"}
    assert evaluate(instance, "email.send", params=reordered, approval=approved).json()["decision"] == "ALLOW"


def test_different_params_are_not_granted(instance, evaluate, approved):
    data = evaluate(instance, "email.send", params={**PARAMS, "to": "all@example.com"}, approval=approved).json()
    assert data["decision"] == "NEEDS_APPROVAL"
    assert "different params" in data["reasons"][1]["message"]
    assert ApprovalRequest.objects.get(pk=approved).used_at is None


def test_another_tool_is_not_granted(instance, evaluate, approved):
    data = evaluate(instance, "payments.refund", params=PARAMS, approval=approved).json()
    assert data["decision"] == "NEEDS_APPROVAL" and codes(data)[1] == "approval_invalid"
    assert ApprovalRequest.objects.get(pk=approved).used_at is None


def test_another_instance_is_not_granted(tenant, policy, evaluate, approved):
    other = make_instance(tenant, policy=policy)
    data = evaluate(other, "email.send", params=PARAMS, approval=approved).json()
    assert data["decision"] == "NEEDS_APPROVAL" and "another instance" in data["reasons"][1]["message"]


@pytest.mark.parametrize("status", [ApprovalStatus.PENDING, ApprovalStatus.DENIED, ApprovalStatus.EXPIRED])
def test_only_an_approved_request_grants(instance, evaluate, approved, status):
    recorded_update(ApprovalRequest.objects.filter(pk=approved), status=status)
    data = evaluate(instance, "email.send", params=PARAMS, approval=approved).json()
    assert data["decision"] == "NEEDS_APPROVAL" and codes(data)[1] == "approval_invalid"


def test_an_approved_request_past_its_deadline_does_not_grant(instance, evaluate, approved):
    recorded_update(ApprovalRequest.objects.filter(pk=approved), expires_at=timezone.now() - timedelta(seconds=1))
    data = evaluate(instance, "email.send", params=PARAMS, approval=approved).json()
    assert data["decision"] == "NEEDS_APPROVAL" and "expired" in data["reasons"][1]["message"]


def test_unknown_or_other_tenant_approval_id_is_invalid_not_an_error(other_tenant, instance, evaluate):
    from tests.policies.factories import make_approval

    theirs = make_approval(
        make_instance(other_tenant, policy=PolicyFactory(tenant=other_tenant)),
        params=PARAMS,
        status=ApprovalStatus.APPROVED,
    )
    data = evaluate(instance, "email.send", params=PARAMS, approval=str(theirs.pk)).json()
    assert data["decision"] == "NEEDS_APPROVAL"
    assert data["reasons"][1] == {"code": "approval_invalid", "message": f"Approval {theirs.pk} was not found."}
    ApprovalRequest.objects.filter(pk=theirs.pk, used_at__isnull=True).get()


# An approval never overrides checks 1-7: break each after approving, the call is DENYed with that check.
def _pause(instance):
    recorded_update(type(instance).objects.filter(pk=instance.pk), state=InstanceState.PAUSED)


def _tamper(instance):
    recorded_update(
        type(instance.version).objects.filter(pk=instance.version_id), integrity_status=IntegrityStatus.TAMPERED
    )


def _detach(instance):
    with annotate(instance.policy_attachment, EventType.POLICY_DETACHED):
        instance.policy_attachment.delete()


def _deny_tool(instance):
    recorded_update(PolicyEnvelope.objects.filter(pk=instance.policy_attachment.policy_id), denied_tools=["email.*"])


def _narrow_scopes(instance):
    recorded_update(
        PolicyEnvelope.objects.filter(pk=instance.policy_attachment.policy_id), data_scopes=["tickets:read"]
    )


def _cap_cost(instance):
    recorded_update(
        PolicyEnvelope.objects.filter(pk=instance.policy_attachment.policy_id), cost_limit_daily_usd=Decimal("0.50")
    )


BREAKERS = {
    "instance_state": _pause,
    "integrity": _tamper,
    "no_policy": _detach,
    "tool_not_allowed": _deny_tool,
    "data_scope": _narrow_scopes,
    "cost_limit": _cap_cost,
}


@pytest.mark.parametrize("code", list(BREAKERS))
def test_an_approval_never_overrides_a_hard_check(instance, evaluate, approved, code):
    BREAKERS[code](instance)
    data = evaluate(
        instance, "email.send", params=PARAMS, approval=approved, data_scopes=["crm:read"], estimated_cost_usd="1.00"
    ).json()
    assert data["decision"] == "DENY"
    assert codes(data) == [code, "approval_invalid"]
    assert ApprovalRequest.objects.get(pk=approved).used_at is None
    assert not InstanceSpend.objects.filter(amount_usd__gt=0).exists()


def test_an_approval_never_overrides_an_undeclared_tool(tenant, policy, evaluate, instance):
    approval_id = evaluate(instance, "email.send", params=PARAMS).json()["approval"]
    recorded_update(ApprovalRequest.objects.filter(pk=approval_id), status=ApprovalStatus.APPROVED, tool="shell.exec")
    data = evaluate(instance, "shell.exec", params=PARAMS, approval=approval_id).json()
    assert codes(data) == ["undeclared_tool", "approval_invalid"]


def test_an_approval_does_not_override_observe_only(instance, evaluate, approved):
    recorded_update(PolicyEnvelope.objects.filter(pk=instance.policy_attachment.policy_id), autonomy_tier=0)
    data = evaluate(instance, "email.send", params=PARAMS, approval=approved).json()
    assert (data["decision"], codes(data)) == ("DENY", ["observe_only", "approval_invalid"])


def test_granted_call_adds_its_estimate_to_spend(instance, evaluate):
    opened = evaluate(instance, "email.send", params=PARAMS, estimated_cost_usd="2.50").json()["approval"]
    recorded_update(ApprovalRequest.objects.filter(pk=opened), status=ApprovalStatus.APPROVED, decided_by="user:b")
    data = evaluate(instance, "email.send", params=PARAMS, approval=opened, estimated_cost_usd="2.50").json()
    assert data["decision"] == "ALLOW"
    assert InstanceSpend.objects.get(instance=instance, period="day").amount_usd == Decimal("2.50")
