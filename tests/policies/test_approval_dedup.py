"""NEEDS_APPROVAL opens one approval request; a repeated identical call without a key (same instance, tool
and params) while it is PENDING returns the same request; the same idempotency_key names one call."""

from datetime import timedelta

from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from audit.choices import EventType
from audit.recording import recorded_update
from tests.conftest import change_records
from tests.helpers import assert_error


def test_needs_approval_opens_a_pending_request_with_its_record(instance, evaluate, operator, policy):
    data = evaluate(instance, "email.send", params={"to": "a@example.com"}).json()
    approval = ApprovalRequest.objects.get(pk=data["approval"])
    assert approval.status == ApprovalStatus.PENDING
    assert (approval.instance_id, approval.tool, approval.risk) == (instance.pk, "email.send", "high")
    assert approval.params == {"to": "a@example.com"}
    assert approval.requester == operator.actor.ref
    assert approval.reasons == data["reasons"]
    assert abs(
        (approval.expires_at - approval.requested_at) - timedelta(seconds=policy.approval_timeout_seconds)
    ) < timedelta(seconds=1)
    [record] = change_records(approval, EventType.APPROVAL_REQUESTED)
    assert record.payload["after"]["tool"] == "email.send" and record.actor == operator.actor.ref
    assert record.payload["after"]["params_hash"] == approval.params_hash  # the params are named, not shown
    assert record.payload["values_withheld"] == ["params"]


def test_identical_request_returns_the_same_pending_approval(instance, evaluate):
    first = evaluate(instance, "email.send", params={"to": "a@example.com", "n": 1}).json()
    again = evaluate(instance, "email.send", params={"n": 1, "to": "a@example.com"}).json()
    assert again["approval"] == first["approval"]
    assert again["decision_id"] != first["decision_id"]
    assert [r["code"] for r in again["reasons"]] == ["needs_approval", "approval_pending"]
    assert ApprovalRequest.objects.count() == 1
    assert len(change_records(event_type=EventType.APPROVAL_REQUESTED)) == 1


def test_different_params_open_a_separate_request(instance, evaluate):
    a = evaluate(instance, "email.send", params={"to": "a@example.com"}).json()["approval"]
    b = evaluate(instance, "email.send", params={"to": "b@example.com"}).json()["approval"]
    assert a != b and ApprovalRequest.objects.count() == 2


def test_the_same_idempotency_key_for_other_params_is_a_conflict(instance, evaluate):
    a = evaluate(instance, "email.send", params={"v": 1}, idempotency_key="call-42").json()["approval"]
    conflict = evaluate(instance, "email.send", params={"v": 2}, idempotency_key="call-42")
    assert_error(conflict, 409, "idempotency_conflict", contains=["call-42", "params"])
    c = evaluate(instance, "email.send", params={"v": 3}, idempotency_key="call-43").json()["approval"]
    assert a != c
    assert ApprovalRequest.objects.count() == 2


def test_a_decided_request_no_longer_absorbs_new_calls(instance, evaluate):
    first = evaluate(instance, "email.send").json()["approval"]
    recorded_update(ApprovalRequest.objects.filter(pk=first), status=ApprovalStatus.DENIED)
    second = evaluate(instance, "email.send").json()["approval"]
    assert second != first


def test_an_overdue_pending_request_is_expired_and_replaced(instance, evaluate):
    first = evaluate(instance, "email.send").json()["approval"]
    recorded_update(ApprovalRequest.objects.filter(pk=first), expires_at=timezone.now() - timedelta(seconds=1))
    second = evaluate(instance, "email.send").json()["approval"]
    assert second != first
    assert ApprovalRequest.objects.get(pk=first).status == ApprovalStatus.EXPIRED
    assert len(change_records(event_type=EventType.APPROVAL_EXPIRED)) == 1
