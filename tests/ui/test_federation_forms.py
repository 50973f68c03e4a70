"""Providers and environments are created and edited on the Federation page (operator / admin) through
``provider_create/update`` and ``environment_create/update``: change records, errors next to the fields
with everything typed kept, the deployment gate refusing a tier change in the form, 404 for another
tenant's ids and 403 (and no buttons) for roles that may not."""

import pytest
from django.urls import reverse

from audit.choices import EventType
from registry.choices import InstanceState
from registry.models import Environment, Provider
from tests.factories import InstanceFactory
from tests.helpers import record_count, records

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "modal-root"}


def provider_data(**overrides):
    return {
        "name": "partner-cloud",
        "type": "federated",
        "health_endpoint": "https://partner.example.com/health",
        "federation_config": '{"endpoint": "https://partner.example.com/arm", "region": "eu-west-1"}',
        "description": "Runs agents for the EU",
        **overrides,
    }


def env_data(**overrides):
    return {"name": "qa", "tier": "staging", "description": "QA lab", "config": '{"replicas": 2}', **overrides}


def test_federation_page_lists_environments_and_offers_forms_to_operators(login, operator, world):
    html = login(operator).get(reverse("ui:federation")).content.decode()
    assert 'data-testid="new-provider"' in html and 'data-testid="new-environment"' in html
    assert reverse("ui:provider_edit", args=[world.provider.pk]) in html
    for env in (world.dev, world.staging, world.prod):
        assert reverse("ui:environment_edit", args=[env.pk]) in html and env.name in html
    assert "APPROVED versions only" in html and "CANDIDATE or APPROVED" in html


def test_the_refresh_after_a_save_answers_the_page_body(login, operator, world):
    response = login(operator).get(reverse("ui:federation"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="federation-body")
    html = response.content.decode()
    assert 'data-testid="providers"' in html and "<html" not in html


def test_create_provider(login, operator, tenant):
    client = login(operator)
    assert 'data-testid="provider-form"' in client.get(reverse("ui:provider_create"), **HX).content.decode()
    response = client.post(reverse("ui:provider_create"), provider_data(), **HX)
    assert response.status_code == 200 and "arm:refresh" in response["HX-Trigger-After-Swap"]
    assert b"Provider partner-cloud (federated) created" in response.content
    provider = Provider.objects.get(tenant=tenant, name="partner-cloud")
    assert provider.federation_config == {"endpoint": "https://partner.example.com/arm", "region": "eu-west-1"}
    assert provider.health_endpoint == "https://partner.example.com/health"
    [record] = records(provider, EventType.PROVIDER_CREATED)
    assert record.actor == f"user:{operator.user.username}"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (provider_data(federation_config=""), "federation_config", "needs a non-empty federation_config"),
        (provider_data(federation_config="{not json"), "federation_config", "Not valid JSON"),
        (provider_data(federation_config="[1, 2]"), "federation_config", "must be a JSON object"),
        (provider_data(health_endpoint="ftp://x.example.com"), "health_endpoint", "http(s) URL"),
        (provider_data(type="cloud"), "type", "Select a valid choice"),
        (provider_data(name=""), "name", "This field is required"),
    ],
)
def test_provider_errors_are_per_field_and_input_is_kept(login, operator, tenant, data, field, message):
    before = record_count()
    response = login(operator).post(reverse("ui:provider_create"), data, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Trigger-After-Swap" not in response
    assert f'data-field-error="{field}"' in html and message in html
    assert "Runs agents for the EU" in html  # nothing typed is lost
    assert not Provider.objects.filter(tenant=tenant, name="partner-cloud").exists() and record_count() == before


def test_duplicate_provider_name_is_on_the_name_field(login, operator, world):
    html = login(operator).post(reverse("ui:provider_create"), provider_data(name=world.provider.name), **HX)
    assert 'data-field-error="name"' in html.content.decode() and "already exists" in html.content.decode()


def test_edit_provider(login, admin_member, world):
    client = login(admin_member)
    url = reverse("ui:provider_edit", args=[world.provider.pk])
    form = client.get(url, **HX).content.decode()
    assert f'value="{world.provider.name}"' in form
    data = provider_data(name=world.provider.name, description="edited")
    assert client.post(url, data, **HX).status_code == 200
    world.provider.refresh_from_db()
    assert world.provider.type == "federated" and world.provider.description == "edited"
    [record] = records(world.provider, EventType.PROVIDER_CHANGED)
    assert set(record.payload["changes"]) >= {"type", "description", "federation_config", "health_endpoint"}


def test_create_environment(login, operator, tenant):
    client = login(operator)
    form = client.get(reverse("ui:environment_create"), **HX).content.decode()
    assert 'data-testid="tier-gates"' in form and "APPROVED versions only" in form
    response = client.post(reverse("ui:environment_create"), env_data(), **HX)
    assert response.status_code == 200 and b"Environment qa (staging) created" in response.content
    env = Environment.objects.get(tenant=tenant, name="qa")
    assert (env.tier, env.description, env.config) == ("staging", "QA lab", {"replicas": 2})
    [record] = records(env, EventType.ENVIRONMENT_CREATED)
    assert record.payload["after"]["config"] == {"replicas": 2}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (env_data(config="nope"), "config", "Not valid JSON"),
        (env_data(config='"text"'), "config", "must be a JSON object"),
        (env_data(tier="qa"), "tier", "Select a valid choice"),
        (env_data(name="dev"), "name", "already exists"),
    ],
)
def test_environment_errors_are_per_field_and_input_is_kept(login, operator, world, data, field, message):
    before = record_count()
    response = login(operator).post(reverse("ui:environment_create"), data, **HX)
    html = response.content.decode()
    assert f'data-field-error="{field}"' in html and message in html
    assert "QA lab" in html
    assert record_count() == before


