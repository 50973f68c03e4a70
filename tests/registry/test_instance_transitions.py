"""The instance lifecycle of SPEC §3: every allowed transition with its role, every other pair refused
with 409, the change record, and lifting a quarantine (approver + a verifying integrity check)."""

import itertools

import pytest

from audit.choices import EventType
from registry.choices import InstanceState, IntegrityStatus
from registry.models import AgentInstance, AgentVersion
from tests.factories import InstanceFactory, TemplateFactory, VersionFactory
from tests.helpers import assert_error, changed, records, tamper_genome

pytestmark = pytest.mark.django_db

S = InstanceState
STATES = list(InstanceState.values)

ALLOWED = [
    (S.PROVISIONING, S.ACTIVE, "operator"),
    (S.ACTIVE, S.PAUSED, "operator"),
    (S.PAUSED, S.ACTIVE, "operator"),
    (S.ACTIVE, S.READONLY, "operator"),
    (S.READONLY, S.ACTIVE, "operator"),
    (S.ACTIVE, S.DRAINING, "operator"),
    (S.PAUSED, S.DRAINING, "operator"),
    (S.READONLY, S.DRAINING, "operator"),
    (S.PROVISIONING, S.QUARANTINED, "operator"),
    (S.ACTIVE, S.QUARANTINED, "operator"),
    (S.PAUSED, S.QUARANTINED, "operator"),
    (S.READONLY, S.QUARANTINED, "operator"),
    (S.DRAINING, S.QUARANTINED, "operator"),
    (S.QUARANTINED, S.ACTIVE, "approver"),
    (S.DRAINING, S.RETIRED, "operator"),
    (S.QUARANTINED, S.RETIRED, "operator"),
    (S.PROVISIONING, S.RETIRED, "operator"),
]
ALLOWED_PAIRS = {(a, b) for a, b, _ in ALLOWED}
REJECTED_PAIRS = [(a, b) for a, b in itertools.product(STATES, STATES) if (a, b) not in ALLOWED_PAIRS]


def make_instance(tenant, state=S.PROVISIONING, **kwargs):
    version = kwargs.pop("version", None) or VersionFactory(
        template=TemplateFactory(tenant=tenant), lifecycle_state="APPROVED", eval_status="PASS"
    )
    return InstanceFactory(version=version, state=state, name=kwargs.pop("name", "edge-1"), **kwargs)


def transition(client, instance, to, reason=None):
    payload = {"to": str(to)}
    if reason is not None:
        payload["reason"] = reason
    return client.post(f"/api/v1/instances/{instance.pk}/transition/", payload, format="json")


def state_of(instance) -> str:
    return AgentInstance.objects.get(pk=instance.pk).state


def test_the_table_covers_every_pair_once():
    assert len(ALLOWED_PAIRS) + len(REJECTED_PAIRS) == len(STATES) ** 2


@pytest.mark.parametrize(("source", "target", "role"), ALLOWED, ids=lambda v: str(v))
def test_allowed_transition_moves_the_instance_and_records_it(cast, tenant, source, target, role):
    member = cast[role]
    instance = make_instance(tenant, source)

    response = transition(member.client, instance, target, reason="maintenance window")

    assert response.status_code == 200, response.json()
    assert response.json()["state"] == target
    assert state_of(instance) == target
    (record,) = records(instance, EventType.INSTANCE_TRANSITIONED)
    # a move into ACTIVE re-verified the version: the hash it computed is on the move's record
    verified = {"verified_genome_hash": instance.version.genome_hash} if target == S.ACTIVE else {}
    assert record.payload == changed(
        "registry.AgentInstance",
        {"state": (source, target)},
        event="INSTANCE_TRANSITIONED",
        reason="maintenance window",
        **verified,
    )
    assert record.actor == member.actor.ref
    assert record.target_type == "AgentInstance"


@pytest.mark.parametrize(("source", "target"), REJECTED_PAIRS, ids=lambda v: str(v))
def test_every_other_pair_is_refused_with_409_naming_both_states(admin_member, tenant, source, target):
    instance = make_instance(tenant, source)

    response = transition(admin_member.client, instance, target)

    data = assert_error(response, 409, "invalid_transition")
    assert data["message"].startswith(f"Cannot move instance edge-1 from {source} to {target}: "), data
    assert state_of(instance) == source
    assert records(instance, EventType.INSTANCE_TRANSITIONED) == []


