"""Approve / deny: approver or admin only, never the requester (four eyes), 409 on anything not PENDING,
APPROVAL_DECIDED with the decision and note."""

import pytest

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from arm.errors import FourEyesViolation
from audit.choices import EventType
from tests.approvals.conftest import URL
from tests.conftest import change_records
from tests.helpers import assert_error


def decide(client, approval, verb="approve", body=None):
    return client.post(f"{URL}{approval.pk}/{verb}/", body if body is not None else {}, format="json")


def test_approver_approves_with_a_note(approver, pending):
    response = decide(approver.client, pending, body={"note": "ok for Q3"})
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["status"] == "APPROVED" and data["decided_by"] == approver.actor.ref
    assert data["note"] == "ok for Q3" and data["decided_at"]
    [record] = change_records(pending, EventType.APPROVAL_DECIDED)
    assert record.payload["changes"]["status"] == {"before": "PENDING", "after": "APPROVED"}
    assert record.payload["changes"]["note"] == {"before": "", "after": "ok for Q3"}
    assert record.actor == approver.actor.ref


def test_approver_denies(approver, pending):
    data = decide(approver.client, pending, "deny").json()
    assert data["status"] == "DENIED" and data["note"] == ""
    assert change_records(pending, EventType.APPROVAL_DECIDED)[0].payload["changes"]["status"]["after"] == "DENIED"


def test_admin_may_decide(admin_member, pending):
    assert decide(admin_member.client, pending).json()["status"] == "APPROVED"


@pytest.mark.parametrize("role", ["viewer", "operator", "compliance"])
def test_other_roles_cannot_decide(cast, pending, role):
    assert_error(decide(cast[role].client, pending), 403, "role_required")
    assert_error(decide(cast[role].client, pending, "deny"), 403, "role_required")
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.PENDING


def test_runtime_key_cannot_decide(runtime_key, pending):
    assert_error(decide(runtime_key[1], pending), 403, "role_required")


def test_the_requester_cannot_decide_its_own_request(tenant, instance, evaluate):
    """A key holding both operator and approver evaluates, then tries to approve: four eyes."""
    from tests.helpers import member_with

    both = member_with(tenant, ["operator", "approver"], "op-approver")
    approval_id = evaluate(instance, "email.send", client=both.client).json()["approval"]
    approval = ApprovalRequest.objects.get(pk=approval_id)
    assert approval.requester == both.actor.ref
    assert_error(decide(both.client, approval), 403, "four_eyes")
    assert_error(decide(both.client, approval, "deny"), 403, "four_eyes")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    assert change_records(approval, EventType.APPROVAL_DECIDED) == []


def test_four_eyes_holds_in_the_service_for_any_caller(pending, approver):
    from dataclasses import replace

    requester_as_approver = replace(approver.actor, ref=pending.requester)
    with pytest.raises(FourEyesViolation):
        approval_decide(approval=pending, approve=True, actor=requester_as_approver)


@pytest.mark.parametrize(("first", "second"), [("approve", "approve"), ("approve", "deny"), ("deny", "approve")])
def test_deciding_twice_answers_409_already_decided(approver, admin_member, pending, first, second):
    assert decide(approver.client, pending, first).status_code == 200
    assert_error(decide(admin_member.client, pending, second), 409, "already_decided")
    assert len(change_records(pending, EventType.APPROVAL_DECIDED)) == 1


def test_bad_bodies_answer_400(approver, pending):
    assert_error(decide(approver.client, pending, body={"note": 5}), 400, "validation_error")
    assert_error(decide(approver.client, pending, body={"note": "x" * 2001}), 400, "validation_error")
    # the length as sent: 2,000 \x1c after the "x" are whitespace to Python's strip, not to the schema
    assert_error(decide(approver.client, pending, body={"note": "x" + "\x1c" * 2000}), 400, "validation_error")
    assert_error(decide(approver.client, pending, body={"verdict": "yes"}), 400, "validation_error")
    response = approver.client.post(f"{URL}{pending.pk}/approve/", data=b"{", content_type="application/json")
    assert_error(response, 400, "parse_error")
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.PENDING


def test_null_note_is_an_empty_note(approver, pending):
    assert decide(approver.client, pending, body={"note": None}).json()["note"] == ""


def test_approved_request_lets_the_requester_proceed_once(approver, pending, instance, evaluate, runtime_key):
    decide(approver.client, pending)
    body = {"params": {"to": "x@example.com"}, "approval": str(pending.pk), "client": runtime_key[1]}
    assert evaluate(instance, "email.send", **body).json()["decision"] == "ALLOW"
    assert evaluate(instance, "email.send", **body).json()["decision"] == "NEEDS_APPROVAL"


def test_a_used_approval_cannot_be_decided_again(approver, admin_member, pending, instance, evaluate):
    decide(approver.client, pending)
    evaluate(instance, "email.send", params={"to": "x@example.com"}, approval=str(pending.pk))
    assert_error(decide(admin_member.client, pending, "deny"), 409, "already_decided")
