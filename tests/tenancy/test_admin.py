"""Django admin: tenant-scoped for tenant admins, versions and change records read-only, transitions
through the services."""

import pytest
from django.test import Client

from audit.choices import EventType
from audit.models import ChangeRecord
from tests.conftest import change_records
from tests.factories import InstanceFactory, MembershipFactory, TemplateFactory, UserFactory, VersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_admin(tenant):
    user = UserFactory(username="acme-staff", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    client = Client()
    client.force_login(user)
    return client


def test_changelists_show_only_the_admins_tenants(staff_admin, tenant, other_tenant):
    mine = TemplateFactory(tenant=tenant, name="mine")
    theirs = TemplateFactory(tenant=other_tenant, name="theirs")
    page = staff_admin.get("/admin/registry/agenttemplate/")
    assert page.status_code == 200
    assert mine.name in page.text
    assert theirs.name not in page.text


@pytest.mark.parametrize("path", ["registry/agenttemplate", "registry/agentversion", "registry/agentinstance"])
def test_another_tenants_object_answers_404(staff_admin, other_tenant, path):
    instance = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=other_tenant)))
    obj_id = {
        "registry/agenttemplate": instance.version.template_id,
        "registry/agentversion": instance.version_id,
        "registry/agentinstance": instance.pk,
    }[path]
    assert staff_admin.get(f"/admin/{path}/{obj_id}/change/").status_code == 404


def test_version_page_is_read_only_and_verifies_integrity(staff_admin, tenant):
    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    page = staff_admin.get(f"/admin/registry/agentversion/{version.pk}/change/")
    assert page.status_code == 200
    assert "Integrity VERIFIED" in page.text
    assert 'name="genome"' not in page.text and 'name="genome_hash"' not in page.text
    assert [r.event_type for r in change_records(version)] == [EventType.VERSION_CREATED, EventType.INTEGRITY_VERIFIED]
    assert staff_admin.get("/admin/registry/agentversion/add/").status_code == 403
    assert staff_admin.get(f"/admin/registry/agentversion/{version.pk}/delete/").status_code == 403


def test_transition_action_goes_through_the_service(staff_admin, tenant):
    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    response = staff_admin.post(
        "/admin/registry/agentversion/",
        {"action": "to_testing", "_selected_action": [str(version.pk)]},
    )
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.lifecycle_state == "TESTING"
    record = change_records(version, EventType.VERSION_TRANSITIONED)[0]
    assert record.transition == ("DRAFT", "TESTING") and record.actor == "user:acme-staff"


def test_refused_transition_action_changes_nothing(staff_admin, tenant):
    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    staff_admin.post(
        "/admin/registry/agentversion/",
        {"action": "to_approved", "_selected_action": [str(version.pk)]},
    )
    version.refresh_from_db()
    assert version.lifecycle_state == "DRAFT"
    assert change_records(version, EventType.VERSION_TRANSITIONED) == []


def test_change_records_cannot_be_added_changed_or_deleted(staff_admin, tenant):
    TemplateFactory(tenant=tenant)
    from audit.services import record_change

    record = record_change(tenant=tenant, event_type=EventType.TEMPLATE_CREATED, target=tenant)
    assert staff_admin.get("/admin/audit/changerecord/add/").status_code == 403
    assert staff_admin.get(f"/admin/audit/changerecord/{record.pk}/delete/").status_code == 403
    page = staff_admin.post(f"/admin/audit/changerecord/{record.pk}/change/", {"actor": "forged"})
    assert page.status_code == 403
    assert ChangeRecord.objects.get(pk=record.pk).actor == record.actor


def test_template_created_in_admin_writes_its_change_record(staff_admin, tenant):
    response = staff_admin.post(
        "/admin/registry/agenttemplate/add/",
        {
            "tenant": str(tenant.pk),
            "name": "from-admin",
            "description": "",
            "owners": '["ops@example.com"]',
            "tags": "[]",
        },
    )
    assert response.status_code == 302, response.content[:500]
    records = ChangeRecord.objects.filter(event_type=EventType.TEMPLATE_CREATED, actor="user:acme-staff")
    assert records.count() == 1


def test_transition_actions_are_offered_only_for_states_something_moves_into(staff_admin):
    from registry.admin import AgentInstanceAdmin, AgentVersionAdmin

    instance_actions = {a.__name__ for a in AgentInstanceAdmin.actions}
    version_actions = {a.__name__ for a in AgentVersionAdmin.actions}
    assert "to_provisioning" not in instance_actions
    assert {"to_active", "to_quarantined", "to_retired"} <= instance_actions
    assert {"to_draft", "to_testing", "to_approved", "to_retired"} <= version_actions