def test_refusal_lists_the_states_reachable_from_here(admin_member, tenant):
    instance = make_instance(tenant, S.PAUSED)
    assert_error(
        transition(admin_member.client, instance, S.READONLY),
        409,
        "invalid_transition",
        message="Cannot move instance edge-1 from PAUSED to READONLY: no such transition "
        "(from PAUSED it can go to ACTIVE, DRAINING, QUARANTINED).",
    )


def test_retired_instance_is_final(admin_member, tenant):
    instance = make_instance(tenant, S.RETIRED)
    assert_error(
        transition(admin_member.client, instance, S.QUARANTINED),
        409,
        "invalid_transition",
        message="Cannot move instance edge-1 from RETIRED to QUARANTINED: no such transition (RETIRED is final).",
    )


# ---------------------------------------------------------------- roles


@pytest.mark.parametrize("role", ["viewer", "compliance"])
@pytest.mark.parametrize(("source", "target"), sorted(ALLOWED_PAIRS), ids=lambda v: str(v))
def test_read_only_roles_cannot_transition(cast, tenant, role, source, target):
    instance = make_instance(tenant, source)

    assert_error(transition(cast[role].client, instance, target), 403, "role_required")
    assert state_of(instance) == source


def test_runtime_key_cannot_transition(runtime_key, tenant):
    instance = make_instance(tenant, S.PROVISIONING)
    assert_error(transition(runtime_key[1], instance, S.ACTIVE), 403, "role_required")


@pytest.mark.parametrize(
    ("source", "target"), [(a, b) for a, b, role in ALLOWED if role == "operator"], ids=lambda v: str(v)
)
def test_approver_cannot_take_operator_transitions(approver, tenant, source, target):
    instance = make_instance(tenant, source)
    assert_error(transition(approver.client, instance, target), 403, "role_required", contains=["operator"])
    assert state_of(instance) == source


# ---------------------------------------------------------------- lifting a quarantine


def test_operator_cannot_lift_a_quarantine(operator, tenant):
    instance = make_instance(tenant, S.QUARANTINED)

    assert_error(transition(operator.client, instance, S.ACTIVE), 403, "role_required", contains=["approver"])
    assert state_of(instance) == S.QUARANTINED
    # the role check comes first: no integrity check is run (or recorded) for someone who may not lift
    assert records(instance.version, EventType.INTEGRITY_VERIFIED) == []


def test_lifting_a_quarantine_verifies_the_version_first(approver, tenant):
    instance = make_instance(tenant, S.QUARANTINED)

    response = transition(approver.client, instance, S.ACTIVE, reason="false alarm")

    assert response.status_code == 200, response.json()
    assert state_of(instance) == S.ACTIVE
    (check,) = records(instance.version, EventType.INTEGRITY_VERIFIED)
    assert check.payload["status"] == "VERIFIED"
    assert check.actor == approver.actor.ref
    (record,) = records(instance, EventType.INSTANCE_TRANSITIONED)
    assert record.payload == changed(
        "registry.AgentInstance",
        {"state": ("QUARANTINED", "ACTIVE")},
        event="INSTANCE_TRANSITIONED",
        reason="false alarm",
        verified_genome_hash=instance.version.genome_hash,
    )
    assert check.seq < record.seq


def test_a_quarantine_cannot_be_lifted_while_the_version_is_tampered(approver, tenant):
    instance = make_instance(tenant, S.QUARANTINED)
    tamper_genome(instance.version)

    response = transition(approver.client, instance, S.ACTIVE)

    (failed_check,) = records(instance.version, EventType.INTEGRITY_FAILED)
    stored, computed = failed_check.payload["stored_hash"], failed_check.payload["computed_hash"]
    assert_error(
        response,
        409,
        "version_tampered",
        message=f"Cannot move instance edge-1 from QUARANTINED to ACTIVE: version {instance.version.version_label} "
        f"is TAMPERED (its genome no longer matches its hash: stored {stored[:12]}…, computed {computed[:12]}…); "
        "no instance of it may be deployed or go live.",
    )
    assert state_of(instance) == S.QUARANTINED
    assert records(instance, EventType.INSTANCE_TRANSITIONED) == []
    (failed,) = records(instance.version, EventType.INTEGRITY_FAILED)  # the failed check itself is on record
    assert failed.payload["status"] == "TAMPERED"
    assert AgentVersion.objects.get(pk=instance.version.pk).integrity_status == IntegrityStatus.TAMPERED
