"""Django admin never reports success for a change a service refused: the error shows alone, the form
stays filled, nothing is written; and after an add, the admin links to the row the service created."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from audit.choices import EventType
from audit.models import ChangeRecord
from policies.models import PolicyEnvelope
from registry.models import AgentTemplate, Environment
from tenancy.models import Tenant
from tests.conftest import change_records
from tests.factories import (
    EnvironmentFactory,
    InstanceFactory,
    MembershipFactory,
    TemplateFactory,
    UserFactory,
    VersionFactory,
)
from tests.policies.factories import PolicyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_admin(tenant):
    user = UserFactory(username="acme-staff", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    client = Client()
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_a_tier_change_refused_by_the_deployment_gate_shows_only_the_error(staff_admin, tenant):
    env = EnvironmentFactory(tenant=tenant, name="edge", tier="dev", description="before")
    InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant)), environment=env)
    records_before = ChangeRecord.objects.count()

    response = staff_admin.post(
        reverse("admin:registry_environment_change", args=[env.pk]),
        {"tenant": str(tenant.pk), "name": "edge", "tier": "prod", "description": "typed", "config": "{}"},
    )

    assert response.status_code == 200  # the form again, not a redirect to "changed successfully"
    assert "prod does not accept" in response.text
    assert "was changed successfully" not in response.text
    assert "typed</textarea>" in response.text  # what was typed is kept
    env.refresh_from_db()
    assert env.tier == "dev" and env.description == "before"
    assert ChangeRecord.objects.count() == records_before


def test_a_taken_name_is_an_error_on_the_field_and_nothing_is_added(staff_admin, tenant):
    EnvironmentFactory(tenant=tenant, name="prod-eu")
    response = staff_admin.post(
        reverse("admin:registry_environment_add"),
        {"tenant": str(tenant.pk), "name": "prod-eu", "tier": "prod", "description": "", "config": "{}"},
    )
    assert response.status_code == 200
    assert "already" in response.text
    assert "was added successfully" not in response.text
    assert Environment.objects.filter(tenant=tenant, name="prod-eu").count() == 1


def test_after_an_add_the_admin_links_to_the_row_the_service_created(staff_admin, tenant):
    response = staff_admin.post(
        reverse("admin:registry_agenttemplate_add"),
        {"tenant": str(tenant.pk), "name": "fresh", "description": "", "owners": '["ops@example.com"]', "tags": "[]"},
        follow=True,
    )
    created = AgentTemplate.objects.get(tenant=tenant, name="fresh")
    (message,) = _messages(response)
    assert "was added successfully" in message
    linked = re.findall(r"/admin/registry/agenttemplate/([0-9a-f-]{36})/change/", message)
    assert linked == [str(created.pk)]
    assert len(change_records(created, EventType.TEMPLATE_CREATED)) == 1


def test_deleting_a_template_with_versions_shows_only_the_refusal(staff_admin, tenant):
    template = TemplateFactory(tenant=tenant, name="has-versions")
    VersionFactory(template=template)
    response = staff_admin.post(
        reverse("admin:registry_agenttemplate_delete", args=[template.pk]), {"post": "yes"}, follow=True
    )
    messages = _messages(response)
    assert any("cannot be deleted" in m for m in messages), messages
    assert not any("deleted" in m.lower() and "cannot" not in m for m in messages), messages
    assert AgentTemplate.objects.filter(pk=template.pk).exists()


def test_bulk_delete_reports_what_really_happened(staff_admin, tenant):
    kept = TemplateFactory(tenant=tenant, name="kept")
    VersionFactory(template=kept)
    gone = TemplateFactory(tenant=tenant, name="gone")
    response = staff_admin.post(
        reverse("admin:registry_agenttemplate_changelist"),
        {"action": "delete_through_service_action", "_selected_action": [str(kept.pk), str(gone.pk)]},
        follow=True,
    )
    messages = _messages(response)
    assert "Deleted 1 agent templates." in messages
    assert any("cannot be deleted" in m for m in messages)
    assert AgentTemplate.objects.filter(pk=kept.pk).exists() and not AgentTemplate.objects.filter(pk=gone.pk).exists()


def test_deleting_an_attached_policy_is_refused_without_a_success_message(staff_admin, tenant):
    policy = PolicyFactory(tenant=tenant)
    InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant)), policy=policy)
    response = staff_admin.post(
        reverse("admin:policies_policyenvelope_delete", args=[policy.pk]), {"post": "yes"}, follow=True
    )
    assert not any("Deleted" in m for m in _messages(response))
    assert PolicyEnvelope.objects.filter(pk=policy.pk).exists()


def test_renaming_a_tenant_in_admin_is_recorded(tenant):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    response = client.post(
        reverse("admin:arm_tenant_change", args=[tenant.pk]), {"name": "Acme Renamed", "heartbeat_window_seconds": 300}
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.name == "Acme Renamed" and tenant.heartbeat_window_seconds == 300
    (record,) = change_records(tenant, EventType.TENANT_CHANGED)
    assert record.actor == "user:root"
    assert record.payload["changes"]["name"] == {"before": "Acme", "after": "Acme Renamed"}
    assert Tenant.objects.count() >= 1
