"""The create/edit modals: they write through the services (with change records), show errors next to
the fields, keep everything that was typed, and show the computed hash after a version is created."""

import json
import re

import pytest
from django.urls import reverse

from audit.choices import EventType
from registry.genome import genome_hash
from registry.models import AgentInstance, AgentTemplate, AgentVersion
from tests.helpers import records

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "modal-root"}
PROMPT = "sha256:" + "cd" * 32


def test_create_template_writes_through_the_service(login, operator, tenant):
    response = login(operator).post(
        reverse("ui:template_create"),
        {
            "name": "triage",
            "description": "Sorts tickets",
            "owners": "a@example.com, viewer-acme",
            "tags": "support ops",
        },
        **HX,
    )
    assert response.status_code == 200
    assert "arm:refresh" in response["HX-Trigger-After-Swap"]
    template = AgentTemplate.objects.get(tenant=tenant, name="triage")
    assert template.owners == ["a@example.com", "viewer-acme"] and template.tags == ["support", "ops"]
    assert template.created_by == f"user:{operator.user.username}"
    assert [r.event_type for r in records(template)] == [EventType.TEMPLATE_CREATED]
    assert b"Template triage created" in response.content  # the toast


def test_template_errors_are_next_to_the_fields_and_input_is_kept(login, operator, world):
    response = login(operator).post(
        reverse("ui:template_create"),
        {"name": world.template.name, "description": "keep me", "owners": "ok@example.com", "tags": "Bad Tag!"},
        **HX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-field-error="tags"' in html and "Tags are short slugs" in html
    assert "keep me" in html and 'value="Bad Tag!"' in html and 'value="ok@example.com"' in html
    assert AgentTemplate.objects.filter(name=world.template.name).count() == 1


def test_duplicate_template_name_is_reported_on_the_name_field(login, operator, world):
    html = (
        login(operator)
        .post(reverse("ui:template_create"), {"name": world.template.name, "owners": "ok@example.com"}, **HX)
        .content.decode()
    )
    assert 'data-field-error="name"' in html and "already exists" in html


def test_edit_template(login, operator, world):
    client = login(operator)
    form = client.get(reverse("ui:template_edit", args=[world.template.pk]), **HX).content.decode()
    assert f'value="{world.template.name}"' in form
    client.post(
        reverse("ui:template_edit", args=[world.template.pk]),
        {"name": "renamed", "owners": "owner@example.com", "tags": "support"},
        **HX,
    )
    world.template.refresh_from_db()
    assert world.template.name == "renamed" and world.template.tags == ["support"]
    assert records(world.template, EventType.TEMPLATE_CHANGED)


def structured(world, **overrides):
    data = {
        "template": str(world.template.pk),
        "version_label": "2.0.0",
        "parent": str(world.root.pk),
        "genome_mode": "structured",
        "model_provider": "openai",
        "model_name": "gpt-5",
        "model_parameters": '{"temperature": 0.1}',
        "prompt_bundle_hash": PROMPT,
        "tool_name": ["crm.lookup", "email.send"],
        "tool_version": ["1.2.0", ""],
        "tool_risk": ["low", "high"],
        "tool_scopes": ["crm:read", ""],
        "provenance_source": "git+https://example.com/agents.git",
    }
    data.update(overrides)
    return data


def test_create_version_from_structured_fields_shows_the_computed_hash(login, operator, world):
    response = login(operator).post(reverse("ui:version_create"), structured(world), **HX)
    assert response.status_code == 200
    version = AgentVersion.objects.get(template=world.template, version_label="2.0.0")
    assert version.parent_id == world.root.pk
    assert version.genome == {
        "model_config": {"provider": "openai", "name": "gpt-5", "parameters": {"temperature": 0.1}},
        "prompt_bundle_hash": PROMPT,
        "tool_manifest": [
            {"name": "crm.lookup", "version": "1.2.0", "risk": "low", "data_scopes": ["crm:read"]},
            {"name": "email.send", "risk": "high"},
        ],
        "provenance": {"source": "git+https://example.com/agents.git"},
    }
    assert version.genome_hash == genome_hash(version.genome)
    html = response.content.decode()
    assert 'data-testid="created-hash"' in html and version.genome_hash in html
    assert records(version, EventType.VERSION_CREATED)


def test_create_version_from_raw_json(login, operator, world):
    genome = {
        "model_config": {"provider": "anthropic", "name": "claude"},
        "prompt_bundle_hash": PROMPT,
        "tool_manifest": [],
    }
    login(operator).post(
        reverse("ui:version_create"),
        {
            "template": str(world.template.pk),
            "version_label": "3.0.0",
            "genome_mode": "raw",
            "genome_json": json.dumps(genome),
        },
        **HX,
    )
    version = AgentVersion.objects.get(template=world.template, version_label="3.0.0")
    assert version.genome == genome and version.parent is None


def test_version_errors_point_at_the_fields_and_keep_every_tool_row(login, operator, world):
    data = structured(
        world,
        version_label="1.0.0",  # taken
        prompt_bundle_hash="sha256:nothex",
        tool_name=["crm.lookup", "crm.lookup"],
    )
    html = login(operator).post(reverse("ui:version_create"), data, **HX).content.decode()
    assert 'data-field-error="prompt_bundle_hash"' in html
    assert 'data-field-error="tools"' in html and "declared twice" in html
    assert 'value="sha256:nothex"' in html and 'value="gpt-5"' in html
    assert html.count('name="tool_name" value="crm.lookup"') == 2
    assert AgentVersion.objects.filter(template=world.template).count() == 2


def test_taken_label_is_reported_on_the_label_field(login, operator, world):
    html = (
        login(operator)
        .post(reverse("ui:version_create"), structured(world, version_label="1.0.0"), **HX)
        .content.decode()
    )
    assert 'data-field-error="version_label"' in html


def test_invalid_json_keeps_the_text(login, operator, world):
    html = (
        login(operator)
        .post(
            reverse("ui:version_create"),
            {
                "template": str(world.template.pk),
                "version_label": "4.0.0",
                "genome_mode": "raw",
                "genome_json": '{"model_config": ',
            },
            **HX,
        )
        .content.decode()
    )
    assert 'data-field-error="genome_json"' in html and "Not valid JSON" in html
    assert "{&quot;model_config&quot;: " in html


def test_parent_selector_lists_only_the_templates_versions(login, operator, world):
    from tests.factories import TemplateFactory, VersionFactory

    other = VersionFactory(template=TemplateFactory(tenant=world.tenant, name="other-agent"))
    client = login(operator)
    html = client.get(reverse("ui:version_parent_options"), {"template": str(world.template.pk)}).content.decode()
    assert str(world.root.pk) in html and str(world.child.pk) in html and str(other.pk) not in html
    html = client.post(reverse("ui:version_create"), structured(world, parent=str(other.pk)), **HX).content.decode()
    assert 'data-field-error="parent"' in html


def test_create_instance_offers_only_deployable_environments(login, operator, world):
    client = login(operator)
    # The DRAFT child may go to dev only; the APPROVED root everywhere.
    html = client.get(reverse("ui:instance_create"), {"version": str(world.child.pk)}, **HX).content.decode()
    env_select = html.split('name="environment"', 1)[1].split("</select>", 1)[0]
    assert str(world.dev.pk) in env_select
    assert str(world.staging.pk) not in env_select and str(world.prod.pk) not in env_select
    assert "Not offered: prod" in html
    html = client.get(reverse("ui:instance_create"), {"version": str(world.root.pk)}, **HX).content.decode()
    env_select = html.split('name="environment"', 1)[1].split("</select>", 1)[0]
    assert all(str(e.pk) in env_select for e in (world.dev, world.staging, world.prod))


def test_create_instance_refuses_a_gate_violation_and_keeps_input(login, operator, world):
    response = login(operator).post(
        reverse("ui:instance_create"),
        {
            "version": str(world.child.pk),
            "environment": str(world.prod.pk),
            "provider": str(world.provider.pk),
            "name": "too-early",
        },
        **HX,
    )
    html = response.content.decode()
    assert 'data-field-error="environment"' in html
    assert 'value="too-early"' in html
    assert not AgentInstance.objects.filter(name="too-early").exists()


def test_create_instance(login, operator, world):
    login(operator).post(
        reverse("ui:instance_create"),
        {
            "version": str(world.child.pk),
            "environment": str(world.dev.pk),
            "provider": str(world.provider.pk),
            "name": "dev-1",
        },
        **HX,
    )
    instance = AgentInstance.objects.get(name="dev-1")
    assert instance.state == "PROVISIONING" and instance.created_by == f"user:{operator.user.username}"
    assert records(instance, EventType.INSTANCE_CREATED)


def test_plain_post_without_htmx_redirects(login, operator, tenant):
    response = login(operator).post(reverse("ui:template_create"), {"name": "plain", "owners": "x@example.com"})
    assert response.status_code == 302
    assert response["Location"] == reverse("ui:directory_tab", args=["templates"])


def test_version_form_queries_do_not_grow_with_the_parent_choices(login, operator, world):
    from tests.conftest import assert_constant_queries
    from tests.factories import VersionFactory

    client = login(operator)
    url = reverse("ui:version_create") + f"?template={world.template.pk}"
    assert_constant_queries(
        lambda n: [VersionFactory(template=world.template) for _ in range(n)],
        lambda: client.get(url, **HX),
        small=5,
        large=40,
    )


def test_new_child_version_starts_from_the_parents_genome(login, operator, world):
    html = login(operator).get(reverse("ui:version_create"), {"parent": str(world.root.pk)}, **HX).content.decode()
    parent_select = html.split('name="parent"', 1)[1].split("</select>", 1)[0]
    assert f'value="{world.root.pk}" selected' in parent_select
    assert 'value="payments.refund"' in html  # tool rows copied
    assert world.root.genome["prompt_bundle_hash"] in html


def test_version_errors_use_field_labels_not_genome_keys(login, operator, world):
    data = structured(world, prompt_bundle_hash="", model_name="", tool_name=["crm.lookup", "crm.lookup"])
    html = login(operator).post(reverse("ui:version_create"), data, **HX).content.decode()
    errors = " ".join(re.findall(r'<p class="field-error"[^>]*>([^<]*)</p>', html))
    assert "Prompt bundle hash is required" in errors and "Model name is required" in errors
    assert "Tool 2 name" in errors
    assert "prompt_bundle_hash" not in errors and "model_config" not in errors and "tool_manifest" not in errors


def test_version_form_marks_required_fields_and_placeholders_are_examples(login, operator, world):
    html = login(operator).get(reverse("ui:version_create"), **HX).content.decode()
    for label in ("Template", "Version label", "Model provider", "Model name", "Prompt bundle hash"):
        assert re.search(rf">{label} <span class=\"text-arm-danger\" aria-hidden=\"true\">\*</span></label>", html), (
            label
        )
    assert not re.search(r">Parent <span class=\"text-arm-danger\"", html)
    placeholders = re.findall(r'placeholder="([^"]*)"', html)
    assert placeholders and all(p.startswith("e.g. ") for p in placeholders), placeholders
    # The "No tools" hint is rendered (hidden by ui.js once a row exists) and hidden when rows came back.
    assert "data-no-tools" in html
    back = login(operator).post(reverse("ui:version_create"), structured(world, model_name=""), **HX).content.decode()
    assert re.search(r"data-no-tools\s+hidden", back)
