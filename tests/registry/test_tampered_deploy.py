"""A TAMPERED version never ships: no instance of it is created, and none goes (back) to ACTIVE, in any
environment, through the API, the UI or the admin. Deploying verifies integrity; it is not left to reads."""

import pytest
from django.core.management import call_command
from django.test import Client

from audit.choices import EventType
from audit.recording import recorded_update
from registry.choices import EnvironmentTier, InstanceState, IntegrityStatus
from registry.models import AgentInstance, AgentVersion
from tests.factories import (
    EnvironmentFactory,
    InstanceFactory,
    MembershipFactory,
    ProviderFactory,
    TemplateFactory,
    UserFactory,
    VersionFactory,
)
from tests.helpers import assert_error, records, tamper_genome

pytestmark = pytest.mark.django_db
S = InstanceState


@pytest.fixture
def approved(tenant):
    return VersionFactory(template=TemplateFactory(tenant=tenant), lifecycle_state="APPROVED", eval_status="PASS")


def _create_body(version, tier):
    tenant = version.tenant
    return {
        "version": str(version.pk),
        "environment": str(EnvironmentFactory(tenant=tenant, tier=tier).pk),
        "provider": str(ProviderFactory(tenant=tenant).pk),
        "name": "ship-it",
    }


@pytest.mark.parametrize("tier", [EnvironmentTier.PROD, EnvironmentTier.STAGING, EnvironmentTier.DEV])
def test_an_undetected_tamper_is_caught_when_deploying(operator, approved, tier):
    tamper_genome(approved)  # nobody has read the version since

    response = operator.client.post("/api/v1/instances/", _create_body(approved, tier), format="json")

    body = assert_error(response, 409, "version_tampered")
    assert f"version {approved.version_label} is TAMPERED" in body["message"]
    assert not AgentInstance.objects.filter(version=approved).exists()
    (failed,) = records(approved, EventType.INTEGRITY_FAILED)  # the deploy-time check is on record
    assert failed.actor == operator.actor.ref
    assert AgentVersion.objects.get(pk=approved.pk).integrity_status == IntegrityStatus.TAMPERED


def test_after_the_sweep_reported_tampered_no_deploy_and_no_activation(operator, approver, approved, tenant):
    live = InstanceFactory(version=approved, state=S.ACTIVE, name="live")
    tamper_genome(approved)
    with pytest.raises(SystemExit):
        call_command("verify_integrity", "--tenant", tenant.slug)
    assert AgentInstance.objects.get(pk=live.pk).state == S.QUARANTINED

    created = operator.client.post("/api/v1/instances/", _create_body(approved, "prod"), format="json")
    assert_error(created, 409, "version_tampered")

    lifted = approver.client.post(f"/api/v1/instances/{live.pk}/transition/", {"to": "ACTIVE"}, format="json")
    assert_error(lifted, 409, "version_tampered")
    assert AgentInstance.objects.get(pk=live.pk).state == S.QUARANTINED
    assert records(live, EventType.INSTANCE_TRANSITIONED)[-1].transition[1] == S.QUARANTINED


def test_activating_a_provisioned_instance_verifies_the_version(operator, approved):
    instance = InstanceFactory(version=approved, state=S.PROVISIONING, name="fresh")
    tamper_genome(approved)

    response = operator.client.post(f"/api/v1/instances/{instance.pk}/transition/", {"to": "ACTIVE"}, format="json")

    assert_error(response, 409, "version_tampered")
    # the failed check quarantined it, as every integrity failure does
    assert AgentInstance.objects.get(pk=instance.pk).state == S.QUARANTINED
    assert len(records(approved, EventType.INTEGRITY_FAILED)) == 1


def test_activating_a_sound_version_records_its_verification(operator, approved):
    instance = InstanceFactory(version=approved, state=S.PROVISIONING)

    response = operator.client.post(f"/api/v1/instances/{instance.pk}/transition/", {"to": "ACTIVE"}, format="json")

    assert response.status_code == 200, response.json()
    assert len(records(approved, EventType.INTEGRITY_VERIFIED)) == 1


@pytest.mark.parametrize(("state", "to"), [(S.PAUSED, S.ACTIVE), (S.READONLY, S.ACTIVE)])
def test_no_way_back_to_active_once_the_last_check_was_tampered(operator, approved, state, to, monkeypatch):
    # A check that failed elsewhere between this move's own verification and its lock (a race this
    # instance escaped quarantine in): the guard reads the version's last result under the lock.
    from registry import services

    instance = InstanceFactory(version=approved, state=state)
    verify = services.version_verify_integrity

    def verified_then_failed_elsewhere(**kwargs):
        result = verify(**kwargs)
        recorded_update(AgentVersion.objects.filter(pk=approved.pk), integrity_status=IntegrityStatus.TAMPERED)
        return result

    monkeypatch.setattr(services, "version_verify_integrity", verified_then_failed_elsewhere)

    response = operator.client.post(f"/api/v1/instances/{instance.pk}/transition/", {"to": to}, format="json")

    body = assert_error(response, 409, "version_tampered")
    assert "failed its integrity check (TAMPERED)" in body["message"]
    assert AgentInstance.objects.get(pk=instance.pk).state == state


def test_retiring_a_quarantined_instance_of_a_tampered_version_is_allowed(operator, approved):
    instance = InstanceFactory(version=approved, state=S.QUARANTINED)
    recorded_update(AgentVersion.objects.filter(pk=approved.pk), integrity_status=IntegrityStatus.TAMPERED)
    response = operator.client.post(f"/api/v1/instances/{instance.pk}/transition/", {"to": "RETIRED"}, format="json")
    assert response.status_code == 200, response.json()


def test_the_ui_refuses_to_deploy_a_tampered_version(tenant, approved):
    user = UserFactory(username="ui-operator")
    MembershipFactory(tenant=tenant, user=user, roles=["operator"])
    client = Client()
    client.force_login(user)
    tamper_genome(approved)

    response = client.post("/instances/new/", _create_body(approved, "prod"))

    assert response.status_code == 200  # the modal again, with the reason
    assert "is TAMPERED" in response.text
    assert not AgentInstance.objects.filter(version=approved).exists()


def test_the_admin_action_cannot_lift_a_tampered_quarantine(tenant, approved):
    user = UserFactory(username="acme-staff", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    client = Client()
    client.force_login(user)
    instance = InstanceFactory(version=approved, state=S.QUARANTINED)
    tamper_genome(approved)

    response = client.post(
        "/admin/registry/agentinstance/",
        {"action": "to_active", "_selected_action": [str(instance.pk)]},
        follow=True,
    )

    assert "is TAMPERED" in response.text
    assert AgentInstance.objects.get(pk=instance.pk).state == S.QUARANTINED
