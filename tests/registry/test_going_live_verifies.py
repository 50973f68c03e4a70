"""Every transition INTO ACTIVE re-verifies the version's genome (SPEC §3): activation, resuming a PAUSED
instance, making a READONLY one writable, lifting a quarantine. A genome tampered since the last check
is caught there, whatever the version's last recorded result, through the API, the UI and the admin
alike: 409 ``version_tampered``, the INTEGRITY_FAILED record, and every live instance quarantined."""

from datetime import timedelta

import pytest
from django.test import Client

from audit.choices import EventType
from registry.choices import InstanceState, IntegrityStatus
from registry.models import AgentInstance, AgentVersion
from registry.services import version_verify_integrity
from tests.factories import InstanceFactory, MembershipFactory, TemplateFactory, UserFactory, VersionFactory
from tests.helpers import assert_error, records, tamper_genome

pytestmark = pytest.mark.django_db
S = InstanceState

INTO_ACTIVE = [
    (S.PROVISIONING, "operator"),
    (S.PAUSED, "operator"),
    (S.READONLY, "operator"),
    (S.QUARANTINED, "approver"),
]


@pytest.fixture
def verified(tenant):
    """An approved version whose last check VERIFIED it: the stale result a tamper hides behind."""
    version = VersionFactory(template=TemplateFactory(tenant=tenant), lifecycle_state="APPROVED", eval_status="PASS")
    assert version_verify_integrity(version=version).status == IntegrityStatus.VERIFIED
    return version


def state_of(instance) -> str:
    return AgentInstance.objects.get(pk=instance.pk).state


def test_every_transition_into_active_is_covered():
    sources = {t.source for t in AgentInstance().get_all_state_transitions() if t.target == S.ACTIVE}
    assert sources == {source for source, _ in INTO_ACTIVE}


@pytest.mark.parametrize(("source", "role"), INTO_ACTIVE, ids=lambda v: str(v))
def test_going_live_catches_a_tamper_since_the_last_check(cast, verified, source, role):
    instance = InstanceFactory(version=verified, state=source, name="edge-1")
    bystander = InstanceFactory(version=verified, state=S.ACTIVE, name="edge-2")
    tamper_genome(verified)  # after the last check: its recorded result still says VERIFIED

    response = cast[role].client.post(f"/api/v1/instances/{instance.pk}/transition/", {"to": "ACTIVE"}, format="json")

    (failed,) = records(verified, EventType.INTEGRITY_FAILED)
    assert failed.actor == cast[role].actor.ref
    stored, computed = failed.payload["stored_hash"], failed.payload["computed_hash"]
    assert_error(
        response,
        409,
        "version_tampered",
        message=f"Cannot move instance edge-1 from {source} to ACTIVE: version {verified.version_label} is TAMPERED "
        f"(its genome no longer matches its hash: stored {stored[:12]}…, computed {computed[:12]}…); "
        "no instance of it may be deployed or go live.",
    )
    assert AgentVersion.objects.get(pk=verified.pk).integrity_status == IntegrityStatus.TAMPERED
    # as on every integrity failure: each live instance quarantined, with its own record
    assert state_of(instance) == S.QUARANTINED
    assert state_of(bystander) == S.QUARANTINED
    assert records(bystander, EventType.INSTANCE_TRANSITIONED)[-1].payload == {
        "action": "changed",
        "model": "registry.AgentInstance",
        "changes": {"state": {"before": S.ACTIVE, "after": S.QUARANTINED}},
        "event": "INSTANCE_TRANSITIONED",
        "reason": "integrity check failed",
    }


@pytest.mark.parametrize(("source", "role"), INTO_ACTIVE, ids=lambda v: str(v))
def test_going_live_records_the_verification_of_a_sound_version(cast, verified, source, role):
    instance = InstanceFactory(version=verified, state=source, name="edge-1")

    response = cast[role].client.post(f"/api/v1/instances/{instance.pk}/transition/", {"to": "ACTIVE"}, format="json")

    assert response.status_code == 200, response.json()
    assert state_of(instance) == S.ACTIVE
    # the fixture's verification is the only INTEGRITY_VERIFIED (a repeated VERIFIED records no read); the
    # check this move ran is on the move's record, with the hash it computed, and stamped on the row
    assert len(records(verified, EventType.INTEGRITY_VERIFIED)) == 1
    move = records(instance, EventType.INSTANCE_TRANSITIONED)[-1]
    assert move.actor == cast[role].actor.ref
    assert move.payload["verified_genome_hash"] == verified.genome_hash
    assert AgentVersion.objects.get(pk=verified.pk).integrity_checked_at > move.created_at - timedelta(seconds=5)


@pytest.mark.parametrize("source", [S.PAUSED, S.READONLY])
def test_the_ui_button_verifies_too(tenant, verified, source):
    user = UserFactory(username="ui-operator")
    MembershipFactory(tenant=tenant, user=user, roles=["operator"])
    client = Client()
    client.force_login(user)
    instance = InstanceFactory(version=verified, state=source, name="edge-1")
    tamper_genome(verified)

    response = client.post(f"/instances/{instance.pk}/transition/", {"to": "ACTIVE"}, follow=True)

    assert response.status_code == 200
    assert "is TAMPERED" in response.text
    assert state_of(instance) == S.QUARANTINED
    assert len(records(verified, EventType.INTEGRITY_FAILED)) == 1


@pytest.mark.parametrize("source", [S.PAUSED, S.READONLY])
def test_the_admin_action_verifies_too(tenant, verified, source):
    user = UserFactory(username="acme-staff", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    client = Client()
    client.force_login(user)
    instance = InstanceFactory(version=verified, state=source)
    tamper_genome(verified)

    response = client.post(
        "/admin/registry/agentinstance/",
        {"action": "to_active", "_selected_action": [str(instance.pk)]},
        follow=True,
    )

    assert "is TAMPERED" in response.text
    assert state_of(instance) == S.QUARANTINED
    assert len(records(verified, EventType.INTEGRITY_FAILED)) == 1
