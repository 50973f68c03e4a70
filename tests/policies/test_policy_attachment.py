"""The policy an instance runs under is ``policies.PolicyAttachment`` (a key down the layers): the instance
API still reads and writes it as ``policy``, deployers may choose it, attaching stays compliance's, the
records keep their names and name the instance, and lists read it in the same query."""

import pytest
from django.db import IntegrityError, transaction

from audit.choices import EventType
from audit.selectors import object_history
from policies.models import PolicyAttachment
from registry.models import AgentInstance
from tests.conftest import assert_constant_queries, change_records
from tests.factories import EnvironmentFactory, InstanceFactory, ProviderFactory, TemplateFactory, VersionFactory
from tests.helpers import policy_id_of
from tests.policies.factories import PolicyFactory, make_instance

URL = "/api/v1/instances/"


@pytest.fixture
def deployable(tenant):
    version = VersionFactory(template=TemplateFactory(tenant=tenant), lifecycle_state="APPROVED")
    env = EnvironmentFactory(tenant=tenant, tier="dev")
    return {"version": str(version.pk), "environment": str(env.pk), "provider": str(ProviderFactory(tenant=tenant).pk)}


def test_a_deployment_may_name_its_policy_and_the_api_shows_it(operator, deployable, policy):
    response = operator.client.post(URL, {**deployable, "policy": str(policy.pk)}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["policy"] == str(policy.pk)
    instance = AgentInstance.objects.get(pk=body["id"])
    assert policy_id_of(instance) == policy.pk
    [record] = change_records(instance, EventType.POLICY_ATTACHED)
    assert record.actor == operator.actor.ref
    assert operator.client.get(f"{URL}{instance.pk}/").json()["policy"] == str(policy.pk)


def test_a_deployment_without_a_policy_shows_none(operator, deployable):
    body = operator.client.post(URL, deployable, format="json").json()
    assert body["policy"] is None
    assert not PolicyAttachment.objects.filter(pk=body["id"]).exists()


def test_another_tenants_policy_refuses_the_deployment_and_writes_nothing(operator, deployable, other_tenant):
    theirs = PolicyFactory(tenant=other_tenant)
    response = operator.client.post(URL, {**deployable, "policy": str(theirs.pk)}, format="json")
    assert response.status_code == 400 and "policy" in response.json()["errors"]
    assert not AgentInstance.objects.filter(version_id=deployable["version"]).exists()


def test_patch_attaches_and_detaches_for_compliance_only(tenant, compliance, operator, policy):
    bare = make_instance(tenant)
    assert operator.client.patch(f"{URL}{bare.pk}/", {"policy": str(policy.pk)}, format="json").status_code == 403
    assert policy_id_of(bare) is None
    response = compliance.client.patch(f"{URL}{bare.pk}/", {"policy": str(policy.pk)}, format="json")
    assert response.status_code == 200 and response.json()["policy"] == str(policy.pk)
    response = compliance.client.patch(f"{URL}{bare.pk}/", {"policy": None}, format="json")
    assert response.status_code == 200 and response.json()["policy"] is None
    assert policy_id_of(bare) is None
    assert [r.event_type for r in change_records(bare) if r.event_type.startswith("POLICY_")] == [
        EventType.POLICY_ATTACHED,
        EventType.POLICY_DETACHED,
    ]


def test_the_instance_list_filters_by_policy_and_reads_it_in_constant_queries(tenant, admin_member):
    policies = [PolicyFactory(tenant=tenant) for _ in range(3)]
    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    env, provider = EnvironmentFactory(tenant=tenant), ProviderFactory(tenant=tenant)
    made = []

    def make(n):
        for _ in range(n):
            policy = policies[len(made) % 3]
            made.append(InstanceFactory(version=version, environment=env, provider=provider, policy=policy))

    def request():
        response = admin_member.client.get(f"{URL}?page_size=1000")
        assert response.status_code == 200
        return response

    assert_constant_queries(make, request)
    rows = request().json()["results"]
    assert {r["id"]: r["policy"] for r in rows} == {str(i.pk): str(policy_id_of(i)) for i in made}
    only = admin_member.client.get(f"{URL}?policy={policies[0].pk}&page_size=1000").json()["results"]
    assert {r["id"] for r in only} == {str(i.pk) for i in made if policy_id_of(i) == policies[0].pk}


def test_the_instances_history_includes_its_attachments_records(tenant, compliance, policy):
    from policies.services import policy_attach

    bare = make_instance(tenant)
    policy_attach(instance=bare, policy=policy, actor=compliance.actor)
    events = [r.event_type for r in object_history(bare)]
    assert events[0] == EventType.POLICY_ATTACHED and "INSTANCE_CREATED" in events


def test_an_instance_has_one_attachment_at_most_held_by_the_database(tenant, policy):
    instance = make_instance(tenant, policy=policy)
    second = PolicyAttachment(instance_id=instance.pk, tenant_id=tenant.pk, policy=PolicyFactory(tenant=tenant))
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save(force_insert=True)
    assert policy_id_of(instance) == policy.pk
