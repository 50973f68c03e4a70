"""A provider whose health endpoint answers wrong takes no new deployments: creating an instance on it
and activating one there are 409 ``provider_unhealthy`` in the API and a form error in the UI, with the
reason; an unknown (never polled) or healthy provider is not refused, nor are instances already running
there. The Federation page shows each provider's health, when it was checked and why it is unhealthy."""

import pytest
from django.urls import reverse
from django.utils import timezone

from registry.choices import InstanceState, ProviderHealth
from registry.models import AgentInstance, Provider
from tests.factories import InstanceFactory, ProviderFactory
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def mark(provider, state, reason="", status=None):
    Provider.objects.filter(pk=provider.pk).update(
        health_state=state, health_reason=reason, health_status_code=status, health_checked_at=timezone.now()
    )


def deploy(member, world, provider, name="edge-1"):
    body = {"version": str(world.root.pk), "environment": str(world.dev.pk), "provider": str(provider.pk), "name": name}
    return member.client.post("/api/v1/instances/", body, format="json")


def test_the_api_refuses_a_deployment_to_an_unhealthy_provider(operator, world):
    mark(world.provider, ProviderHealth.UNHEALTHY, "answered HTTP 503, expected 200", 503)
    response = deploy(operator, world, world.provider)
    assert_error(
        response, 409, "provider_unhealthy", contains=(f"Provider {world.provider.name} is unhealthy", "HTTP 503")
    )
    assert not AgentInstance.objects.filter(name="edge-1").exists()


@pytest.mark.parametrize("state", [ProviderHealth.UNKNOWN, ProviderHealth.HEALTHY])
def test_unknown_or_healthy_providers_take_deployments(operator, world, state):
    mark(world.provider, state)
    assert deploy(operator, world, world.provider).status_code == 201


def test_activating_an_instance_on_an_unhealthy_provider_is_refused(operator, world):
    instance = InstanceFactory(version=world.root, environment=world.dev, provider=world.provider)
    running = InstanceFactory(
        version=world.root, environment=world.dev, provider=world.provider, state=InstanceState.ACTIVE
    )
    mark(world.provider, ProviderHealth.UNHEALTHY, "no answer within the timeout")
    url = f"/api/v1/instances/{instance.pk}/transition/"
    response = operator.client.post(url, {"to": "ACTIVE"}, format="json")
    assert_error(response, 409, "provider_unhealthy", contains=("no answer within the timeout",))
    instance.refresh_from_db()
    assert instance.state == InstanceState.PROVISIONING
    # What already runs there is not touched: pausing and resuming is not a new deployment.
    assert operator.client.post(f"/api/v1/instances/{running.pk}/transition/", {"to": "PAUSED"}).status_code == 200
    assert operator.client.post(f"/api/v1/instances/{running.pk}/transition/", {"to": "ACTIVE"}).status_code == 200
    mark(world.provider, ProviderHealth.HEALTHY)
    assert operator.client.post(url, {"to": "ACTIVE"}, format="json").status_code == 200


def test_the_new_instance_form_shows_the_refusal(login, operator, world):
    mark(world.provider, ProviderHealth.UNHEALTHY, "answered HTTP 503, expected 200", 503)
    response = login(operator).post(
        reverse("ui:instance_create"),
        {
            "version": str(world.root.pk),
            "environment": str(world.dev.pk),
            "provider": str(world.provider.pk),
            "name": "ui-edge",
        },
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="modal-root",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert f"Provider {world.provider.name} is unhealthy (answered HTTP 503, expected 200" in html
    assert 'value="ui-edge"' in html  # what was typed is kept
    assert not AgentInstance.objects.filter(name="ui-edge").exists()


def card(html: str, name: str) -> str:
    return html.split(f'data-testid="provider-name">{name}</h3>', 1)[1].split('data-testid="provider-card"')[0]


def test_the_federation_page_shows_each_providers_health(login, viewer, world, tenant):
    down = ProviderFactory(tenant=tenant, name="down-eu", health_endpoint="https://down.example.com/healthz")
    up = ProviderFactory(tenant=tenant, name="up-eu", health_endpoint="https://up.example.com/healthz")
    waiting = ProviderFactory(tenant=tenant, name="new-eu", health_endpoint="https://new.example.com/healthz")
    mark(down, ProviderHealth.UNHEALTHY, "answered HTTP 503, expected 200", 503)
    mark(up, ProviderHealth.HEALTHY, status=200)
    html = login(viewer).get(reverse("ui:federation")).content.decode()
    cards = {name: card(html, name) for name in ("down-eu", "up-eu", "new-eu")}
    assert 'data-health="unhealthy"' in cards["down-eu"] and "HTTP 503" in cards["down-eu"]
    assert "answered HTTP 503, expected 200" in cards["down-eu"]
    assert "New deployments to it are refused" in cards["down-eu"]
    assert 'data-health="healthy"' in cards["up-eu"] and "checked" in cards["up-eu"]
    assert "New deployments" not in cards["up-eu"]
    assert 'data-health="unknown"' in cards["new-eu"] and "not polled yet" in cards["new-eu"]
    assert waiting.health_state == ProviderHealth.UNKNOWN
