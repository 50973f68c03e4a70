"""Deployment gates (SPEC §3): prod needs APPROVED, staging CANDIDATE or APPROVED, dev anything but
DEPRECATED or RETIRED; everything an instance references must be the caller's tenant."""

import itertools

import pytest
from django.core.exceptions import ValidationError

from audit.choices import EventType
from audit.recording import recorded_update
from policies.models import PolicyEnvelope
from registry import services
from registry.choices import VersionState
from registry.models import AgentInstance
from tenancy.context import actor_context
from tests.factories import EnvironmentFactory, ProviderFactory, TemplateFactory, VersionFactory
from tests.helpers import assert_error, record_count, records

pytestmark = pytest.mark.django_db

S = VersionState
DEPLOYABLE = {
    "prod": {S.APPROVED},
    "staging": {S.CANDIDATE, S.APPROVED},
    "dev": {S.DRAFT, S.TESTING, S.CANDIDATE, S.APPROVED},
}
NEEDS = {
    "prod": "APPROVED",
    "staging": "APPROVED or CANDIDATE",
    "dev": "any state but DEPRECATED or RETIRED",
}
CASES = list(itertools.product(DEPLOYABLE, VersionState.values))


def deploy(member, version, environment, provider, **extra):
    payload = {
        "version": str(version.pk),
        "environment": str(environment.pk),
        "provider": str(provider.pk),
        "name": "edge-1",
        **extra,
    }
    return member.client.post("/api/v1/instances/", payload, format="json")


@pytest.fixture
def provider(tenant):
    return ProviderFactory(tenant=tenant)


def version_in(tenant, state):
    return VersionFactory(
        template=TemplateFactory(tenant=tenant), version_label="1.4.0", lifecycle_state=state, eval_status="PASS"
    )


@pytest.mark.parametrize(("tier", "state"), [c for c in CASES if c[1] in DEPLOYABLE[c[0]]], ids=str)
def test_deployable_state_creates_a_provisioning_instance(operator, tenant, provider, tier, state):
    env = EnvironmentFactory(tenant=tenant, tier=tier, name=f"{tier}-eu")
    version = version_in(tenant, state)

    response = deploy(operator, version, env, provider)

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["state"] == "PROVISIONING"
    assert data["version"] == str(version.pk)
    assert data["environment"] == str(env.pk)
    instance = AgentInstance.objects.get(pk=data["id"])
    assert instance.tenant_id == tenant.pk
    (record,) = records(instance, EventType.INSTANCE_CREATED)
    assert record.actor == operator.actor.ref
    assert record.payload["after"]["version"] == str(version.pk)


@pytest.mark.parametrize(("tier", "state"), [c for c in CASES if c[1] not in DEPLOYABLE[c[0]]], ids=str)
def test_gate_refuses_with_a_message_naming_state_and_need(operator, tenant, provider, tier, state):
    env = EnvironmentFactory(tenant=tenant, tier=tier, name=f"{tier}-eu")
    version = version_in(tenant, state)
    before = record_count()

    response = deploy(operator, version, env, provider)

    data = assert_error(response, 400, "validation_error")
    assert data["errors"]["version"] == [
        f"Version 1.4.0 is {state}; the {tier} environment {tier}-eu needs {NEEDS[tier]}."
    ], data
    assert not AgentInstance.objects.exists()
    assert record_count() == before


def test_prod_instance_needs_approved_version(operator, tenant, provider):
    env = EnvironmentFactory(tenant=tenant, tier="prod", name="prod-eu")
    assert deploy(operator, version_in(tenant, S.CANDIDATE), env, provider).status_code == 400
    assert deploy(operator, version_in(tenant, S.APPROVED), env, provider).status_code == 201


def test_gate_is_the_service_rule_not_only_the_api(tenant, operator, provider):
    env = EnvironmentFactory(tenant=tenant, tier="prod")
    version = version_in(tenant, S.TESTING)
    with actor_context(operator.actor, tenant), pytest.raises(ValidationError) as exc:
        services.instance_create(tenant=tenant, version=version, environment=env, provider=provider)
    assert "needs APPROVED" in str(exc.value.message_dict["version"])


# ---------------------------------------------------------------- cross-tenant references


@pytest.mark.parametrize(
    ("field", "label"),
    [("version", "Agent version"), ("environment", "Environment"), ("provider", "Provider")],
)
def test_reference_to_another_tenant_is_400_not_found_in_this_tenant(
    operator, tenant, other_tenant, provider, field, label
):
    env = EnvironmentFactory(tenant=tenant, tier="dev")
    version = version_in(tenant, S.DRAFT)
    foreign = {
        "version": version_in(other_tenant, S.DRAFT),
        "environment": EnvironmentFactory(tenant=other_tenant, tier="dev"),
        "provider": ProviderFactory(tenant=other_tenant),
    }[field]
    before = record_count()

    refs = {"version": version, "environment": env, "provider": provider, field: foreign}
    response = deploy(operator, refs["version"], refs["environment"], refs["provider"])

    data = assert_error(response, 400, "validation_error")
    assert data["errors"][field] == [f"{label} not found in this tenant."], data
    assert not AgentInstance.objects.exists()
    assert record_count() == before


def test_policy_of_another_tenant_is_400(operator, tenant, other_tenant, provider):
    env = EnvironmentFactory(tenant=tenant, tier="dev")
    policy = PolicyEnvelope.objects.create(tenant=other_tenant, name="theirs")

    response = deploy(operator, version_in(tenant, S.DRAFT), env, provider, policy=str(policy.pk))

    data = assert_error(response, 400, "validation_error", contains=["not found in this tenant"])
    assert "policy" in data["errors"], data
    assert not AgentInstance.objects.exists()


@pytest.mark.parametrize("field", ["version", "environment", "provider"])
def test_service_refuses_cross_tenant_objects(tenant, other_tenant, operator, field):
    objs = {
        "version": version_in(tenant, S.DRAFT),
        "environment": EnvironmentFactory(tenant=tenant, tier="dev"),
        "provider": ProviderFactory(tenant=tenant),
    }
    objs[field] = {
        "version": version_in(other_tenant, S.DRAFT),
        "environment": EnvironmentFactory(tenant=other_tenant, tier="dev"),
        "provider": ProviderFactory(tenant=other_tenant),
    }[field]

    with actor_context(operator.actor, tenant), pytest.raises(ValidationError) as exc:
        services.instance_create(tenant=tenant, **objs)

    assert exc.value.message_dict[field] == [f"{field.capitalize()} not found in this tenant."]
    assert not AgentInstance.objects.exists()


def test_changing_an_environments_tier_cannot_smuggle_instances_past_the_gate(operator, tenant):
    from tests.factories import EnvironmentFactory, InstanceFactory, VersionFactory

    dev = EnvironmentFactory(tenant=tenant, tier="dev")
    draft_instance = InstanceFactory(version=VersionFactory(template__tenant=tenant), environment=dev)
    response = operator.client.patch(f"/api/v1/environments/{dev.pk}/", {"tier": "prod"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "deployment_gate"
    assert "DRAFT" in response.json()["message"]
    dev.refresh_from_db()
    assert dev.tier == "dev"

    recorded_update(InstanceFactory._meta.model.objects.filter(pk=draft_instance.pk), state="RETIRED")
    response = operator.client.patch(f"/api/v1/environments/{dev.pk}/", {"tier": "prod"}, format="json")
    assert response.status_code == 200 and response.json()["tier"] == "prod"
