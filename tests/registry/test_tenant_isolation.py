"""Tenant isolation on every endpoint (SPEC §2): another tenant's id answers 404 on read and write,
lists never show another tenant's rows, and a reference to another tenant's object in a body is a 400."""

import pytest

from audit.models import ChangeRecord
from policies.models import PolicyEnvelope
from registry.models import AgentInstance, AgentTemplate, AgentVersion, Environment, Provider
from tenancy.models import ApiKey
from tests.factories import (
    EnvironmentFactory,
    InstanceFactory,
    ProviderFactory,
    VersionFactory,
    make_api_key,
    make_genome,
)
from tests.helpers import assert_error, assert_isolated, assert_post_isolated, ids, record_count

pytestmark = pytest.mark.django_db


class World:
    """One tenant's registry: an environment, provider, template, parent and child version, an instance,
    a change record and an API key."""

    def __init__(self, tenant, operator):
        from registry import services

        self.tenant = tenant
        self.environment = EnvironmentFactory(tenant=tenant, tier="dev")
        self.provider = ProviderFactory(tenant=tenant)
        self.template = services.template_create(
            tenant=tenant, actor=operator.actor, name=f"{tenant.slug}-bot", owners=["ops@example.com"]
        )
        self.parent = VersionFactory(template=self.template, version_label="1.0.0")
        self.version = VersionFactory(
            template=self.template, version_label="1.1.0", parent=self.parent, genome=make_genome(model="gpt-5")
        )
        self.instance = InstanceFactory(
            version=self.version, environment=self.environment, provider=self.provider, state="ACTIVE"
        )
        self.record = ChangeRecord.objects.filter(tenant=tenant).first()
        self.key, _ = make_api_key(tenant, ["viewer"], name=f"{tenant.slug} key")

    def detail_urls(self):
        return {
            "environment": f"/api/v1/environments/{self.environment.pk}/",
            "provider": f"/api/v1/providers/{self.provider.pk}/",
            "template": f"/api/v1/templates/{self.template.pk}/",
            "version": f"/api/v1/versions/{self.version.pk}/",
            "lineage": f"/api/v1/versions/{self.version.pk}/lineage/",
            "diff": f"/api/v1/versions/{self.version.pk}/diff/?against={self.parent.pk}",
            "evaluations": f"/api/v1/versions/{self.version.pk}/evaluations/",
            "instance": f"/api/v1/instances/{self.instance.pk}/",
            "audit": f"/api/v1/audit/{self.record.pk}/",
            "api-key": f"/api/v1/api-keys/{self.key.pk}/",
        }


@pytest.fixture
def ours(tenant, operator):
    return World(tenant, operator)


@pytest.fixture
def theirs(other_tenant, outsider):
    return World(other_tenant, outsider)


def snapshot():
    return (
        list(Environment.objects.order_by("pk").values()),
        list(Provider.objects.order_by("pk").values()),
        list(AgentTemplate.objects.order_by("pk").values()),
        list(AgentVersion.objects.order_by("pk").values()),
        list(AgentInstance.objects.order_by("pk").values()),
        list(ApiKey.objects.order_by("pk").values("pk", "revoked_at", "name")),
        record_count(),
    )


DETAIL = ["environment", "provider", "template", "version", "lineage", "diff", "evaluations", "instance", "audit"]


@pytest.mark.parametrize("endpoint", [*DETAIL, "api-key"])
def test_owner_can_read_the_url(ours, admin_member, endpoint):
    # guards the isolation tests: the URLs are right, so their 404s come from the tenant scoping
    response = admin_member.client.get(ours.detail_urls()[endpoint])
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("endpoint", [*DETAIL, "api-key"])
def test_another_tenants_id_is_404_on_read_and_write(ours, theirs, outsider, endpoint):
    before = snapshot()
    url = ours.detail_urls()[endpoint]
    body = {
        "name": "stolen",
        "description": "stolen",
        "to": "RETIRED",
        "suite": "s",
        "status": "FAIL",
        "owners": ["x@example.com"],
    }

    assert_isolated(outsider.client, url, write_body=body)

    assert snapshot() == before


@pytest.mark.parametrize(
    ("endpoint", "payload"),
    [
        ("versions/{version}/transition/", {"to": "RETIRED"}),
        ("versions/{version}/evaluations/", {"suite": "s", "status": "FAIL"}),
        ("instances/{instance}/transition/", {"to": "QUARANTINED"}),
        ("instances/{instance}/heartbeat/", {}),
    ],
)
def test_another_tenants_id_is_404_on_actions(ours, theirs, outsider, endpoint, payload):
    before = snapshot()
    url = "/api/v1/" + endpoint.format(version=ours.version.pk, instance=ours.instance.pk)

    assert_post_isolated(outsider.client, url, payload)

    assert snapshot() == before


