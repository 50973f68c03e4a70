"""Django admin for policies, decisions, spend and approvals: scoped to the tenants where the user holds
``admin``, writes through the services (records, rules), approvals decided by actions."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from audit.choices import EventType
from policies.models import PolicyEnvelope
from tests.conftest import change_records
from tests.factories import MembershipFactory, UserFactory
from tests.policies.factories import PolicyFactory, make_approval, make_instance


@pytest.fixture
def staff(tenant):
    user = UserFactory(username="staff-admin", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    client = Client()
    client.force_login(user)
    return client


def test_policy_changelist_shows_only_the_admins_tenants(staff, tenant, other_tenant):
    PolicyFactory(tenant=tenant, name="ours")
    PolicyFactory(tenant=other_tenant, name="theirs")
    page = staff.get("/admin/policies/policyenvelope/").content.decode()
    assert "ours" in page and "theirs" not in page


def test_another_tenants_policy_change_page_is_404(staff, other_tenant):
    theirs = PolicyFactory(tenant=other_tenant)
    assert staff.get(f"/admin/policies/policyenvelope/{theirs.pk}/change/").status_code == 404


def test_admin_edit_goes_through_the_service(staff, tenant):
    policy = PolicyFactory(tenant=tenant, name="edit-me", autonomy_tier=2)
    form = {
        "name": "edit-me",
        "description": "",
        "autonomy_tier": "4",
        "allowed_tools": '["*"]',
        "denied_tools": "[]",
        "data_scopes": '["crm:*"]',
        "cost_limit_daily_usd": "",
        "cost_limit_monthly_usd": "",
        "approval_timeout_seconds": "3600",
        "tool_risk_overrides": "{}",
    }
    response = staff.post(f"/admin/policies/policyenvelope/{policy.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    policy.refresh_from_db()
    assert (policy.autonomy_tier, policy.revision) == (4, 2)
    assert change_records(policy, EventType.POLICY_CHANGED)[0].actor == "user:staff-admin"


def test_admin_refuses_a_malformed_glob(staff, tenant):
    policy = PolicyFactory(tenant=tenant, name="strict")
    form = {
        "name": "strict",
        "autonomy_tier": "3",
        "allowed_tools": '["crm.["]',
        "denied_tools": "[]",
        "data_scopes": "[]",
        "approval_timeout_seconds": "3600",
        "tool_risk_overrides": "{}",
    }
    response = staff.post(f"/admin/policies/policyenvelope/{policy.pk}/change/", form)
    assert response.status_code == 200 and "unbalanced" in response.content.decode()
    policy.refresh_from_db()
    assert policy.allowed_tools == ["*"]


def test_deleting_an_attached_policy_in_admin_is_refused(staff, tenant):
    policy = PolicyFactory(tenant=tenant)
    make_instance(tenant, policy=policy)
    staff.post(f"/admin/policies/policyenvelope/{policy.pk}/delete/", {"post": "yes"})
    assert PolicyEnvelope.objects.filter(pk=policy.pk).exists()


def test_decision_and_spend_admin_are_read_only(staff, tenant, instance, evaluate):
    decision_id = evaluate(instance, "crm.lookup", estimated_cost_usd="1").json()["decision_id"]
    assert staff.get("/admin/policies/policydecision/").status_code == 200
    assert staff.get("/admin/policies/policydecision/add/").status_code == 403
    page = staff.get(f"/admin/policies/policydecision/{decision_id}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert staff.get("/admin/policies/instancespend/").status_code == 200


def test_approve_action_calls_the_service(staff, tenant, instance):
    approval = make_approval(instance)
    response = staff.post(
        "/admin/approvals/approvalrequest/", {"action": "approve", "_selected_action": [str(approval.pk)]}
    )
    assert response.status_code == 302
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED and approval.decided_by == "user:staff-admin"
    assert change_records(approval, EventType.APPROVAL_DECIDED)


def test_admin_cannot_decide_its_own_request(staff, tenant, instance):
    approval = make_approval(instance, requester="user:staff-admin")
    staff.post("/admin/approvals/approvalrequest/", {"action": "deny", "_selected_action": [str(approval.pk)]})
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


def test_approval_changelist_shows_overdue_requests_expired_and_the_action_expires_them(
    staff, tenant, other_tenant, instance
):
    overdue = make_approval(instance, expires_at=timezone.now() - timedelta(seconds=1))
    fresh = make_approval(instance, params={"n": 2})
    theirs = make_approval(
        make_instance(other_tenant, policy=PolicyFactory(tenant=other_tenant)),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    response = staff.get("/admin/approvals/approvalrequest/")
    assert response.status_code == 200
    assert "EXPIRED" in response.content.decode()
    overdue.refresh_from_db()
    assert overdue.status == ApprovalStatus.PENDING  # reading writes nothing
    staff.post(
        "/admin/approvals/approvalrequest/",
        {"action": "expire_overdue", "_selected_action": [str(overdue.pk), str(fresh.pk)]},
    )
    overdue.refresh_from_db()
    fresh.refresh_from_db()
    assert (overdue.status, fresh.status) == (ApprovalStatus.EXPIRED, ApprovalStatus.PENDING)
    assert len(change_records(overdue, EventType.APPROVAL_EXPIRED)) == 1
    assert ApprovalRequest.objects.get(pk=theirs.pk).status == ApprovalStatus.PENDING
