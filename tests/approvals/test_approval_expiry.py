"""Expiry is auto-deny: a PENDING request past expires_at reads as EXPIRED at once (API, UI, admin) without
any write; it becomes EXPIRED in the database (APPROVAL_EXPIRED) when decided (409 expired), when an
evaluation names it, and in bulk by ``manage.py expire_approvals`` (the background path)."""

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from audit.choices import EventType
from audit.recording import recorded_update
from tests.approvals.conftest import URL
from tests.conftest import change_records
from tests.helpers import assert_error
from tests.policies.factories import PolicyFactory, make_approval, make_instance


def overdue(approval):
    recorded_update(ApprovalRequest.objects.filter(pk=approval.pk), expires_at=timezone.now() - timedelta(seconds=1))


def test_reading_the_detail_shows_an_overdue_request_expired_without_writing(viewer, pending):
    overdue(pending)
    data = viewer.client.get(f"{URL}{pending.pk}/").json()
    pending.refresh_from_db()
    assert data["status"] == "EXPIRED" and data["decided_by"] == "system:expiry"
    assert data["decided_at"] == pending.expires_at.isoformat().replace("+00:00", "Z")
    assert pending.status == ApprovalStatus.PENDING  # nothing written by a read
    assert change_records(pending, EventType.APPROVAL_EXPIRED) == []


def test_listing_filters_overdue_requests_as_expired_without_writing(viewer, pending):
    overdue(pending)
    assert viewer.client.get(URL, {"status": "PENDING"}).json()["count"] == 0
    [row] = viewer.client.get(URL, {"status": "EXPIRED"}).json()["results"]
    assert (row["id"], row["status"]) == (str(pending.pk), "EXPIRED")
    assert viewer.client.get(URL).json()["results"][0]["status"] == "EXPIRED"
    assert change_records(pending, EventType.APPROVAL_EXPIRED) == []
    # The background path then writes it once, with its record; reads look the same afterwards.
    call_command("expire_approvals", stdout=StringIO())
    assert len(change_records(pending, EventType.APPROVAL_EXPIRED)) == 1
    assert viewer.client.get(URL, {"status": "EXPIRED"}).json()["results"][0]["decided_by"] == "system:expiry"


def test_deciding_an_overdue_request_answers_409_expired_and_expires_it(approver, pending):
    overdue(pending)
    assert_error(approver.client.post(f"{URL}{pending.pk}/approve/", {}, format="json"), 409, "expired")
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.EXPIRED
    assert len(change_records(pending, EventType.APPROVAL_EXPIRED)) == 1
    assert change_records(pending, EventType.APPROVAL_DECIDED) == []
    assert_error(approver.client.post(f"{URL}{pending.pk}/deny/", {}, format="json"), 409, "expired")


def test_an_expired_request_cannot_grant(pending, instance, evaluate):
    overdue(pending)
    data = evaluate(instance, "email.send", params={"to": "x@example.com"}, approval=str(pending.pk)).json()
    assert data["decision"] == "NEEDS_APPROVAL" and data["approval"] != str(pending.pk)
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.EXPIRED


def test_unexpired_requests_stay_pending_on_read(viewer, pending):
    assert viewer.client.get(f"{URL}{pending.pk}/").json()["status"] == "PENDING"
    assert change_records(pending, EventType.APPROVAL_EXPIRED) == []


def test_expire_approvals_command_expires_every_tenant_and_prints_the_count(tenant, other_tenant, instance):
    theirs = make_instance(other_tenant, policy=PolicyFactory(tenant=other_tenant))
    past = timezone.now() - timedelta(minutes=5)
    due = [make_approval(instance, params={"n": 1}, expires_at=past), make_approval(theirs, expires_at=past)]
    fresh = make_approval(instance, params={"n": 2})
    decided = make_approval(instance, params={"n": 3}, expires_at=past, status=ApprovalStatus.APPROVED)
    out = StringIO()
    call_command("expire_approvals", stdout=out)
    assert "Expired 2 approval request(s)" in out.getvalue()
    for approval in due:
        approval.refresh_from_db()
        assert approval.status == ApprovalStatus.EXPIRED
        assert len(change_records(approval, EventType.APPROVAL_EXPIRED)) == 1
    fresh.refresh_from_db()
    decided.refresh_from_db()
    assert (fresh.status, decided.status) == (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)
    out = StringIO()
    call_command("expire_approvals", stdout=out)
    assert "Expired 0 approval request(s)" in out.getvalue()


def test_expire_approvals_command_can_take_one_tenant(tenant, other_tenant, instance):
    theirs = make_instance(other_tenant, policy=PolicyFactory(tenant=other_tenant))
    past = timezone.now() - timedelta(minutes=5)
    mine, other = make_approval(instance, expires_at=past), make_approval(theirs, expires_at=past)
    call_command("expire_approvals", "--tenant", tenant.slug, stdout=StringIO())
    mine.refresh_from_db()
    other.refresh_from_db()
    assert (mine.status, other.status) == (ApprovalStatus.EXPIRED, ApprovalStatus.PENDING)
