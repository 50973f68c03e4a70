"""One submit shows every problem (issue 26): when the form rejects some fields, the service's model
validation still runs on the fields it could read, so New template, New provider, New environment and
the policy editor show the form's errors and the model's together, not the model's only once the
form's are fixed. Nothing is written, and a field the form rejected gets no second, stale error."""

import re

import pytest
from django.urls import reverse

from policies.models import PolicyEnvelope
from registry.models import AgentTemplate, Environment, Provider
from tests.helpers import record_count

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "modal-root"}


def field_errors(html: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for field, message in re.findall(r'data-field-error="([^"]+)">([^<]*)<', html):
        errors.setdefault(field, []).append(message)
    return errors


def test_new_template_shows_a_taken_name_with_the_forms_own_errors(login, operator, world, tenant):
    before = record_count()
    data = {"name": world.template.name.upper(), "owners": "", "tags": "support"}

    html = login(operator).post(reverse("ui:template_create"), data, **HX).content.decode()

    errors = field_errors(html)
    assert errors.keys() == {"owners", "name"}, errors
    assert errors["owners"] == ["This field is required."]
    assert "already exists" in errors["name"][0]
    assert AgentTemplate.objects.filter(tenant=tenant).count() == 1 and record_count() == before


def test_new_provider_shows_the_models_errors_with_the_forms(login, operator, world, tenant):
    before = record_count()
    data = {
        "name": world.provider.name,  # taken (model)
        "type": "federated",
        "health_endpoint": "ftp://partner.example.com",  # not http(s) (form)
        "federation_config": "",  # a federated provider needs one (model)
        "description": "typed",
    }

    html = login(operator).post(reverse("ui:provider_create"), data, **HX).content.decode()

    errors = field_errors(html)
    assert errors.keys() == {"health_endpoint", "federation_config", "name"}, errors
    assert "http(s) URL" in errors["health_endpoint"][0]
    assert "needs a non-empty federation_config" in errors["federation_config"][0]
    assert "already exists" in errors["name"][0]
    assert "typed" in html  # nothing typed is lost
    assert Provider.objects.filter(tenant=tenant).count() == 1 and record_count() == before


def test_editing_a_provider_shows_the_models_errors_with_the_forms(login, operator, world):
    data = {"name": world.provider.name, "type": "federated", "health_endpoint": "not a url", "federation_config": ""}

    html = login(operator).post(reverse("ui:provider_edit", args=[world.provider.pk]), data, **HX).content.decode()

    assert field_errors(html).keys() == {"health_endpoint", "federation_config"}
    world.provider.refresh_from_db()
    assert world.provider.type == "local"


def test_new_environment_shows_a_taken_name_with_the_forms_own_errors(login, operator, world, tenant):
    data = {"name": "DEV", "tier": "staging", "description": "", "config": "{not json"}

    html = login(operator).post(reverse("ui:environment_create"), data, **HX).content.decode()

    errors = field_errors(html)
    assert errors.keys() == {"config", "name"}, errors
    assert "Not valid JSON" in errors["config"][0] and "already exists" in errors["name"][0]
    assert Environment.objects.filter(tenant=tenant).count() == 3


def policy_data(**overrides):
    return {
        "name": "guarded",
        "autonomy_tier": "2",
        "allowed_tools": "crm.*",
        "approval_timeout_seconds": "900",
        **overrides,
    }


def test_the_policy_editor_shows_the_models_errors_with_the_forms(login, compliance, world, tenant):
    before = record_count()
    data = policy_data(
        name=world.policy.name.upper(),  # taken (model)
        approval_timeout_seconds="0",  # below 1 (form)
        cost_limit_daily_usd="50",  # above the monthly limit (model)
        cost_limit_monthly_usd="10",
        denied_tools="email.[send",  # an unbalanced glob (model)
    )

    response = login(compliance).post(reverse("ui:policy_create"), data)

    html = response.content.decode()
    errors = field_errors(html)
    assert errors.keys() == {"approval_timeout_seconds", "cost_limit_daily_usd", "denied_tools", "name"}, errors
    assert "greater than or equal to 1" in errors["approval_timeout_seconds"][0]
    assert errors["cost_limit_daily_usd"] == ["The daily limit cannot exceed the monthly limit."]
    assert "unbalanced" in errors["denied_tools"][0]
    assert "already exists" in errors["name"][0]
    assert "4 problems to fix" in html  # the summary at the top counts them all
    assert PolicyEnvelope.objects.filter(tenant=tenant).count() == 1 and record_count() == before


def test_editing_a_policy_shows_the_models_errors_with_the_forms(login, compliance, world):
    url = reverse("ui:policy_edit", args=[world.policy.pk])
    data = policy_data(name=world.policy.name, autonomy_tier="9", allowed_tools="crm.* crm.*")

    html = login(compliance).post(url, data).content.decode()

    errors = field_errors(html)
    assert "Select a valid choice" in html  # the tier the form refused, shown beside the tier radios
    assert errors.keys() == {"allowed_tools"}, errors
    assert errors["allowed_tools"] == ["Patterns must not repeat."]
    world.policy.refresh_from_db()
    assert world.policy.revision == 1
