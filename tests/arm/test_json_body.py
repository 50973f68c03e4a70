"""The API's JSON body parser: duplicate keys are refused (400 parse_error naming the key) at any depth,
on every endpoint; so are they in the UI's raw-JSON inputs."""

import pytest
from django.test import Client
from django.urls import reverse

from registry.models import AgentVersion, Environment
from tests.factories import TemplateFactory
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_duplicate_top_level_key_is_refused_naming_it(operator):
    response = operator.client.post(
        "/api/v1/environments/", data='{"name": "a", "tier": "dev", "name": "b"}', content_type="application/json"
    )
    assert_error(response, 400, "parse_error", contains=['duplicate key "name"'])
    assert not Environment.objects.exists()


def test_duplicate_key_deep_in_a_genome_is_refused(operator, tenant):
    template = TemplateFactory(tenant=tenant)
    body = (
        f'{{"template": "{template.pk}", "version_label": "1.0.0", "genome": {{"model_config": {{"provider": "o",'
        ' "name": "m", "parameters": {"temperature": 0.2, "temperature": 0.9}}, "prompt_bundle_hash": "sha256:'
        + "ab" * 32
        + '", "tool_manifest": []}}'
    )
    response = operator.client.post("/api/v1/versions/", data=body, content_type="application/json")
    assert_error(response, 400, "parse_error", contains=['duplicate key "temperature"'])
    assert not AgentVersion.objects.exists()


def test_distinct_keys_that_differ_only_in_escaping_are_duplicates_too(operator):
    response = operator.client.post(
        "/api/v1/environments/", data='{"name": "a", "tier": "dev", "n\\u0061me": "b"}', content_type="application/json"
    )
    assert_error(response, 400, "parse_error", contains=['duplicate key "name"'])


def test_the_ui_raw_genome_refuses_duplicate_keys(operator, tenant):
    template = TemplateFactory(tenant=tenant)
    client = Client()
    client.force_login(operator.user)
    html = client.post(
        reverse("ui:version_create"),
        {
            "template": str(template.pk),
            "version_label": "1.0.0",
            "genome_mode": "raw",
            "genome_json": '{"model_config": {}, "model_config": {}}',
        },
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="modal-root",
    ).content.decode()
    assert 'data-field-error="genome_json"' in html and "duplicate key" in html
    assert not AgentVersion.objects.exists()
