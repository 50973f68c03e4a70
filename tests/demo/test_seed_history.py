"""seed_demo's history is one a live ARM could have recorded: every approval requested before it was
decided, used or expired, by the decision that opened it; expired ones expired by the expiry service,
with their record, after their deadline; pending ones alive for hours (their policy's timeout, as
recorded); running instances beating. Re-running it changes nothing and says so."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from audit.models import ChangeRecord
from demo.keys import BEATING_STATES
from policies.models import PolicyDecision
from registry.models import AgentInstance
from tenancy.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db


def seed(keys_file, *args) -> str:
    out = StringIO()
    call_command("seed_demo", "--keys-file", str(keys_file), *args, stdout=out)
    return out.getvalue()


def records(event_type, approval) -> list[ChangeRecord]:
    return list(
        ChangeRecord.objects.filter(
            tenant_id=approval.tenant_id,
            event_type=event_type,
            target_type="ApprovalRequest",
            target_id=str(approval.pk),
        )
    )


def test_every_approval_is_requested_before_it_is_decided_used_or_expired(tmp_path):
    seed(tmp_path / "keys.json")
    approvals = list(ApprovalRequest.objects.select_related("instance__policy_attachment__policy"))
    assert {a.status for a in approvals} == set(ApprovalStatus.values)
    for approval in approvals:
        opened_by = PolicyDecision.objects.filter(approval=approval, decision="NEEDS_APPROVAL").order_by("created_at")
        assert opened_by.exists(), f"{approval.pk} was opened by no evaluation"
        assert opened_by.first().created_at >= approval.requested_at
        assert len(records("APPROVAL_REQUESTED", approval)) == 1
        if approval.decided_at is not None:
            assert approval.decided_at > approval.requested_at, approval.status
        if approval.used_at is not None:
            assert approval.used_at >= approval.decided_at
            used_by = PolicyDecision.objects.get(approval=approval, decision="ALLOW")
            assert used_by.created_at >= approval.decided_at


def test_expired_approvals_expired_through_the_expiry_service_after_their_deadline(tmp_path):
    seed(tmp_path / "keys.json")
    expired = list(ApprovalRequest.objects.filter(status=ApprovalStatus.EXPIRED))
    assert expired
    for approval in expired:
        (record,) = records("APPROVAL_EXPIRED", approval)
        assert record.actor == "system:expiry"
        assert approval.requested_at < approval.expires_at == approval.decided_at <= record.created_at
        # The deadline is the one recorded when it was requested: nothing moved it afterwards.
        (requested,) = records("APPROVAL_REQUESTED", approval)
        deadline = approval.expires_at
        assert parse_datetime(requested.payload["after"]["expires_at"]) == deadline.replace(
            microsecond=deadline.microsecond // 1000 * 1000
        )


def test_pending_approvals_outlast_a_demo_by_their_policys_timeout(tmp_path):
    seed(tmp_path / "keys.json")
    pending = list(
        ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING).select_related(
            "instance__policy_attachment__policy"
        )
    )
    assert pending
    for approval in pending:
        assert approval.expires_at - timezone.now() > timedelta(hours=2)
        timeout = timedelta(seconds=approval.instance.policy_attachment.policy.approval_timeout_seconds)
        assert approval.expires_at - approval.requested_at == timeout


def test_running_instances_have_beaten_and_the_audit_trail_is_in_time_order(tmp_path):
    seed(tmp_path / "keys.json")
    for instance in AgentInstance.objects.all():
        beaten = instance.last_heartbeat_at is not None
        assert beaten == (instance.state in BEATING_STATES), (instance.name, instance.state)
        if beaten:
            assert instance.last_heartbeat_at >= instance.created_at
    for tenant in Tenant.objects.all():
        times = list(ChangeRecord.objects.filter(tenant=tenant).order_by("seq").values_list("created_at", flat=True))
        assert times == sorted(times)


def test_running_it_again_changes_nothing_and_says_so(tmp_path):
    keys_file = tmp_path / "keys.json"
    first = seed(keys_file)
    assert "Demo already seeded" not in first
    before = (
        ChangeRecord.objects.count(),
        ApiKey.objects.count(),
        PolicyDecision.objects.count(),
        keys_file.read_text(),
    )

    again = seed(keys_file)

    assert "Demo already seeded; nothing changed (`manage.py seed_demo --reset` rebuilds it)." in again
    assert "minted" not in again
    after = (
        ChangeRecord.objects.count(),
        ApiKey.objects.count(),
        PolicyDecision.objects.count(),
        keys_file.read_text(),
    )
    assert after == before
