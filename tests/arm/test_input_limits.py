"""Input limits: names and labels refuse control / format / separator characters (bidi overrides,
zero-width, escape sequences) and surrounding whitespace; descriptions, owners, tags and free-form JSON
objects have length limits. API, UI forms and admin refuse them alike, naming the field; commands never
echo raw control characters to a terminal."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from arm.validators import MAX_JSON_OBJECT_BYTES, terminal_safe, validate_name
from policies.models import PolicyEnvelope
from registry import services
from registry.models import AgentInstance, AgentTemplate, AgentVersion, Environment, EvaluationResult, Provider
from tenancy.models import ApiKey
from tests.factories import (
    EnvironmentFactory,
    MembershipFactory,
    ProviderFactory,
    TemplateFactory,
    UserFactory,
    VersionFactory,
    make_genome,
)
from tests.helpers import assert_error, tamper_genome

pytestmark = pytest.mark.django_db

BAD_NAMES = {
    "bidi-override": "invoice\u202egpj.exe",
    "zero-width": "prod\u200b",
    "escape": "evil\x1b[2J",
    "newline": "two\nlines",
    "line-separator": "a\u2028b",
    "bom": "\ufeffname",
}
BIG_CONFIG = {"blob": "x" * MAX_JSON_OBJECT_BYTES}


def refused(response, field: str) -> dict:
    data = assert_error(response, 400, "validation_error")
    assert field in data["errors"], data
    return data


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_api_refuses_unsafe_characters_in_names(operator, compliance, admin_member, tenant, name):
    template = TemplateFactory(tenant=tenant)
    version = VersionFactory(template=template)
    env, provider = EnvironmentFactory(tenant=tenant), ProviderFactory(tenant=tenant)
    client = operator.client
    refused(client.post("/api/v1/environments/", {"name": name, "tier": "dev"}, format="json"), "name")
    refused(client.post("/api/v1/providers/", {"name": name, "type": "local"}, format="json"), "name")
    refused(client.post("/api/v1/templates/", {"name": name, "owners": ["a@example.com"]}, format="json"), "name")
    body = {"template": str(template.pk), "version_label": name, "genome": make_genome()}
    refused(client.post("/api/v1/versions/", body, format="json"), "version_label")
    body = {"version": str(version.pk), "environment": str(env.pk), "provider": str(provider.pk), "name": name}
    refused(client.post("/api/v1/instances/", body, format="json"), "name")
    body = {"suite": name, "status": "PASS"}
    refused(client.post(f"/api/v1/versions/{version.pk}/evaluations/", body, format="json"), "suite")
    refused(compliance.client.post("/api/v1/policies/", {"name": name, "autonomy_tier": 1}, format="json"), "name")
    refused(admin_member.client.post("/api/v1/api-keys/", {"name": name, "roles": ["viewer"]}, format="json"), "name")
    assert Environment.objects.count() == 1 and Provider.objects.count() == 1
    assert AgentTemplate.objects.count() == 1 and AgentVersion.objects.count() == 1
    assert not AgentInstance.objects.exists() and not EvaluationResult.objects.exists()
    assert not PolicyEnvelope.objects.exists()
    assert not ApiKey.objects.filter(name=name).exists()


def test_api_refuses_long_descriptions(operator, compliance):
    text = "d" * 2001
    body = {"name": "e", "tier": "dev", "description": text}
    refused(operator.client.post("/api/v1/environments/", body, format="json"), "description")
    body = {"name": "p", "type": "local", "description": text}
    refused(operator.client.post("/api/v1/providers/", body, format="json"), "description")
    body = {"name": "t", "owners": ["a@example.com"], "description": text}
    refused(operator.client.post("/api/v1/templates/", body, format="json"), "description")
    refused(
        compliance.client.post(
            "/api/v1/policies/", {"name": "p", "autonomy_tier": 1, "description": text}, format="json"
        ),
        "description",
    )
    ok = {"name": "t", "owners": ["a@example.com"], "description": "d" * 2000}
    assert operator.client.post("/api/v1/templates/", ok, format="json").status_code == 201


def test_api_refuses_too_many_or_too_long_owners_and_tags(operator):
    def post(**body):
        return operator.client.post(
            "/api/v1/templates/", {"name": "t", "owners": ["a@example.com"], **body}, format="json"
        )

    refused(post(owners=[f"user{i}@example.com" for i in range(51)]), "owners")
    refused(post(owners=["a" * 243 + "@example.com"]), "owners")  # 255 characters
    refused(post(owners=["ceo\u202e@example.com"]), "owners")
    refused(post(tags=[f"t{i}" for i in range(51)]), "tags")
    assert (
        post(owners=[f"user{i}@example.com" for i in range(50)], tags=[f"t{i}" for i in range(50)]).status_code == 201
    )


def test_api_refuses_json_objects_over_16_kib(operator, tenant):
    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    refused(
        operator.client.post(
            "/api/v1/environments/", {"name": "e", "tier": "dev", "config": BIG_CONFIG}, format="json"
        ),
        "config",
    )
    body = {"name": "p", "type": "federated", "federation_config": BIG_CONFIG}
    refused(operator.client.post("/api/v1/providers/", body, format="json"), "federation_config")
    body = {"suite": "s", "status": "PASS", "details": BIG_CONFIG}
    refused(operator.client.post(f"/api/v1/versions/{version.pk}/evaluations/", body, format="json"), "details")
    small = {"blob": "x" * (MAX_JSON_OBJECT_BYTES - 20)}
    assert (
        operator.client.post(
            "/api/v1/environments/", {"name": "e", "tier": "dev", "config": small}, format="json"
        ).status_code
        == 201
    )


def test_policy_evaluate_refuses_unsafe_or_long_tool_names(operator, tenant):
    from tests.policies.factories import PolicyFactory, make_instance

    instance = make_instance(tenant, policy=PolicyFactory(tenant=tenant))
    for tool in ("crm.lookup\u202e", "crm\x00lookup", "x" * 201):
        response = operator.client.post(
            "/api/v1/policy/evaluate/", {"instance": str(instance.pk), "tool": tool}, format="json"
        )
        assert response.status_code == 400, (tool, response.json())
        assert "tool" in response.json()["message"], response.json()


def test_the_service_refuses_surrounding_whitespace_and_unsafe_names(operator, tenant, as_actor):
    with as_actor(operator.actor, tenant):
        for name in (" padded", "padded ", "evil\u202e"):
            with pytest.raises(ValidationError) as excinfo:
                services.environment_create(tenant=tenant, name=name, tier="dev", actor=operator.actor)
            assert "name" in excinfo.value.message_dict
    assert not Environment.objects.exists()


def test_ui_form_refuses_unsafe_names_next_to_the_field(operator, tenant):
    client = Client()
    client.force_login(operator.user)
    html = client.post(
        reverse("ui:template_create"),
        {"name": "triage\u202e", "owners": "a@example.com"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="modal-root",
    ).content.decode()
    assert 'data-field-error="name"' in html and "U+202E" in html
    assert not AgentTemplate.objects.exists()


def test_admin_refuses_unsafe_names(tenant):
    user = UserFactory(username="acme-staff", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    client = Client()
    client.force_login(user)
    env = EnvironmentFactory(tenant=tenant, name="dev")
    page = client.post(
        f"/admin/registry/environment/{env.pk}/change/",
        {"name": "dev\u200b", "tier": env.tier, "description": "", "config": "{}"},
    )
    assert page.status_code == 200  # the form again, with the error
    assert "U+200B" in page.text
    env.refresh_from_db()
    assert env.name == "dev"


def test_validate_name_accepts_ordinary_unicode():
    for name in ("Grüße-agent 世界", "crm.lookup", "a b", "emoji 🚀"):
        validate_name(name)


def test_terminal_safe_escapes_control_format_and_separator_characters():
    assert terminal_safe("ok name") == "ok name"
    assert terminal_safe("evil\x1b[2J\u202e\u200b\u2028\n") == "evil\\x1b[2J\\u202e\\u200b\\u2028\\x0a"


def test_commands_do_not_echo_raw_control_characters(tenant):
    # a name stored before the limits existed (the factory writes without validation)
    template = TemplateFactory(tenant=tenant, name="evil\x1b[2J\u202eagent")
    version = VersionFactory(template=template, version_label="1.0\x07")
    tamper_genome(version)
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("verify_integrity", stdout=out)
    text = out.getvalue()
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "evil\\x1b[2J\\u202eagent@1.0\\x07" in text