def test_tier_change_refused_by_the_gate_is_shown_on_the_tier_field(login, operator, world):
    # a DRAFT version runs in dev: dev cannot become staging or prod
    InstanceFactory(version=world.child, environment=world.dev, provider=world.provider, state=InstanceState.ACTIVE)
    url = reverse("ui:environment_edit", args=[world.dev.pk])
    client = login(operator)
    form = client.get(url, **HX).content.decode()
    assert "1 live instance runs here" in form
    before = record_count()
    response = client.post(url, env_data(name=world.dev.name, tier="prod", description="typed"), **HX)
    html = response.content.decode()
    assert response.status_code == 200 and 'data-field-error="tier"' in html
    assert f"Cannot make environment {world.dev.name} prod" in html and "is DRAFT" in html
    assert "typed" in html and "replicas" in html  # what was typed comes back
    world.dev.refresh_from_db()
    assert world.dev.tier == "dev" and record_count() == before


def test_edit_environment_records_the_change(login, operator, world):
    url = reverse("ui:environment_edit", args=[world.staging.pk])
    response = login(operator).post(url, env_data(name="staging-eu", tier="staging", config=""), **HX)
    assert response.status_code == 200 and b"Environment staging-eu saved" in response.content
    [record] = records(world.staging, EventType.ENVIRONMENT_CHANGED)
    assert record.payload["changes"]["name"] == {"before": world.staging.name, "after": "staging-eu"}


@pytest.mark.parametrize("role", ["viewer", "approver", "compliance"])
def test_roles_that_may_not_get_403_and_no_buttons(login, cast, role, world):
    client = login(cast[role])
    html = client.get(reverse("ui:federation")).content.decode()
    for marker in ('data-testid="new-provider"', 'data-testid="new-environment"', "edit-provider", "edit-environment"):
        assert marker not in html
    before = record_count()
    for url, data in (
        (reverse("ui:provider_create"), provider_data()),
        (reverse("ui:provider_edit", args=[world.provider.pk]), provider_data()),
        (reverse("ui:environment_create"), env_data()),
        (reverse("ui:environment_edit", args=[world.dev.pk]), env_data()),
    ):
        assert client.get(url, **HX).status_code == 403, url
        assert client.post(url, data, **HX).status_code == 403, url
    assert record_count() == before


def test_another_tenants_provider_and_environment_are_404(login, operator, world, other_world):
    client = login(operator)
    before = record_count()
    for url, data in (
        (reverse("ui:provider_edit", args=[other_world.provider.pk]), provider_data()),
        (reverse("ui:environment_edit", args=[other_world.dev.pk]), env_data()),
    ):
        assert client.get(url, **HX).status_code == 404
        assert client.post(url, data, **HX).status_code == 404
    assert record_count() == before
    other_world.provider.refresh_from_db()
    assert other_world.provider.name == "gx-local"
