"""policy_attach(instance=, policy=, actor=): attach, replace, detach; roles; another tenant's policy
is a validation error (400)."""

import pytest
from django.core.exceptions import ValidationError

from arm.errors import RoleRequired
from audit.choices import EventType
from policies.services import policy_attach
from tests.conftest import change_records
from tests.helpers import policy_id_of
from tests.policies.factories import PolicyFactory, make_instance


@pytest.fixture
def bare(tenant):
    return make_instance(tenant, policy=None)


def test_attach_sets_the_policy_and_records_it(bare, policy, compliance):
    instance = policy_attach(instance=bare, policy=policy, actor=compliance.actor)
    bare.refresh_from_db()
    assert policy_id_of(bare) == policy.pk == policy_id_of(instance)
    [record] = change_records(bare, EventType.POLICY_ATTACHED)
    # The instance's attachment is created: its record names the instance's id (the attachment's key).
    assert (record.target_type, record.target_id) == ("PolicyAttachment", str(bare.pk))
    assert record.payload["action"] == "created"
    assert record.payload["after"] == {"tenant": str(bare.tenant_id), "policy": str(policy.pk)}
    assert (record.payload["policy_name"], record.payload["revision"]) == (policy.name, policy.revision)
    assert record.actor == compliance.actor.ref


def test_attaching_another_policy_replaces_it(tenant, bare, policy, compliance):
    policy_attach(instance=bare, policy=policy, actor=compliance.actor)
    second = PolicyFactory(tenant=tenant)
    policy_attach(instance=bare, policy=second, actor=compliance.actor)
    bare.refresh_from_db()
    assert policy_id_of(bare) == second.pk
    last = change_records(bare, EventType.POLICY_ATTACHED)[-1]
    assert last.payload["changes"]["policy"] == {"before": str(policy.pk), "after": str(second.pk)}


def test_detach_with_none_records_policy_detached(bare, policy, compliance):
    policy_attach(instance=bare, policy=policy, actor=compliance.actor)
    policy_attach(instance=bare, policy=None, actor=compliance.actor)
    bare.refresh_from_db()
    assert policy_id_of(bare) is None
    [record] = change_records(bare, EventType.POLICY_DETACHED)
    assert (record.target_type, record.target_id) == ("PolicyAttachment", str(bare.pk))
    assert record.payload["action"] == "deleted"
    assert record.payload["before"] == {"tenant": str(bare.tenant_id), "policy": str(policy.pk)}


def test_attaching_the_same_policy_again_writes_nothing(bare, policy, compliance):
    policy_attach(instance=bare, policy=policy, actor=compliance.actor)
    policy_attach(instance=bare, policy=policy, actor=compliance.actor)
    assert len(change_records(bare, EventType.POLICY_ATTACHED)) == 1


def test_another_tenants_policy_is_a_validation_error(other_tenant, bare, compliance):
    theirs = PolicyFactory(tenant=other_tenant)
    with pytest.raises(ValidationError) as exc:
        policy_attach(instance=bare, policy=theirs, actor=compliance.actor)
    assert exc.value.message_dict == {"policy": ["Policy not found in this tenant."]}
    bare.refresh_from_db()
    assert policy_id_of(bare) is None


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_only_compliance_or_admin_attach(cast, bare, policy, role):
    with pytest.raises(RoleRequired):
        policy_attach(instance=bare, policy=policy, actor=cast[role].actor)


def test_admin_may_attach(admin_member, bare, policy):
    assert policy_id_of(policy_attach(instance=bare, policy=policy, actor=admin_member.actor)) == policy.pk


def test_attached_policy_governs_evaluation(bare, policy, compliance, evaluate):
    assert evaluate(bare, "crm.lookup").json()["reasons"][0]["code"] == "no_policy"
    policy_attach(instance=bare, policy=policy, actor=compliance.actor)
    assert evaluate(bare, "crm.lookup").json()["decision"] == "ALLOW"