def test_other_tenants_runtime_key_cannot_heartbeat_our_instance(ours, other_tenant):
    from rest_framework.test import APIClient

    _, secret = make_api_key(other_tenant, ["runtime"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert_post_isolated(client, f"/api/v1/instances/{ours.instance.pk}/heartbeat/")
    assert AgentInstance.objects.get(pk=ours.instance.pk).last_heartbeat_at is None


def test_diff_against_another_tenants_version_is_404(ours, theirs, admin_member):
    response = admin_member.client.get(f"/api/v1/versions/{ours.version.pk}/diff/?against={theirs.version.pk}")
    assert_error(response, 404, "not_found")


LISTS = {
    "environments": lambda w: {w.environment.pk},
    "providers": lambda w: {w.provider.pk},
    "templates": lambda w: {w.template.pk},
    "versions": lambda w: {w.version.pk, w.parent.pk},
    "instances": lambda w: {w.instance.pk},
    "audit": lambda w: set(ChangeRecord.objects.filter(tenant=w.tenant).values_list("pk", flat=True)),
    "api-keys": lambda w: set(ApiKey.objects.filter(tenant=w.tenant).values_list("pk", flat=True)),
}


@pytest.mark.parametrize("name", LISTS)
def test_lists_show_only_the_callers_tenant(ours, theirs, admin_member, outsider, name):
    mine = ids(admin_member.client.get(f"/api/v1/{name}/", {"page_size": 1000}))
    other = ids(outsider.client.get(f"/api/v1/{name}/", {"page_size": 1000}))

    assert mine == {str(pk) for pk in LISTS[name](ours)}
    assert other == {str(pk) for pk in LISTS[name](theirs)}
    assert mine and other and not mine & other


@pytest.mark.parametrize(
    "query",
    [
        "search={their_name}",
        "template={their_template}",
        "search={their_version}",
        "parent={their_parent}",
    ],
)
def test_filters_cannot_reach_into_another_tenant(ours, theirs, admin_member, query):
    query = query.format(
        their_name=theirs.template.name,
        their_template=theirs.template.pk,
        their_version=theirs.version.pk,
        their_parent=theirs.parent.pk,
    )
    assert admin_member.client.get(f"/api/v1/versions/?{query}").json()["results"] == []


def test_evaluations_list_shows_only_that_versions_results(ours, theirs, operator, outsider):
    outsider.client.post(
        f"/api/v1/versions/{theirs.version.pk}/evaluations/", {"suite": "s", "status": "PASS"}, format="json"
    )
    data = operator.client.get(f"/api/v1/versions/{ours.version.pk}/evaluations/").json()
    assert data["results"] == []


def test_lineage_never_includes_another_tenants_rows(ours, theirs, viewer):
    data = viewer.client.get(f"/api/v1/versions/{ours.version.pk}/lineage/").json()
    assert [row["id"] for row in data["ancestors"]] == [str(ours.parent.pk)]
    assert data["children"] == []


# ---------------------------------------------------------------- references in bodies


def test_version_with_another_tenants_template_is_400(ours, theirs, operator):
    before = snapshot()
    response = operator.client.post(
        "/api/v1/versions/",
        {"template": str(theirs.template.pk), "version_label": "9.0.0", "genome": make_genome()},
        format="json",
    )
    data = assert_error(response, 400, "validation_error")
    assert data["errors"]["template"] == ["Agent template not found in this tenant."]
    assert snapshot() == before


def test_version_with_another_tenants_parent_is_400(ours, theirs, operator):
    before = snapshot()
    response = operator.client.post(
        "/api/v1/versions/",
        {
            "template": str(ours.template.pk),
            "version_label": "9.0.0",
            "genome": make_genome(),
            "parent": str(theirs.version.pk),
        },
        format="json",
    )
    data = assert_error(response, 400, "validation_error")
    assert data["errors"]["parent"] == ["Agent version not found in this tenant."]
    assert snapshot() == before


@pytest.mark.parametrize("field", ["version", "environment", "provider"])
def test_instance_with_another_tenants_reference_is_400(ours, theirs, operator, field):
    before = snapshot()
    refs = {"version": ours.version, "environment": ours.environment, "provider": ours.provider}
    refs[field] = getattr(theirs, field)
    response = operator.client.post("/api/v1/instances/", {k: str(v.pk) for k, v in refs.items()}, format="json")
    data = assert_error(response, 400, "validation_error", contains=["not found in this tenant"])
    assert list(data["errors"]) == [field]
    assert snapshot() == before


def test_attaching_another_tenants_policy_is_400(ours, theirs, admin_member, other_tenant):
    policy = PolicyEnvelope.objects.create(tenant=other_tenant, name="theirs")
    before = snapshot()
    response = admin_member.client.patch(
        f"/api/v1/instances/{ours.instance.pk}/", {"policy": str(policy.pk)}, format="json"
    )
    assert_error(response, 400, "validation_error", contains=["Policy not found in this tenant."])
    assert snapshot() == before


def test_api_key_bound_to_another_tenants_instance_is_400(ours, theirs, admin_member):
    before = snapshot()
    response = admin_member.client.post(
        "/api/v1/api-keys/",
        {"name": "sneaky", "roles": ["runtime"], "instance": str(theirs.instance.pk)},
        format="json",
    )
    assert_error(response, 400, "validation_error", contains=["Instance not found in this tenant."])
    assert snapshot() == before


def test_a_tenant_named_in_the_body_is_refused(ours, theirs, operator):
    response = operator.client.post(
        "/api/v1/templates/",
        {"name": "mine", "owners": ["a@example.com"], "tenant": str(theirs.tenant.pk)},
        format="json",
    )
    assert response.status_code == 400, response.json()
    assert response.json()["errors"] == {"tenant": ["Unknown field."]}
    assert not AgentTemplate.objects.filter(name="mine").exists()


def test_a_reference_field_resolves_ids_in_the_whole_table_of_the_tenant_only():
    """Its lookup is compiled once per model (tenant and id), so a filtered queryset would be ignored:
    refused when the serializer is declared."""
    from django.core.exceptions import ImproperlyConfigured

    from registry.api.serializers import TenantPrimaryKeyRelatedField
    from registry.models import AgentTemplate

    with pytest.raises(ImproperlyConfigured):
        TenantPrimaryKeyRelatedField(queryset=AgentTemplate.objects.filter(name="x"))
    assert TenantPrimaryKeyRelatedField(queryset=AgentTemplate.objects.all()).queryset.model is AgentTemplate
